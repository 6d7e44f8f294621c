package io.samepage.host;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.samepage.linux.AnonymousMemory;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * {@link MergeableProcesses} and {@link MergeableEstimate} on this very process: an anonymous mapping
 * of known content that this test madvises MADV_MERGEABLE, found through the real {@code /proc} and
 * read through {@link ProcessMemory}. KSM is not started; the mapping goes away after each test.
 *
 * <p>The content, in 256 pages: pages 0-63 hold one page A, 64-127 are written zeros, 128-255 are
 * distinct random pages.
 */
class MergeableEstimateSystemTest {

    private static final int PAGE = 4096;
    private static final int PAGES = 256;
    private AnonymousMemory memory;
    private MemorySegment mapping;

    /** A region of the test's own that the kernel flags mergeable (linux's AnonymousMemory). */
    @BeforeEach
    void mapMergeableMemory() {
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
    void unmap() {
        memory.close();
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
}
