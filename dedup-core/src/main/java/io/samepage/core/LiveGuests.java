package io.samepage.core;

import java.util.List;
import java.util.concurrent.ConcurrentSkipListMap;
import java.util.function.ToLongFunction;

/**
 * The engine's live guests by creation number, so in creation order: listing or unlisting one costs
 * the same however many are live, and they are read without a lock (the scanner takes its rounds here
 * while {@link DedupEngine#close} may hold the engine's monitor and wait for its batch).
 *
 * <p>A removal that fails on the heap may leave a destroyed guest listed. The JDK's skip list makes a
 * marker node as it unlinks an entry; an {@link OutOfMemoryError} there leaves the node half unlinked
 * (its value gone, so no longer seen), and a later removal that meets it helps unlink it, so may fail
 * the same way before its own entry is out. So every reader but {@link #array} skips destroyed guests,
 * {@link #array}'s callers skip them, and the next destroy or close unlists them
 * ({@link #unlistDestroyed}): a guest is never seen live, nor taken down, twice.
 *
 * <p>Thread safety: reads from any thread; changes under the engine's monitor.
 */
final class LiveGuests {

    private final ConcurrentSkipListMap<Long, Guest> guests = new ConcurrentSkipListMap<>();
    /** A removal failed since the last {@link #unlistDestroyed}: a destroyed guest may be listed. Guarded by the engine's monitor. */
    private boolean destroyedListed;

    /**
     * Lists {@code guest} under {@code key}, its creation number, boxed by the caller before: the undo of
     * a failure here must allocate nothing. Where this throws, its node may be linked already: the caller
     * undoes the guest as a destroy would, which unlists it.
     */
    void add(Long key, Guest guest) {
        guests.put(key, guest);
    }

    /**
     * Unlists the guest created {@code key}-th; allocates nothing beyond the skip list's marker node.
     *
     * @return null, or the {@link Error} its removal threw: then the guest may still be listed
     */
    Error remove(Long key) {
        try {
            guests.remove(key);
            return null;
        } catch (Error e) {
            destroyedListed = true;
            return e;
        }
    }

    /**
     * Unlists the destroyed guests a failed removal left listed, if any; nothing to do otherwise. A
     * removal failing again leaves them listed (and skipped) for the next call, and is not thrown: the
     * caller's own work does not depend on it.
     */
    void unlistDestroyed() {
        if (destroyedListed) {
            try {
                guests.values().removeIf(Guest::isDestroyed);
                destroyedListed = false;
            } catch (Error e) {
                // Left for the next destroy or close: readers skip destroyed guests meanwhile.
            }
        }
    }

    /** The guests not destroyed, in creation order. */
    List<Guest> list() {
        return guests.values().stream().filter(guest -> !guest.isDestroyed()).toList();
    }

    /** Every listed guest in creation order, including any destroyed one a failed removal left: callers skip those. */
    Guest[] array() {
        return guests.values().toArray(new Guest[0]);
    }

    /** The sum of {@code value} over the guests not destroyed. */
    long sum(ToLongFunction<Guest> value) {
        long sum = 0;
        for (Guest guest : guests.values()) {
            sum += guest.isDestroyed() ? 0 : value.applyAsLong(guest);
        }
        return sum;
    }
}
