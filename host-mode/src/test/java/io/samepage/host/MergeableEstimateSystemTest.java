package io.samepage.host;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.samepage.linux.AnonymousMemory;
import io.samepage.testing.HostKsmLock;
import io.samepage.testing.SleepingProcess;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.AbstractList;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * {@link MergeableProcesses} and {@link MergeableEstimate} on this very process: an anonymous mapping
 * of known content that this test madvises MADV_MERGEABLE, found through the real {@code /proc} and
 * read through {@link ProcessMemory}. KSM is not started; the mapping goes away after each test. Each
 * test shares the host-wide KSM lock ({@link HostKsmLock}) while the mapping lives: a ksmd another build
 * started would merge its pages (its zero pages, with {@code use_zero_pages}, would leave its
 * {@code Rss} and count in its {@code ksm_stat}) while the test counts them.
 *
 * <p>The content, in 256 pages: pages 0-63 hold one page A, 64-127 are written zeros, 128-255 are
 * distinct random pages.
 */
class MergeableEstimateSystemTest {

    private static final int PAGE = 4096;
    private static final int PAGES = 256;
    private HostKsmLock ksmLock;
    private AnonymousMemory memory;
    private MemorySegment mapping;

    /** A region of the test's own that the kernel flags mergeable (linux's AnonymousMemory). */
    @BeforeEach
    void mapMergeableMemory() throws java.io.IOException {
        ksmLock = HostKsmLock.share();
        memory = AnonymousMemory.map((long) PAGES * PAGE);
        memory.adviseMergeable();
        mapping = memory.segment();
        SplittableRandom random = new SplittableRandom(3);
        byte[] a = new byte[PAGE];
        random.nextBytes(a);
        byte[] unique = new byte[PAGE];
        for (int page = 0; page < PAGES; page++) {
            long offset = (long) page * PAGE;
            if (page < 64) {
                MemorySegment.copy(a, 0, mapping, ValueLayout.JAVA_BYTE, offset, PAGE);
            } else if (page < 128) {
                mapping.asSlice(offset, PAGE).fill((byte) 0);
            } else {
                random.nextBytes(unique);
                MemorySegment.copy(unique, 0, mapping, ValueLayout.JAVA_BYTE, offset, PAGE);
            }
        }
    }

    @AfterEach
    void unmap() throws java.io.IOException {
        try {
            if (memory != null) {
                memory.close();
            }
        } finally {
            if (ksmLock != null) {
                ksmLock.close();
            }
        }
    }

    private MergeableProcesses.Process self() {
        int pid = (int) ProcessHandle.current().pid();
        MergeableProcesses.Found found = MergeableProcesses.find(KernelKsm.system());
        return found.processes().stream().filter(p -> p.pid() == pid).findFirst()
                .orElseThrow(() -> new AssertionError("this process (" + pid + ") is not among the mergeable ones: "
                        + found.processes()));
    }

    @Test
    void aMadvisedRegionMakesThisProcessMergeable() {
        MergeableProcesses.Process self = self();
        assertEquals(List.of(mapping.address()), self.regions().stream().map(MemoryRegion::start).toList());
        assertEquals(mapping.address() + mapping.byteSize(), self.regions().getFirst().end());
        assertEquals((long) PAGES * PAGE, self.residentBytes());
    }

    @Test
    void everyResidentPageIsReadOnceAndTheSavingIsWhatKsmWouldReach() {
        MergeableEstimate.Potential p = MergeableEstimate.estimate(List.of(self()), 1 << 20, 256, false);
        assertEquals(PAGES, p.residentPages());
        assertEquals(PAGES, p.pagesRead());
        assertEquals(64, p.zeroPages());
        assertEquals(2, p.pagesShared(), "A and the zero page, one frame each");
        assertEquals(63 + 63, p.pagesSharing(), "64 copies of A and 64 zero pages: two contents");
        assertEquals(0, p.ksmZeroPages());
        assertEquals(0, p.unreadablePages());
        assertFalse(p.sampled());
        assertEquals(100.0 * 126 / 256, p.duplicatePercent(), 1e-9);
        assertEquals(126L * PAGE, p.estimatedSavingBytes());
    }

    @Test
    void useZeroPagesMakesEachZeroPageAKsmZeroPage() {
        MergeableEstimate.Potential p = MergeableEstimate.estimate(List.of(self()), 1 << 20, 256, true);
        assertEquals(1, p.pagesShared());
        assertEquals(63, p.pagesSharing());
        assertEquals(64, p.ksmZeroPages());
        assertEquals((63L + 64) * PAGE, p.estimatedSavingBytes());
    }

    @Test
    void maxPageSharingCapsWhatOneFrameSaves() {
        MergeableEstimate.Potential p = MergeableEstimate.estimate(List.of(self()), 1 << 20, 2, false);
        assertEquals(64, p.pagesShared(), "64 pages of A need 32 frames, and as many for the zero pages");
        assertEquals(64, p.pagesSharing());
        assertEquals(2, p.maxPageSharing());
        assertEquals(64L * PAGE, p.estimatedSavingBytes());
    }

    @Test
    void aBudgetBelowTheResidentPagesReadsPartAndScalesTheSaving() {
        MergeableEstimate.Potential p = MergeableEstimate.estimate(List.of(self()), 100, 256, false);
        assertEquals(PAGES, p.residentPages());
        assertTrue(p.pagesRead() > 0 && p.pagesRead() <= 100, p.toString());
        assertTrue(p.sampled());
        assertEquals((long) (p.duplicatePercent() / 100 * PAGES) * PAGE, p.estimatedSavingBytes());
    }

    @Test
    void aProcessThatIsGoneCountsItsPagesAsUnreadableAndKsmZeroPagesNowCountAsSaved() {
        MergeableProcesses.Process self = self();
        MergeableProcesses.Process gone = new MergeableProcesses.Process(Integer.MAX_VALUE, "gone", self.regions(),
                10L * PAGE, 0);
        MergeableProcesses.Process zeroed = new MergeableProcesses.Process(self.pid(), self.command(), self.regions(),
                self.residentBytes(), 128);
        MergeableEstimate.Potential p = MergeableEstimate.estimate(List.of(gone, zeroed), 1 << 20, 256, false);
        assertEquals(10, p.unreadablePages());
        assertEquals(PAGES, p.pagesRead());
        assertEquals(128, p.ksmZeroPagesNow());
        assertEquals(126 + 128, p.savedPages());
        assertEquals(100.0 * (126 + 128) / (256 + 128), p.duplicatePercent(), 1e-9);
    }

    /**
     * Every examined process was held open until the end: its pagemap, and once read its mem and a
     * 1 MiB buffer, so some 30 processes exhausted a tight descriptor or direct-memory limit (an
     * audit's finding). Each process's regions are listed while it is open, so the descriptors open
     * on its {@code /proc} files then show how many processes are.
     */
    @Test
    void processesAreOpenedOneAtATimeAndAllClosedAfter() throws Exception {
        MergeableProcesses.Process self = self();
        assertEquals(0, descriptorsOn(self.pid()), "nothing of this process's /proc open before");
        long[] most = {0};
        List<MemoryRegion> watched = new AbstractList<>() {
            @Override
            public Iterator<MemoryRegion> iterator() {
                most[0] = Math.max(most[0], descriptorsOn(self.pid()));
                return super.iterator();
            }

            @Override
            public MemoryRegion get(int index) {
                return self.regions().get(index);
            }

            @Override
            public int size() {
                return self.regions().size();
            }
        };
        MergeableProcesses.Process one = new MergeableProcesses.Process(self.pid(), self.command(), watched,
                self.residentBytes(), 0);
        MergeableEstimate.Potential p = MergeableEstimate.estimate(java.util.Collections.nCopies(64, one), 1 << 20,
                256, false);
        assertEquals(64L * PAGES, p.pagesRead());
        assertEquals(0, p.unreadablePages());
        assertTrue(most[0] <= 2, most[0] + " descriptors open while a process was examined");
        assertEquals(0, descriptorsOn(self.pid()), "every descriptor closed after");
    }

    /**
     * Estimates of three processes, sampled and not, as the estimate that held every process open
     * computed them: reading processes one at a time changes nothing.
     */
    @Test
    void aSampleOfSeveralProcessesIsWhatItWas() {
        try (AnonymousMemory big = AnonymousMemory.map(2048L * PAGE)) {
            big.adviseNoHugePage();
            MemorySegment pages = big.segment();
            SplittableRandom random = new SplittableRandom(5);
            byte[] content = new byte[PAGE];
            for (int page = 0; page < 2048; page++) {
                if (page % 5 == 0) {
                    pages.asSlice((long) page * PAGE, PAGE).fill((byte) 0);
                    continue;
                }
                new SplittableRandom(page % 3 == 0 ? page % 40 : random.nextLong()).nextBytes(content);
                MemorySegment.copy(content, 0, pages, ValueLayout.JAVA_BYTE, (long) page * PAGE, PAGE);
            }
            MemoryRegion region;
            try (ProcessMemory memory = ProcessMemory.open((int) ProcessHandle.current().pid())) {
                region = memory.regions().stream().filter(r -> r.start() == pages.address()).findFirst().orElseThrow();
            }
            MergeableProcesses.Process self = new MergeableProcesses.Process((int) ProcessHandle.current().pid(),
                    "self", List.of(region), 2048L * PAGE, 0);
            List<MergeableProcesses.Process> three = List.of(self, self, self);
            long[][] expected = { // budget, pages read, zero pages, pages_shared, pages_sharing
                {100, 100, 20, 1, 19}, {1000, 1000, 200, 33, 434}, {3000, 3000, 601, 581, 2419},
                {5000, 5000, 1000, 991, 3872}, {1 << 20, 6144, 1230, 1129, 5015}};
            for (long[] e : expected) {
                MergeableEstimate.Potential p = MergeableEstimate.estimate(three, e[0], 256, false);
                assertEquals(List.of(3L * 2048, e[1], e[2], e[3], e[4], 0L), List.of(p.residentPages(),
                        p.pagesRead(), p.zeroPages(), p.pagesShared(), p.pagesSharing(), p.unreadablePages()),
                        "budget " + e[0] + ": " + p);
            }
        }
    }

    /**
     * A process that exits after its pages were counted and before they are read: they count as
     * unreadable, the others are read, and nothing is left open.
     */
    @Test
    void aProcessThatExitsBetweenCountAndReadIsUnreadableAndNothingStaysOpen() throws Exception {
        MergeableProcesses.Process self = self();
        Process child = SleepingProcess.start(60); // no pipes: the descriptors stay put
        try {
            int pid = (int) child.pid();
            List<MemoryRegion> childRegions;
            long childResident = 0;
            try (ProcessMemory memory = ProcessMemory.open(pid)) {
                childRegions = memory.regions().stream().filter(r -> r.inode() == 0 && r.permissions().startsWith("rw"))
                        .toList();
                for (MemoryRegion r : childRegions) {
                    childResident += memory.census(r, false).pagesResident();
                }
            }
            assertTrue(childResident > 0, "the child's stack and heap: " + childRegions);
            List<MemoryRegion> killing = new AbstractList<>() {
                @Override
                public MemoryRegion get(int index) {
                    if (child.isAlive()) {
                        child.destroyForcibly();
                        try {
                            child.waitFor(10, TimeUnit.SECONDS);
                        } catch (InterruptedException e) {
                            throw new AssertionError(e);
                        }
                    }
                    return self.regions().get(index);
                }

                @Override
                public int size() {
                    return self.regions().size();
                }
            };
            MergeableEstimate.Potential p = MergeableEstimate.estimate(List.of(
                    new MergeableProcesses.Process(pid, "sleep", childRegions, childResident * PAGE, 0),
                    new MergeableProcesses.Process(self.pid(), self.command(), killing, self.residentBytes(), 0)),
                    1 << 20, 256, false);
            assertTrue(p.residentPages() > PAGES, "the child's pages were counted: " + p);
            assertEquals(p.residentPages() - PAGES, p.unreadablePages(), "and none read");
            assertEquals(PAGES, p.pagesRead());
            assertEquals(0, descriptorsOn(pid, self.pid()), "every descriptor closed after");
        } finally {
            child.destroyForcibly();
        }
    }

    /**
     * A sample walked each region's pagemap twice: once to count the resident pages, once more slice by
     * slice to choose what to read (an audit found the walk uncapped; this was half of it). It walks
     * it once now. What the kernel counts as read by this thread, which the estimate reads on ({@code
     * rchar} of {@code /proc/thread-self/io}), less the pages read, is the pagemap walked: 8 bytes a page.
     */
    @Test
    void aSampleWalksThePagemapOnce() throws Exception {
        int pages = 16384;
        try (AnonymousMemory big = AnonymousMemory.map((long) pages * PAGE)) {
            big.adviseNoHugePage();
            MemorySegment content = big.segment();
            for (long page = 0; page < pages; page++) {
                content.set(ValueLayout.JAVA_LONG, page * PAGE, page + 1);
            }
            MemoryRegion region;
            try (ProcessMemory memory = ProcessMemory.open((int) ProcessHandle.current().pid())) {
                region = memory.regions().stream().filter(r -> r.start() == content.address()).findFirst()
                        .orElseThrow();
            }
            List<MergeableProcesses.Process> one = List.of(new MergeableProcesses.Process(
                    (int) ProcessHandle.current().pid(), "self", List.of(region), (long) pages * PAGE, 0));
            MergeableEstimate.estimate(one, 512, 256, false);
            long before = bytesRead();
            MergeableEstimate.Potential p = MergeableEstimate.estimate(one, 512, 256, false);
            long walked = bytesRead() - before - p.pagesRead() * PAGE;
            assertEquals(pages, p.residentPages());
            assertEquals(512, p.pagesRead());
            assertTrue(walked < pages * 8L * 3 / 2, walked + " bytes of pagemap read for " + pages + " pages");
        }
    }

    /**
     * What this thread has read ({@code rchar} of {@code /proc/thread-self/io}). Not the process's
     * ({@code /proc/self/io}): the JVM's other threads read too meanwhile (a class from a jar, the test
     * runner's pipe).
     */
    private static long bytesRead() throws java.io.IOException {
        for (String line : Files.readAllLines(Path.of("/proc/thread-self/io"))) {
            if (line.startsWith("rchar:")) {
                return Long.parseLong(line.substring(6).strip());
            }
        }
        throw new AssertionError("no rchar in /proc/thread-self/io");
    }

    /**
     * This process's descriptors open on a {@code /proc/PID/} file of one of {@code pids}: what examining
     * them opens. Not every descriptor of the process: the JVM's other threads open and close their own
     * meanwhile (the process reaper closes an exited child's pipes when it gets to it).
     */
    private static long descriptorsOn(long... pids) {
        long open = 0;
        try (var listing = Files.list(Path.of("/proc/self/fd"))) {
            for (Path fd : listing.toList()) {
                String target;
                try {
                    target = Files.readSymbolicLink(fd).toString();
                } catch (java.io.IOException closedMeanwhile) {
                    continue;
                }
                for (long pid : pids) {
                    // The listing's own descriptor is on /proc/PID/fd of this process.
                    if (target.startsWith("/proc/" + pid + "/") && !target.equals("/proc/" + pid + "/fd")) {
                        open++;
                    }
                }
            }
        } catch (java.io.IOException e) {
            throw new AssertionError(e);
        }
        return open;
    }
}
