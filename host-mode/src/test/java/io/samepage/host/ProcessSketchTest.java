package io.samepage.host;

import static io.samepage.testing.PageMixChild.PAGE;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.samepage.testing.ChildJvm;
import io.samepage.testing.PageMixChild;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The sketch of a live process ({@link PageDigestEstimator}, as {@code scan --pid} reads it) against
 * the sketch of its dump ({@link GuestSketch#addPage}, as {@code scan FILE} reads one), on the 8 MiB
 * of known content of a child JVM ({@link PageMixChild}): 256 contents four times, 256 zero pages,
 * 1,024 unique pages, more distinct contents than a sketch keeps.
 */
class ProcessSketchTest {

    private static final long MIX_BYTES = (long) PageMixChild.MIX_PAGES * PAGE;

    private static ChildJvm child;

    @TempDir
    Path dir;

    @BeforeAll
    static void startChild() throws Exception {
        child = ChildJvm.start(PageMixChild.class);
    }

    @AfterAll
    static void stopChild() throws Exception {
        child.close();
    }

    @Test
    void theSketchOfALiveProcessIsTheSketchOfItsDump() throws IOException {
        long mix = child.address("mix");
        Path dump = dir.resolve("mix.dump");
        PageDigestEstimator estimator = new PageDigestEstimator(PageMixChild.MIX_PAGES);
        estimator.beginGuest("live");
        try (ProcessMemory memory = ProcessMemory.open(child.pid());
             FileChannel out = FileChannel.open(dump, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            MemoryRegion region = memory.regions().stream().filter(r -> r.contains(mix)).findFirst().orElseThrow();
            memory.copyResident(region, false, (address, run) -> {
                try {
                    out.write(mixPart(mix, address, run), Math.max(0, address - mix));
                } catch (IOException e) {
                    throw new IllegalStateException(e);
                }
            });
            memory.copyResident(region, false,
                    (address, run) -> estimator.accept(MemorySegment.ofBuffer(mixPart(mix, address, run))));
        }
        assertEquals(MIX_BYTES, Files.size(dump), "every page of the mix is resident and read");
        GuestSketch fromDump = new GuestSketch();
        try (Arena arena = Arena.ofConfined(); FileChannel in = FileChannel.open(dump)) {
            MemorySegment pages = in.map(FileChannel.MapMode.READ_ONLY, 0, MIX_BYTES, arena);
            for (long offset = 0; offset < MIX_BYTES; offset += PAGE) {
                fromDump.addPage(pages, offset);
            }
        }
        GuestSketch live = estimator.estimate(256, false).guests().getFirst().sketch();
        assertEquals(GuestSketch.K, fromDump.values().length, "1,280 distinct non-zero contents fill the sketch");
        assertArrayEquals(fromDump.values(), live.values());
        assertEquals(PageMixChild.MIX_PAGES, live.pages());
        assertEquals(fromDump.pages(), live.pages());
    }

    /** The part of a run of pages at {@code address} that lies in the mix (possibly empty). */
    private static ByteBuffer mixPart(long mix, long address, ByteBuffer run) {
        long from = Math.max(address, mix);
        long to = Math.min(address + run.remaining(), mix + MIX_BYTES);
        if (from >= to) {
            return run.slice(0, 0);
        }
        return run.slice((int) (from - address), (int) (to - from));
    }
}
