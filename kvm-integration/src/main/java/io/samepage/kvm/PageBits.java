package io.samepage.kvm;

/**
 * One bit per guest page in words made once: a {@link MappedGuestMemory}'s page flags. Not a
 * {@code BitSet}, whose {@code set} grows its words where they are too few: these are enough for every
 * page from the start, and nothing here allocates, since they are set once the kernel has changed a
 * mapping, where nothing may throw before the change is recorded.
 *
 * <p>Not thread safe: its memory's lock guards it.
 */
final class PageBits {

    private final long[] words;

    /** Room for pages {@code [0, pages)}, every bit clear. */
    PageBits(int pages) {
        words = new long[(pages + Long.SIZE - 1) / Long.SIZE];
    }

    boolean get(int page) {
        return (words[page >>> 6] & 1L << page) != 0;
    }

    void set(int page, boolean value) {
        if (value) {
            words[page >>> 6] |= 1L << page;
        } else {
            words[page >>> 6] &= ~(1L << page);
        }
    }

    /** Sets pages {@code [from, to)} to {@code value}. */
    void set(int from, int to, boolean value) {
        for (int page = from; page < to; page++) {
            set(page, value);
        }
    }

    /** Clears pages {@code [from, to)}. */
    void clear(int from, int to) {
        set(from, to, false);
    }

    /** The first page at or after {@code from} whose bit is set, or -1 if none. */
    int nextSetBit(int from) {
        int w = from >>> 6;
        if (w >= words.length) {
            return -1;
        }
        long word = words[w] & -1L << from;
        while (word == 0) {
            if (++w == words.length) {
                return -1;
            }
            word = words[w];
        }
        return w * Long.SIZE + Long.numberOfTrailingZeros(word);
    }
}
