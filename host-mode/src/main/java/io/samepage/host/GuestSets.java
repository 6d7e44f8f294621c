package io.samepage.host;

import java.util.Arrays;
import java.util.function.IntConsumer;

/**
 * The sets of guests that hold a content, interned as a trie: guests are read one after another, so
 * a set is its newest guest added to the set before it, and set {@code s} is stored as
 * {@code parent[s]} and {@code newest[s]}. Adding guest {@code g} to a set that lacks it is the one
 * transition; transitions of the guest being read are cached per set, so a page costs an array read.
 * Set 0 is the empty set. Sets are few in practice (tens for a handful of guests); at most one is made
 * per (content, guest) pair, and past {@link #MAX_SETS} every further set is {@link #OVERFLOW}, whose
 * members are unknown: pairwise counts are then incomplete ({@link #overflowed()}).
 *
 * <p>Not thread safe: a single writer.
 */
final class GuestSets {

    static final int MAX_GUESTS = 1 << 16;
    static final int OVERFLOW = DigestTable.MAX_SET;
    static final int MAX_SETS = OVERFLOW - MAX_GUESTS;

    private int[] parent = new int[64];
    private int[] newest = new int[64];
    private int[] next = new int[64];
    private int size = 1;
    private int current = -1;
    private boolean overflowed;

    GuestSets() {
        newest[0] = -1;
        Arrays.fill(next, -1);
    }

    /** Starts guest {@code guest} (the previous one plus one) and returns the set holding only it. */
    int begin(int guest) {
        if (guest != current + 1 || guest >= MAX_GUESTS) {
            throw new IllegalArgumentException("guest " + guest + " out of order or beyond " + MAX_GUESTS);
        }
        current = guest;
        Arrays.fill(next, 0, size, -1);
        return add(0, guest);
    }

    /** The set {@code set} plus the current guest. */
    int withCurrent(int set) {
        if (set == OVERFLOW) {
            return OVERFLOW;
        }
        if (newest[set] == current) {
            return set;
        }
        int cached = next[set];
        if (cached >= 0) {
            return cached;
        }
        if (size >= MAX_SETS) {
            overflowed = true;
            return OVERFLOW;
        }
        int made = add(set, current);
        next[set] = made;
        return made;
    }

    /** The guest added last to {@code set}: its only guest if it has one; -1 for the empty or overflow set. */
    int newest(int set) {
        return set == OVERFLOW ? -1 : newest[set];
    }

    /** Calls {@code visitor} with each guest of {@code set}, newest first. */
    void members(int set, IntConsumer visitor) {
        for (int s = set; s != 0 && s != OVERFLOW; s = parent[s]) {
            visitor.accept(newest[s]);
        }
    }

    int size() {
        return size;
    }

    boolean overflowed() {
        return overflowed;
    }

    private int add(int base, int guest) {
        if (size == parent.length) {
            int grown = (int) Math.min(MAX_SETS + 1L, size * 2L);
            parent = Arrays.copyOf(parent, grown);
            newest = Arrays.copyOf(newest, grown);
            next = Arrays.copyOf(next, grown);
            Arrays.fill(next, size, grown, -1);
        }
        parent[size] = base;
        newest[size] = guest;
        next[size] = -1;
        return size++;
    }
}
