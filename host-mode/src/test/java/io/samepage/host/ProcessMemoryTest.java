package io.samepage.host;

import io.samepage.testing.ChildJvm;
import io.samepage.testing.PageMixChild;
import io.samepage.linux.PageMapEntry;
import static io.samepage.testing.PageMixChild.PAGE;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.util.BitSet;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * {@link ProcessMemory} on a real child JVM ({@link PageMixChild}) whose memory content and residency
 * are known: what it reads, what it reports as not resident, and that reading leaves the child's
 * residency as it was.
 */
class ProcessMemoryTest {

    private static ChildJvm child;

    @BeforeAll
    static void startChild() throws Exception {
        child = ChildJvm.start(PageMixChild.class);
    }

    @AfterAll
    static void stopChild() throws Exception {
        child.close();
    }

    private static MemoryRegion regionOf(ProcessMemory memory, long address) {
        return memory.regions().stream().filter(r -> r.contains(address)).findFirst().orElseThrow();
    }

    /** Collects the pages a copy hands over inside {@code [from, from + pages * 4096)}. */
    private static final class Collector implements ResidentPageSink {
        final long from;
        final byte[][] pages;
        final BitSet seen = new BitSet();

        Collector(long from, int pages) {
            this.from = from;
            this.pages = new byte[pages][];
        }

        @Override
        public void accept(long address, ByteBuffer run) {
            assertEquals(0, address % PAGE);
            assertEquals(0, run.remaining() % PAGE);
            assertTrue(run.isReadOnly());
            for (int i = 0; i < run.remaining() / PAGE; i++) {
                long index = (address - from) / PAGE + i;
                if (address + (long) i * PAGE >= from && index < pages.length) {
                    pages[(int) index] = new byte[PAGE];
                    run.get(i * PAGE, pages[(int) index]);
                    seen.set((int) index);
                }
            }
        }
    }

    @Test
    void copiesExactlyTheBytesTheChildWrote() {
        long mix = child.address("mix");
        try (ProcessMemory memory = ProcessMemory.open(child.pid())) {
            assertEquals("java", memory.command());
            MemoryRegion region = regionOf(memory, mix);
            assertTrue(region.readable() && region.writable() && region.isPrivate(), region.toString());
            Collector pages = new Collector(mix, PageMixChild.MIX_PAGES);
            RegionScan scan = memory.copyResident(region, false, pages);
            assertFalse(scan.exited());
            assertEquals(PageMixChild.MIX_PAGES, pages.seen.cardinality(), "every written page is read");
            for (int page = 0; page < PageMixChild.MIX_PAGES; page++) {
                assertArrayEquals(PageMixChild.expectedPage(page), pages.pages[page], "page " + page);
            }
            assertTrue(scan.pagesRead() >= PageMixChild.MIX_PAGES);
            assertEquals(scan.pagesResident(), scan.pagesRead() + scan.pagesUnreadable());
            assertEquals(region.pages(), scan.pagesResident() + scan.pagesNotPresent() + scan.pagesSwapped()
                    + scan.pagesZeroPage() + scan.pagesFileBacked(), "every page is in one count");
        }
    }

    @Test
    void untouchedPagesAreReportedNotResidentAndReadingLeavesThemSo() {
        long sparse = child.address("sparse");
        int written = PageMixChild.SPARSE_WRITTEN;
        int readOnly = PageMixChild.SPARSE_READ;
        try (ProcessMemory memory = ProcessMemory.open(child.pid())) {
            long[] before = memory.pagemap(sparse, PageMixChild.SPARSE_PAGES);
            for (int page = 0; page < PageMixChild.SPARSE_PAGES; page++) {
                assertEquals(page < written + readOnly, PageMapEntry.present(before[page]), "page " + page);
                assertFalse(PageMapEntry.swapped(before[page]));
            }

            MemoryRegion region = regionOf(memory, sparse);
            Collector pages = new Collector(sparse, PageMixChild.SPARSE_PAGES);
            RegionScan scan = memory.copyResident(region, false, pages);
            assertTrue(scan.pagesNotPresent() >= PageMixChild.SPARSE_PAGES - written - readOnly);

            // What the kernel did with the pages only read, from the child's own pagemap: most kernels map
            // the shared zero page (one frame, never exclusively mapped); some (e.g. guests booted with
            // pvm_no_zero_page=1) allocate a fresh zeroed page per read fault, which is resident memory.
            // Frame numbers are visible only with CAP_SYS_ADMIN; then the zero page must be recognized
            // exactly when the kernel uses it, and such pages not read. Otherwise they are read as zeros.
            boolean framesVisible = PageMapEntry.frame(before[0]) > 0;
            long readFrame = PageMapEntry.frame(before[written]);
            boolean sharedZeroPage = framesVisible;
            for (int page = written; page < written + readOnly; page++) {
                sharedZeroPage &= PageMapEntry.frame(before[page]) == readFrame
                        && !PageMapEntry.exclusive(before[page]);
            }
            assertEquals(sharedZeroPage, memory.recognizesZeroPage(),
                    "frames visible: " + framesVisible + ", read-only page entry: " + Long.toHexString(before[written]));
            int read = sharedZeroPage ? written : written + readOnly;
            BitSet expected = new BitSet();
            expected.set(0, read);
            assertEquals(expected, pages.seen);
            if (sharedZeroPage) {
                assertTrue(scan.pagesZeroPage() >= readOnly, scan.toString());
            } else {
                assertEquals(0, scan.pagesZeroPage(), scan.toString());
            }
            for (int page = 0; page < read; page++) {
                byte[] content = new byte[PAGE];
                content[0] = (byte) (page < written ? page + 1 : 0);
                assertArrayEquals(content, pages.pages[page], "page " + page);
            }

            long[] after = memory.pagemap(sparse, PageMixChild.SPARSE_PAGES);
            for (int page = 0; page < PageMixChild.SPARSE_PAGES; page++) {
                assertEquals(PageMapEntry.present(before[page]), PageMapEntry.present(after[page]), "page " + page);
                assertEquals(PageMapEntry.frame(before[page]), PageMapEntry.frame(after[page]), "page " + page);
            }
        }
    }

    @Test
    void aCensusCountsWithoutReading() {
        long mix = child.address("mix");
        try (ProcessMemory memory = ProcessMemory.open(child.pid())) {
            MemoryRegion region = regionOf(memory, mix);
            RegionScan census = memory.census(region, false);
            assertEquals(0, census.pagesRead());
            assertTrue(census.pagesResident() >= PageMixChild.MIX_PAGES);
            memory.checkReadable();
        }
    }

    @Test
    void aProcessThatExitsMidScanYieldsAPartialResult() throws Exception {
        ChildJvm doomed = ChildJvm.start(PageMixChild.class);
        long mix = doomed.address("mix");
        try (ProcessMemory memory = ProcessMemory.open(doomed.pid())) {
            MemoryRegion region = regionOf(memory, mix);
            long[] handed = new long[1];
            RegionScan scan = memory.copyResident(region, false, (address, pages) -> {
                if (handed[0] == 0) {
                    try {
                        doomed.kill();
                    } catch (InterruptedException e) {
                        throw new IllegalStateException(e);
                    }
                }
                handed[0] += pages.remaining() / PAGE;
            });
            assertTrue(scan.exited(), "the copy ends when the process is gone");
            assertTrue(scan.pagesRead() > 0, "the pages copied before it exited are kept");
            assertEquals(handed[0], scan.pagesRead());
            assertTrue(scan.pagesRead() < PageMixChild.MIX_PAGES, scan.toString());
            ProcessScanException gone = assertThrows(ProcessScanException.class, memory::regions);
            assertEquals(ProcessScanException.Kind.EXITED, gone.kind());
        } finally {
            doomed.close();
        }
    }

    @Test
    void aPidWithoutAProcessIsNoSuchProcess() {
        ProcessScanException e = assertThrows(ProcessScanException.class, () -> ProcessMemory.open(Integer.MAX_VALUE));
        assertEquals(ProcessScanException.Kind.NO_SUCH_PROCESS, e.kind());
        assertEquals("pid 2147483647: no such process", e.getMessage());
        assertEquals("pid 0: no such process", assertThrows(ProcessScanException.class,
                () -> ProcessMemory.open(0)).getMessage());
    }

    /**
     * Closing frees the buffers at once: they were direct buffers the garbage collector freed whenever
     * it ran, so reading many processes one after another still piled up a megabyte each against the
     * direct-memory limit. A page a sink kept past its call cannot be read after the close.
     */
    @Test
    void closeFreesTheBuffersAtOnceAndTwiceIsOnce() {
        ByteBuffer[] kept = new ByteBuffer[1];
        ProcessMemory memory = ProcessMemory.open(child.pid());
        RegionScan scan = memory.copyResident(regionOf(memory, child.address("mix")), false, (address, run) -> {
            if (kept[0] == null) {
                kept[0] = run;
            }
        });
        assertTrue(scan.pagesRead() > 0, scan.toString());
        kept[0].get(0);
        memory.close();
        memory.close();
        assertThrows(IllegalStateException.class, () -> kept[0].get(0), "the buffer is freed");
    }
}
