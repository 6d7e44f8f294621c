package io.samepage.core;

/**
 * KSM's {@code smart_scan} rule (mm/ksm.c, should_skip_rmap_item): a page that stayed unmergeable
 * over several visits is skipped for 1, 2, 4, then 8 visits, longer the longer it stays so. The age
 * and the visits left to skip live in the page's state ({@link PageTable#AGE_SHIFT},
 * {@link PageTable#SKIP_SHIFT}); a change of content resets both ({@link #AGE_AND_SKIP}).
 *
 * <p>Thread safety: the caller holds the page's stripe.
 */
final class SmartScan {

    /** The state bits of the age and skip counters: cleared when a page's content changes. */
    static final int AGE_AND_SKIP = PageTable.NIBBLE << PageTable.AGE_SHIFT | PageTable.NIBBLE << PageTable.SKIP_SHIFT;

    private SmartScan() {
    }

    /** Ages the page, then tells whether to skip this visit ({@code pages_skipped}). */
    static boolean skip(Guest guest, int page, int state) {
        int age = (state >>> PageTable.AGE_SHIFT) & PageTable.NIBBLE;
        int remaining = (state >>> PageTable.SKIP_SHIFT) & PageTable.NIBBLE;
        int nextAge = Math.min(age + 1, PageTable.NIBBLE);
        boolean skip = false;
        if (age >= 3) {
            if (remaining == 0) {
                remaining = age <= 3 ? 1 : age <= 5 ? 2 : age <= 8 ? 4 : 8;
            } else {
                remaining--;
                skip = true;
            }
        }
        guest.setState(page, state & ~AGE_AND_SKIP | nextAge << PageTable.AGE_SHIFT | remaining << PageTable.SKIP_SHIFT);
        return skip;
    }
}
