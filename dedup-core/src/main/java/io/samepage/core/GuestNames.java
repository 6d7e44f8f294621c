package io.samepage.core;

import java.util.HashSet;

/**
 * The names of an engine's live guests: a {@code HashSet} that knows the heap it takes, for
 * {@link DedupEngine#metadataBytes}. A {@code HashMap}'s table doubles whenever its entries pass three
 * quarters of it and never shrinks, so its length follows from the most names the set ever held;
 * each name adds a node ({@code hash}, {@code key}, {@code value}, {@code next}). The names themselves
 * are counted with their guests ({@link MetadataSizes#guest}).
 *
 * <p>Thread safety: none; the engine's monitor guards every call.
 */
final class GuestNames {

    /** This (names; peak), the HashSet (its map) and the HashMap (table, three views; size, modCount, threshold, loadFactor). */
    private static final long SETS = MetadataSizes.object(MetadataSizes.REFERENCE + Integer.BYTES)
            + MetadataSizes.object(MetadataSizes.REFERENCE) + MetadataSizes.object(4L * MetadataSizes.REFERENCE + 4 * Integer.BYTES);
    private static final long NODE = MetadataSizes.object(Integer.BYTES + 3L * MetadataSizes.REFERENCE);
    /** A HashMap's first table, made at its first entry. */
    private static final int FIRST_TABLE = 16;

    private final HashSet<String> names = new HashSet<>();
    /** The most names held at once: what sized the table. */
    private int peak;

    /**
     * Adds {@code name}; all or nothing: a {@code HashMap} links its new entry before it grows its table,
     * so where the growth fails (out of heap) the name is taken out again.
     *
     * @throws DedupException INVALID_ARGUMENT if a live guest has {@code name}
     */
    void add(String name) {
        if (names.contains(name)) {
            throw new DedupException(DedupException.Kind.INVALID_ARGUMENT, "a guest named '" + name + "' exists already");
        }
        try {
            names.add(name);
        } catch (RuntimeException | Error e) {
            names.remove(name);
            throw e;
        }
        peak = Math.max(peak, names.size());
    }

    void remove(String name) {
        names.remove(name);
    }

    /** Bytes of the set, its table and its nodes. */
    long metadataBytes() {
        long table = 0;
        if (peak > 0) {
            table = FIRST_TABLE;
            while (peak > table / 4 * 3) {
                table *= 2;
            }
        }
        return SETS + (table == 0 ? 0 : MetadataSizes.array(table, MetadataSizes.REFERENCE))
                + NODE * names.size();
    }
}
