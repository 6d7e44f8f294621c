package io.samepage.host;

/**
 * Page digests and how many pages hold each: an open-addressing table of one {@code long[]}, three
 * longs per slot (the 128-bit digest, then a word of {@value #COUNT_BITS} bits of page count and
 * {@value #SET_BITS} bits of guest set, {@link GuestSets}). No object per page or per content.
 *
 * <p>Layout and probing. Slot {@code s} is {@code slots[3s .. 3s+2]}: digest high, digest low, meta.
 * A meta word of 0 (count 0) marks an empty slot, so every digest value, 0 included, can be stored.
 * The home slot is the digest's high word scaled to the capacity ({@code unsignedMultiplyHigh(high,
 * capacity)}; the digest is uniform, so no power-of-two capacity is needed, and the table can be sized
 * to the pages expected with no rounding slack); collisions probe linearly, wrapping at the end.
 * Nothing is ever removed.
 *
 * <p>Memory: {@value #SLOT_BYTES} bytes per slot. Sized for {@code expected} pages at a load of
 * {@value #SIZED_LOAD} it takes {@code 24 / 0.8 = 30} bytes per expected page, even if every page is
 * distinct; it grows only past a load of {@value #MAX_LOAD} (more distinct contents than pages
 * expected), by {@value #GROWTH}, which keeps at most {@code 24 x 1.2 / 0.9 = 32} bytes per content
 * stored (while it grows, the old array is held too). Capacity is at most {@link #MAX_CAPACITY} slots:
 * a Java array holds fewer than 2^31 longs.
 *
 * <p>Rejected: a {@code HashMap} of digests (two objects per page, about 80 bytes); sorting all digests
 * at the end (16 bytes per page but a second copy to sort, and no counts while reading); a
 * power-of-two capacity (up to twice the slots).
 *
 * <p>Not thread safe: a single writer.
 */
final class DigestTable {

    static final int SLOT_LONGS = 3;
    static final int SLOT_BYTES = SLOT_LONGS * Long.BYTES;
    static final double SIZED_LOAD = 0.8;
    static final double MAX_LOAD = 0.9;
    static final double GROWTH = 1.2;
    static final int MIN_CAPACITY = 1024;
    static final int MAX_CAPACITY = (Integer.MAX_VALUE - 8) / SLOT_LONGS;
    static final int COUNT_BITS = 40;
    static final int SET_BITS = 64 - COUNT_BITS;
    static final long MAX_COUNT = (1L << COUNT_BITS) - 1;
    static final int MAX_SET = (1 << SET_BITS) - 1;

    private long[] slots;
    private int capacity;
    private int used;
    private int growLimit;

    /** A table for about {@code expectedPages} pages (more fit: it grows). */
    DigestTable(long expectedPages) {
        resize(capacityFor(expectedPages));
    }

    static int capacityFor(long expectedPages) {
        double wanted = Math.ceil(Math.max(0, expectedPages) / SIZED_LOAD);
        return (int) Math.min(MAX_CAPACITY, Math.max(MIN_CAPACITY, wanted));
    }

    /**
     * The slot of digest {@code (high, low)}, inserted empty (count 0, set 0) if absent: the caller then
     * sets its count and set with {@link #set}.
     *
     * @throws IllegalStateException if the table is at {@link #MAX_CAPACITY} and full (one slot always
     *                               stays empty, so every probe ends)
     */
    int slotOf(long high, long low) {
        int s = probe(slots, capacity, high, low);
        if (slots[s * SLOT_LONGS + 2] == 0) {
            if (used + 1 > growLimit) {
                grow();
                s = probe(slots, capacity, high, low);
            }
            slots[s * SLOT_LONGS] = high;
            slots[s * SLOT_LONGS + 1] = low;
        }
        return s;
    }

    /** Pages counted for the content in slot {@code s}; 0 if it was just inserted. */
    long count(int s) {
        return slots[s * SLOT_LONGS + 2] & MAX_COUNT;
    }

    /** The guest set of slot {@code s} ({@link GuestSets}). */
    int guestSet(int s) {
        return (int) (slots[s * SLOT_LONGS + 2] >>> COUNT_BITS);
    }

    /** Sets slot {@code s}'s count (at least 1) and guest set. */
    void set(int s, long count, int guestSet) {
        if (count < 1 || count > MAX_COUNT || guestSet < 0 || guestSet > MAX_SET) {
            throw new IllegalArgumentException("count " + count + " or guest set " + guestSet + " out of range");
        }
        if (slots[s * SLOT_LONGS + 2] == 0) {
            used++;
        }
        slots[s * SLOT_LONGS + 2] = ((long) guestSet << COUNT_BITS) | count;
    }

    /** Contents stored. */
    int size() {
        return used;
    }

    int capacity() {
        return capacity;
    }

    /** The bytes the table's array takes. */
    long bytes() {
        return (long) slots.length * Long.BYTES;
    }

    /** Calls {@code visitor} with the count and guest set of every content stored. */
    void forEach(ContentVisitor visitor) {
        for (int s = 0; s < capacity; s++) {
            long meta = slots[s * SLOT_LONGS + 2];
            if (meta != 0) {
                visitor.content(meta & MAX_COUNT, (int) (meta >>> COUNT_BITS));
            }
        }
    }

    /** Receives one stored content. */
    @FunctionalInterface
    interface ContentVisitor {
        void content(long count, int guestSet);
    }

    private static int probe(long[] slots, int capacity, long high, long low) {
        int s = (int) Math.unsignedMultiplyHigh(high, capacity);
        while (true) {
            int base = s * SLOT_LONGS;
            if (slots[base + 2] == 0 || (slots[base] == high && slots[base + 1] == low)) {
                return s;
            }
            s = s + 1 == capacity ? 0 : s + 1;
        }
    }

    private void grow() {
        if (capacity == MAX_CAPACITY) {
            if (used + 1 >= capacity) {
                throw new IllegalStateException("the digest table is full at " + used + " contents");
            }
            growLimit = capacity - 1;
            return;
        }
        resize((int) Math.min(MAX_CAPACITY, Math.ceil(capacity * GROWTH)));
    }

    private void resize(int newCapacity) {
        long[] old = slots;
        int oldCapacity = capacity;
        slots = new long[newCapacity * SLOT_LONGS];
        capacity = newCapacity;
        growLimit = (int) Math.min(newCapacity - 1L, (long) (newCapacity * MAX_LOAD));
        for (int s = 0; s < oldCapacity; s++) {
            long meta = old[s * SLOT_LONGS + 2];
            if (meta != 0) {
                int t = probe(slots, capacity, old[s * SLOT_LONGS], old[s * SLOT_LONGS + 1]);
                slots[t * SLOT_LONGS] = old[s * SLOT_LONGS];
                slots[t * SLOT_LONGS + 1] = old[s * SLOT_LONGS + 1];
                slots[t * SLOT_LONGS + 2] = meta;
            }
        }
    }
}
