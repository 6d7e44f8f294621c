package io.samepage.wasm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.samepage.core.ForwardingBacking;
import io.samepage.core.FrameBacking;
import io.samepage.core.ScanKnobs;
import io.samepage.hashing.HashAlgorithm;
import io.samepage.hashing.PageHasher;
import io.samepage.testing.ThreadFaultingHasher;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

class WasmBenchTest {

    @Test
    void theBenchRunsBothMemoriesAndTheirChecksumsAgree() {
        WasmBench.Results results = WasmBench.run(new WasmBench.Settings(4, 1, 64, 64, 1, 100, 1), step -> { });
        assertEquals(17, results.memoryPages());
        // The image is installed once: the instances' frames are one copy of the data and their own writes.
        assertTrue(results.samepage().frameBytes() < (2L << 20), "frames: " + results.samepage().frameBytes());
        assertEquals(0, results.byteArray().frameBytes());
    }

    /**
     * A scanner that dies of an Error mid-bench fails the bench: before, the error was printed and the bench
     * gave figures of an engine that had stopped merging.
     */
    @Test
    void aScannerThatFailsDuringTheBenchFailsIt() {
        ThreadFaultingHasher faulting = new ThreadFaultingHasher("samepage-scanner");
        IllegalStateException failed = assertThrows(IllegalStateException.class, () -> WasmBench.run(
                new WasmBench.Settings(4, 1, 2048, 64, 1, 100, 1), step -> { }, context -> context.customHasher(faulting)));
        assertTrue(failed.getMessage().startsWith("the engine's scanner failed during the bench, so it gives no figures: "
                + "java.lang.InternalError: " + ThreadFaultingHasher.MESSAGE), failed.getMessage());
    }

    /**
     * A scanner that fails, then a bench that fails for a reason of its own (here its progress consumer
     * throws, as writing to a closed terminal would): before, the bench's exception alone was thrown and the
     * scanner's error was lost with its thread. Both are named now, the scanner's first.
     */
    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aScannerThatFailsIsNamedWhenTheBenchFailsToo() {
        CountDownLatch scannerFaulted = new CountDownLatch(1);
        ThreadFaultingHasher faulting = new ThreadFaultingHasher("samepage-scanner");
        PageHasher hasher = new PageHasher() {
            @Override
            public long hash(MemorySegment memory, long offset) {
                if (Thread.currentThread().getName().equals("samepage-scanner")) {
                    scannerFaulted.countDown();     // and then it throws
                }
                return faulting.hash(memory, offset);
            }

            @Override
            public HashAlgorithm algorithm() {
                return faulting.algorithm();
            }

            @Override
            public long seed() {
                return faulting.seed();
            }
        };
        IllegalStateException progressRefused = new IllegalStateException("progress refused (test)");
        Consumer<String> progress = step -> {
            if (step.startsWith("the workload again")) {       // the SamepageMemory instances exist: it scans them
                try {
                    scannerFaulted.await();
                } catch (InterruptedException e) {
                    throw new AssertionError(e);
                }
                throw progressRefused;
            }
        };
        IllegalStateException failed = assertThrows(IllegalStateException.class, () -> WasmBench.run(
                new WasmBench.Settings(4, 1, 64, 64, 1, 100, 1), progress, context -> context.customHasher(hasher)));
        assertEquals("the engine's scanner failed during the bench, so it gives no figures: java.lang.InternalError: "
                + ThreadFaultingHasher.MESSAGE + "; the bench then failed too: " + progressRefused, failed.getMessage());
        assertTrue(failed.getCause() instanceof InternalError, String.valueOf(failed.getCause()));
        assertEquals(List.of(progressRefused), List.of(failed.getSuppressed()));
    }

    /**
     * A scanner that fails after the bench's one look at it before the figures: before, that look came
     * after the timed runs and before the engine's counters were read, and an error the scanner told from
     * then on was never looked at, so the bench gave figures. The test sets the point. The bench's read of
     * the counters reaches the frame backing's {@code metadataBytes} on the bench's thread; there the
     * backing asks the scanner to unmerge everything ({@code run=2}, whose first step reads the counters
     * too) and waits until the same call, on the scanner's thread, has thrown.
     */
    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aScannerThatFailsAfterTheTimedRunsFailsTheBench() {
        InternalError injected = new InternalError("the scanner failed after the timed runs (test)");
        AtomicBoolean timedRunsStarted = new AtomicBoolean();
        AtomicBoolean unmergeAsked = new AtomicBoolean();
        CountDownLatch scannerThrew = new CountDownLatch(1);
        ScanKnobs[] knobs = new ScanKnobs[1];
        FrameBacking.Factory backing = frames -> new ForwardingBacking(frames) {
            @Override
            public long metadataBytes() {
                if (Thread.currentThread().getName().equals("samepage-scanner")) {
                    if (unmergeAsked.getAndSet(false)) {
                        scannerThrew.countDown();       // and then it throws
                        throw injected;
                    }
                } else if (timedRunsStarted.getAndSet(false)) {     // the bench reads the counters
                    unmergeAsked.set(true);
                    knobs[0].run(ScanKnobs.RUN_UNMERGE);
                    try {
                        scannerThrew.await();
                    } catch (InterruptedException e) {
                        throw new AssertionError(e);
                    }
                }
                return super.metadataBytes();
            }
        };
        Consumer<String> progress = step -> {
            if (step.startsWith("the workload again")) {
                timedRunsStarted.set(true);
            }
        };
        IllegalStateException failed = assertThrows(IllegalStateException.class, () -> WasmBench.run(
                new WasmBench.Settings(4, 1, 64, 64, 1, 100, 1), progress, context -> {
                    knobs[0] = context.knobs();
                    context.frameBacking(backing);
                }));
        assertEquals("the engine's scanner failed during the bench, so it gives no figures: " + injected, failed.getMessage());
        assertSame(injected, failed.getCause());
    }

    @Test
    void theCommittedWorkloadIsTheCompiledWat() throws Exception {
        Path wat = Path.of("src/main/resources/io/samepage/wasm/bench/workload.wat");
        Path compiled = Path.of("target/wat/bench-workload.wasm");
        Files.createDirectories(compiled.getParent());
        Process process;
        try {
            process = new ProcessBuilder("wat2wasm", wat.toString(), "-o", compiled.toString()).inheritIO().start();
        } catch (java.io.IOException e) {
            throw new AssertionError("wat2wasm is not on PATH" + WatPrograms.INSTALL_HINT, e);
        }
        assertEquals(0, process.waitFor());
        assertEquals(-1L, Files.mismatch(compiled, Path.of("src/main/resources/io/samepage/wasm/bench/workload.wasm")),
                "workload.wasm is stale: run wat2wasm " + wat + " -o src/main/resources/io/samepage/wasm/bench/workload.wasm");
    }

    @Test
    void settingsOutOfRangeAreRefusedNamingTheOption() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new WasmBench.Settings(1, 4, 2048, 64, 1, 100, 20).validate());
        assertTrue(e.getMessage().startsWith("--instances 1:"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> new WasmBench.Settings(10, 4, 2048, 3, 1, 100, 20).validate());
        assertTrue(e.getMessage().startsWith("--cache-pages 3:"), e.getMessage());
    }
}
