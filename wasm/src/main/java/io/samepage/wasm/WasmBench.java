package io.samepage.wasm;

import com.dylibso.chicory.runtime.ByteArrayMemory;
import com.dylibso.chicory.runtime.Instance;
import com.dylibso.chicory.runtime.Memory;
import com.dylibso.chicory.wasm.Parser;
import com.dylibso.chicory.wasm.WasmModule;
import com.dylibso.chicory.wasm.types.MemoryLimits;
import io.samepage.core.DedupEngine;
import io.samepage.core.EngineContext;
import io.samepage.core.EngineCounters;
import io.samepage.hashing.Pages;
import java.lang.management.ManagementFactory;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.Consumer;
import java.util.function.Function;

/**
 * {@code samepage bench wasm}: N instances of one module with MiBs of data segments, on Chicory's
 * {@code ByteArrayMemory} and on {@link SamepageMemory}, in one run.
 *
 * <p>The module is {@link BenchModule}'s: a {@code dataMib} data segment of seeded bytes (a lookup table)
 * and a workload that gathers {@code words} words from it at pseudo-random places, heap-sorts them and
 * counts them in a hash table; instance {@code i} runs it once with seed {@code i}, on both memories, and
 * the two checksums must agree. For each memory it measures the time to instantiate the first instance and
 * each later one, the workload's time summed over the instances, and the host memory the N instances hold
 * once all have run: the heap the JVM holds after a full collection above what it held before the first
 * instance (instances, their memories, page tables and caches), plus for Samepage the engine's frames
 * ({@code framesInUse} x 4 KiB, off the heap); the ByteArrayMemory instances stay alive (and outside
 * Samepage's figure) while Samepage's are made. Samepage's instances run with the scanner on its own
 * thread ({@code pagesToScan} pages every {@code sleepMillis}); each memory is released after each run
 * (an embedder's safe point), so an idle instance holds no cached pages.
 *
 * <p>The workload's time: once all instances exist, instance {@code i} of each memory runs the workload
 * again, alternating between the memories, over the first {@value #TIMED_RUNS} instances, so both see the
 * same JIT state and the same scanner load; the ratio of the sums is the speed.
 *
 * <p>Before anything is timed, both memories instantiate and run the workload {@value #WARM_UP} times
 * in a throwaway engine, so the JIT has compiled the interpreter and both memories.
 *
 * <p>Not thread safe: one run at a time.
 */
public final class WasmBench {

    /** Warm-up instances per memory before anything is measured. */
    public static final int WARM_UP = 20;

    /** The workload's time is taken over this many instances of each memory (or all, if fewer), alternating. */
    public static final int TIMED_RUNS = 200;

    /** What to run. */
    public record Settings(int instances, int dataMib, int words, int cachePages, long seed, int pagesToScan,
                           long sleepMillis) {

        public static final int DEFAULT_DATA_MIB = 4;
        public static final int DEFAULT_WORDS = 2048;
        public static final int DEFAULT_PAGES_TO_SCAN = 2000;
        public static final long DEFAULT_SLEEP_MILLIS = 20;
        public static final int MAX_INSTANCES = 100_000;

        /**
         * Checks every setting, and that the JVM's heap can hold the {@code ByteArrayMemory} instances.
         *
         * @throws IllegalArgumentException naming the setting and why
         */
        public Settings validate() {
            if (instances < 2 || instances > MAX_INSTANCES) {
                throw new IllegalArgumentException("--instances " + instances + ": must be 2 to " + MAX_INSTANCES
                        + " (the first instance and at least one later one)");
            }
            if (dataMib < 1 || dataMib > 1024) {
                throw new IllegalArgumentException("--data-mib " + dataMib + ": must be 1 to 1024");
            }
            if (words < 2 || words > 1 << 20) {
                throw new IllegalArgumentException("--words " + words + ": must be 2 to " + (1 << 20));
            }
            if (cachePages < 1 || Integer.bitCount(cachePages) != 1) {
                throw new IllegalArgumentException("--cache-pages " + cachePages + ": must be a power of two, at least 1");
            }
            if (pagesToScan < 1 || sleepMillis < 0) {
                throw new IllegalArgumentException("--pages-to-scan must be at least 1 and --sleep-millisecs at least 0");
            }
            long need = (long) instances * memoryPages() * Memory.PAGE_SIZE;
            long heap = Runtime.getRuntime().maxMemory();
            if (need > heap * 9 / 10) {
                throw new IllegalArgumentException("--instances " + instances + " --data-mib " + dataMib
                        + ": ByteArrayMemory's instances need " + (need >> 20) + " MiB of heap; this JVM may use "
                        + (heap >> 20) + " MiB (raise it with SAMEPAGE_JAVA_OPTS=-Xmx...)");
            }
            return this;
        }

        /** Bytes the workload writes after the data: the word array (4 per word) and the table (16 per word). */
        long heapBytes() {
            return 20L * words;
        }

        int memoryPages() {
            return (int) (((long) dataMib << 20) / Memory.PAGE_SIZE + (heapBytes() + Memory.PAGE_SIZE - 1) / Memory.PAGE_SIZE);
        }
    }

    /** One memory's figures. */
    public record MemoryResult(String memory, long hostBytes, long heapBytes, long frameBytes, long firstInstantiateNanos,
                               long laterInstantiateMedianNanos, long laterInstantiateMeanNanos, long workloadNanos) {
    }

    /** The run: settings, both memories, the ratios, and the engine's counters at the end. */
    public record Results(Settings settings, int memoryPages, int timedRuns, MemoryResult byteArray, MemoryResult samepage,
                          double hostMemoryRatio, double laterInstantiateSpeedup, double workloadSpeed,
                          EngineCounters counters, long imageHeapBytes) {
    }

    private WasmBench() {
    }

    /**
     * Runs the bench; {@code progress} hears each phase.
     *
     * @throws IllegalStateException if the engine's scanner failed meanwhile (an exception, an Error that
     *                               ended its thread, or its thread ending early): the figures would not be
     *                               the engine's, so none are given; if the bench failed too, the message
     *                               names both, the scanner's first
     */
    public static Results run(Settings settings, Consumer<String> progress) {
        return run(settings, progress, context -> { });
    }

    /** As above, {@code tweak} seeing the engine's context before it concludes: a seam for tests. */
    static Results run(Settings settings, Consumer<String> progress, Consumer<EngineContext> tweak) {
        settings.validate();
        int pages = settings.memoryPages();
        int dataBytes = settings.dataMib() << 20;
        WasmModule module = Parser.parse(BenchModule.build(pages, dataBytes, settings.seed()));
        progress.accept("warming up (" + WARM_UP + " instances on each memory)");
        warmUp(module, settings, dataBytes);
        long[] checksums = new long[settings.instances()];
        progress.accept(settings.instances() + " instances on ByteArrayMemory");
        List<Instance> byteArrays = new ArrayList<>(settings.instances());
        Phase byteArray = measure("ByteArrayMemory", module, settings, dataBytes, ByteArrayMemory::new, checksums,
                null, byteArrays);
        progress.accept(settings.instances() + " instances on SamepageMemory, the scanner running");
        EngineContext context = new EngineContext().poolBytes(poolBytes(settings));
        tweak.accept(context);
        context.conclude();
        context.knobs().pagesToScan(settings.pagesToScan()).sleepMillis(settings.sleepMillis());
        try (DedupEngine engine = DedupEngine.create(context)) {
            SamepageMemoryFactory factory = new SamepageMemoryFactory(engine, engine.createDomain("bench"))
                    .cachePages(settings.cachePages());
            // Before, a scanner's error was printed and the bench went on; an Error ended the scanner's thread
            // and the figures measured an engine that had stopped merging. Kept, and thrown at the end, once
            // the scanner's thread has ended: an error in the bench's last steps counts too.
            BenchScanner scanner = BenchScanner.start(engine.scanner());
            List<Instance> samepages = new ArrayList<>(settings.instances());
            Results results;
            try {
                Phase samepage = measure("SamepageMemory", module, settings, dataBytes, factory, checksums, engine, samepages);
                int timed = Math.min(settings.instances(), TIMED_RUNS);
                progress.accept("the workload again on " + timed + " instances of each memory, alternating");
                long[] workload = new long[2];
                for (int i = 0; i < timed; i++) {
                    long t0 = System.nanoTime();
                    run(byteArrays.get(i), i, dataBytes, settings.words());
                    long t1 = System.nanoTime();
                    run(samepages.get(i), i, dataBytes, settings.words());
                    long t2 = System.nanoTime();
                    ((SamepageMemory) samepages.get(i).memory()).release();
                    workload[0] += t1 - t0;
                    workload[1] += t2 - t1;
                }
                EngineCounters counters = engine.counters();
                MemoryResult b = byteArray.result(workload[0]);
                MemoryResult p = samepage.result(workload[1]);
                results = new Results(settings, pages, timed, b, p, (double) p.hostBytes() / b.hostBytes(),
                        (double) p.firstInstantiateNanos() / Math.max(1, p.laterInstantiateMedianNanos()),
                        (double) b.workloadNanos() / Math.max(1, p.workloadNanos()), counters, factory.imageHeapBytes());
            } catch (RuntimeException e) {
                scanner.close();            // before: a scanner that had failed too was never told
                throw scanner.failedToo(e);
            } catch (Error e) {
                scanner.close();
                IllegalStateException failed = scanner.failure();
                if (failed != null) {
                    e.addSuppressed(failed);
                }
                throw e;
            } finally {
                scanner.close();
                for (Instance instance : samepages) {
                    ((SamepageMemory) instance.memory()).close();
                }
            }
            IllegalStateException failed = scanner.failure();
            if (failed != null) {
                throw failed;
            }
            return results;
        }
    }

    /** Frames for N instances: the image once per {@code max_page_sharing} instances, each instance's writes, slack. */
    private static long poolBytes(Settings settings) {
        long image = (long) settings.dataMib() << 20;
        long copies = settings.instances() / 256 + 2;
        long perInstance = settings.heapBytes() + 4L * Pages.PAGE_SIZE;
        return image * copies + settings.instances() * perInstance + (256L << 20);
    }

    private static void warmUp(WasmModule module, Settings settings, int dataBytes) {
        EngineContext context = new EngineContext().poolBytes(((long) settings.dataMib() << 20) * 4 + (512L << 20)).conclude();
        try (DedupEngine engine = DedupEngine.create(context)) {
            SamepageMemoryFactory factory = new SamepageMemoryFactory(engine, engine.createDomain("warm-up"))
                    .cachePages(settings.cachePages());
            for (int i = 0; i < WARM_UP; i++) {
                for (Function<MemoryLimits, Memory> memories : List.<Function<MemoryLimits, Memory>>of(ByteArrayMemory::new, factory)) {
                    Instance instance = Instance.builder(module).withMemoryFactory(memories).build();
                    run(instance, i, dataBytes, settings.words());
                    if (instance.memory() instanceof SamepageMemory memory) {
                        memory.close();
                    }
                }
            }
        }
    }

    private static long run(Instance instance, int seed, int dataBytes, int words) {
        return instance.export("run").apply(seed, dataBytes, dataBytes, words)[0];
    }

    /** One memory's instantiations and host memory; the workload's time comes from the alternating runs. */
    private record Phase(String memory, long heapBytes, long frameBytes, long[] instantiateNanos) {
        MemoryResult result(long workloadNanos) {
            long[] later = Arrays.copyOfRange(instantiateNanos, 1, instantiateNanos.length);
            Arrays.sort(later);
            return new MemoryResult(memory, heapBytes + frameBytes, heapBytes, frameBytes, instantiateNanos[0],
                    later[later.length / 2], Arrays.stream(later).sum() / later.length, workloadNanos);
        }
    }

    /**
     * Instantiates N instances on {@code memories} into {@code instances} and runs the workload once on
     * each; with {@code engine}, checks each checksum against {@code checksums}, else fills them in.
     */
    private static Phase measure(String name, WasmModule module, Settings settings, int dataBytes,
                                 Function<MemoryLimits, Memory> memories, long[] checksums, DedupEngine engine,
                                 List<Instance> instances) {
        long heapBefore = heapUsedAfterGc();
        long framesBefore = engine == null ? 0 : engine.framesInUse();
        long[] instantiate = new long[settings.instances()];
        for (int i = 0; i < settings.instances(); i++) {
            long t0 = System.nanoTime();
            Instance instance = Instance.builder(module).withMemoryFactory(memories).build();
            instantiate[i] = System.nanoTime() - t0;
            long checksum = run(instance, i, dataBytes, settings.words());
            if (instance.memory() instanceof SamepageMemory memory) {
                memory.release();                   // the embedder's safe point: the call returned
            }
            if (engine == null) {
                checksums[i] = checksum;
            } else if (checksums[i] != checksum) {
                throw new IllegalStateException("instance " + i + " on " + name + " computed " + checksum
                        + ", on ByteArrayMemory " + checksums[i]);
            }
            instances.add(instance);
        }
        long heap = Math.max(0, heapUsedAfterGc() - heapBefore);
        long frames = engine == null ? 0 : (engine.framesInUse() - framesBefore) * Pages.PAGE_SIZE;
        return new Phase(name, heap, frames, instantiate);
    }

    private static long heapUsedAfterGc() {
        for (int i = 0; i < 3; i++) {
            System.gc();
        }
        return ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed();
    }
}
