package io.samepage.linux;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** Decoding {@code /proc/PID/pagemap} entries, bit by bit (Documentation/admin-guide/mm/pagemap.rst). */
class PageMapEntryTest {

    @Test
    void aPresentPrivatePageShowsItsFrameAndFlags() {
        long entry = (1L << 63) | (1L << 56) | (1L << 55) | 0x1a2b3cL;
        assertTrue(PageMapEntry.present(entry));
        assertFalse(PageMapEntry.swapped(entry));
        assertFalse(PageMapEntry.fileOrShared(entry));
        assertTrue(PageMapEntry.exclusive(entry));
        assertTrue(PageMapEntry.softDirty(entry));
        assertEquals(0x1a2b3cL, PageMapEntry.frame(entry));
    }

    @Test
    void theLargestFrameNumberUsesAllFiftyFiveBits() {
        long entry = (1L << 63) | ((1L << 55) - 1);
        assertEquals((1L << 55) - 1, PageMapEntry.frame(entry));
        assertFalse(PageMapEntry.softDirty(entry));
    }

    @Test
    void aFilePageIsPresentAndFileOrShared() {
        long entry = (1L << 63) | (1L << 61);
        assertTrue(PageMapEntry.present(entry) && PageMapEntry.fileOrShared(entry));
        assertEquals(0, PageMapEntry.frame(entry), "without CAP_SYS_ADMIN the kernel shows frame 0");
    }

    @Test
    void aSwappedPageIsNotPresentAndHasNoFrame() {
        long entry = (1L << 62) | (0x1234L << 5) | 3;
        assertFalse(PageMapEntry.present(entry));
        assertTrue(PageMapEntry.swapped(entry));
        assertEquals(-1, PageMapEntry.frame(entry), "bits 0-54 hold the swap type and offset, not a frame");
    }

    @Test
    void anUntouchedPageIsAllZeros() {
        assertFalse(PageMapEntry.present(0));
        assertFalse(PageMapEntry.swapped(0));
        assertEquals(-1, PageMapEntry.frame(0));
    }
}
