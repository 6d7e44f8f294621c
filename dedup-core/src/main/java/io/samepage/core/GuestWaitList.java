package io.samepage.core;

import java.util.Arrays;

/**
 * Destroyed guests whose page ids wait to be released ({@link PageIds}): an array that grows only in
 * {@link #promiseRoom}, so that adding allocates nothing. A destroy is promised its room before its
 * point of no return, in the list of guests destroyed and in the quarantine a release may move it to,
 * and adds only after it, with the lock let go in between: a release on the scanner's thread may empty
 * the lists meanwhile, and each keeps its array while room is promised. Otherwise {@link #clear} gives
 * the array back, as an {@code ArrayList}'s {@code clear} and {@code trimToSize} did: one sized by the
 * most guests ever destroyed between two releases (a round's guests, at worst) would stay, uncounted by
 * {@link PageIds#metadataBytes}.
 *
 * <p>Thread safety: none; the {@link PageIds} monitor guards every call.
 */
final class GuestWaitList {

    private static final Guest[] EMPTY = new Guest[0];

    private Guest[] guests = EMPTY;
    private int size;
    /** Room promised to adds to come ({@link #promiseRoom}), kept through {@link #clear}. */
    private int promised;

    /**
     * Makes room for {@code more} guests after those held and those promised room; grows by half again at
     * least, as an {@code ArrayList}.
     */
    private void makeRoom(int more) {
        int needed = size + promised + more;
        if (needed > guests.length) {
            guests = Arrays.copyOf(guests, Math.max(needed, guests.length + (guests.length >> 1)));
        }
    }

    /** Makes room for one guest and keeps it, through any {@link #clear}, for {@link #addPromised}. */
    void promiseRoom() {
        makeRoom(1);
        promised++;
    }

    /** Gives back room {@link #promiseRoom} kept and no add took. */
    void breakPromise() {
        promised--;
    }

    /** Appends {@code guest} into room {@link #promiseRoom} kept for it. Allocates nothing. */
    void addPromised(Guest guest) {
        guests[size] = guest;
        size++;
        promised--;
    }

    int size() {
        return size;
    }

    Guest get(int index) {
        return guests[index];
    }

    /** Empties the list: gives its array back, or, while room is promised, keeps it and drops its guests. */
    void clear() {
        if (promised == 0) {
            guests = EMPTY;
        } else {
            Arrays.fill(guests, 0, size, null);
        }
        size = 0;
    }
}
