package io.samepage.core;

import java.util.Arrays;
import org.agrona.collections.Int2IntHashMap;

/**
 * The duplicate frames of a {@link StableIndex}'s contents: every frame of such a content but the one a
 * lookup finds first (KSM's {@code stable_node_dup}s of a {@code stable_node_chain}), in two lists a
 * content: frames with room, and full frames (each maps {@code max_page_sharing} pages). A content's lists
 * are found by its group: the key of a content the hash chain holds a frame of, or, in the instance for
 * colliding contents ({@link CollidingFrames}), the collision tree's node that holds one of its frames.
 *
 * <p>What it keeps: a frame in a full list is full; every frame of the content with room is in its room list
 * or on its way there: a mapping of a full frame is dropped under the domain's lock
 * ({@link MergeDomain#releaseStable}), which then moves the frame ahead ({@link #noteRoom}). A room list may
 * hold full frames (filed full, or filled by a resident mapping); {@link #take} moves each it meets to the
 * full list, once. So a lookup that finds no room looks at one frame, whatever {@code max_page_sharing}
 * and however many frames the content has, and one that finds room at one more frame for each frame filled
 * since: O(1) amortized. Before, a content's frames were all in its hash chain, and at
 * {@code max_page_sharing} 2 (every frame full once filed) each lookup walked all of them.
 *
 * <p>The lists are circular and doubly linked through slots: three {@code int}s a slot (its frame, the slots
 * before and after it), a pair of sentinel slots a content (its room list, then its full list), found by group.
 * A frame's {@code next} link in the {@link FrameTable} holds {@code -2 - slot}, so it is found again in
 * O(1). About 12 bytes a duplicate frame, which maps at least one guest page; nothing until a content has a
 * second frame. Rejected: a fourth {@code int} a frame in the pool's table (a back link, to keep the chains
 * as they were), 4 bytes for every frame of the pool, which put the engine's metadata over its budget.
 *
 * <p>Thread safety: none; the owning {@link MergeDomain}'s lock guards every call. Allocates only when it
 * grows.
 */
final class DuplicateFrames {

    static final int NONE = -1;
    /** {@link #take}'s answer when the content has duplicates but every one is full. */
    static final int FULL = -2;
    /** A sentinel's frame: the head of a room list (its full list is the next slot). */
    private static final int ROOM_LIST = -2;
    /** A sentinel's frame: the head of a full list. */
    private static final int FULL_LIST = -3;
    private static final int MIN_SLOTS = 16;

    private final FrameTable frames;
    /** Group of a content with duplicates to its room list's sentinel; made with the first duplicate. */
    private Int2IntHashMap listsOf;
    private int[] frameOf;
    private int[] before;
    private int[] after;
    private int used;
    /** Free single slots, linked through {@link #after}. */
    private int freeSlots = NONE;
    /** Free sentinel pairs, linked through {@link #after} of their first slot. */
    private int freePairs = NONE;
    private int size;
    /** Frames {@link #take} looked at, ever. For tests. */
    private long steps;

    DuplicateFrames(FrameTable frames) {
        this.frames = frames;
    }

    /**
     * Puts {@code frame} among the duplicates of the content of {@code group}; returns its slot. Allocates
     * only if {@link #hasRoom} is false, and then changes nothing if it cannot ({@link #makeRoom}).
     */
    int add(int group, int frame) {
        makeRoom(group);
        int room = listsOf.get(group);
        if (room == NONE) {
            room = newPair();
            listsOf.put(group, room);
        }
        int slot = newSlot();
        frameOf[slot] = frame;
        linkAfter(room, slot);
        size++;
        return slot;
    }

    /** True if {@link #add} of a frame to {@code group} would allocate nothing. */
    boolean hasRoom(int group) {
        if (listsOf == null) {
            return false;
        }
        boolean newKey = listsOf.get(group) == NONE;
        int slots = slotsNeeded(newKey);
        return (slots == 0 || frameOf != null && used + slots <= frameOf.length)
                && (!newKey || listsOf.size() < listsOf.resizeThreshold());
    }

    /**
     * Makes room for one {@link #add} to {@code group}, which then allocates nothing: slots for the frame
     * and, for a content's first duplicate, for its pair of lists, and room in the map for its group (a put
     * past the map's threshold would rehash it). All or nothing: everything is allocated before anything is
     * replaced, so a failure leaves the arrays as they were, of one length.
     */
    void makeRoom(int group) {
        boolean newKey = listsOf == null || listsOf.get(group) == NONE;
        int slots = slotsNeeded(newKey);
        int[] grownFrameOf = frameOf;
        int[] grownBefore = before;
        int[] grownAfter = after;
        if (slots > 0 && (frameOf == null || used + slots > frameOf.length)) {
            int capacity = frameOf == null ? MIN_SLOTS : 2 * frameOf.length;
            grownFrameOf = frameOf == null ? new int[capacity] : Arrays.copyOf(frameOf, capacity);
            grownBefore = before == null ? new int[capacity] : Arrays.copyOf(before, capacity);
            grownAfter = after == null ? new int[capacity] : Arrays.copyOf(after, capacity);
        }
        Int2IntHashMap grownLists = listsOf;
        if (listsOf == null) {
            grownLists = new Int2IntHashMap(NONE);
        } else if (newKey && listsOf.size() >= listsOf.resizeThreshold()) {
            grownLists = new Int2IntHashMap(2 * listsOf.capacity(), listsOf.loadFactor(), NONE);
            grownLists.putAll(listsOf);
        }
        frameOf = grownFrameOf;
        before = grownBefore;
        after = grownAfter;
        listsOf = grownLists;
    }

    /** Slots an add takes from the arrays' unused end: one for the frame, two for a new content's lists. */
    private int slotsNeeded(boolean newKey) {
        return (freeSlots == NONE ? 1 : 0) + (newKey && freePairs == NONE ? 2 : 0);
    }

    /** True if {@code slot} holds {@code frame}: the frame is a duplicate here. */
    boolean holds(int slot, int frame) {
        return frameOf != null && slot >= 0 && slot < used && frameOf[slot] == frame;
    }

    /** True if the content of {@code group} has duplicates. */
    boolean has(int group) {
        return listsOf != null && listsOf.get(group) != NONE;
    }

    /**
     * Takes a reference on a duplicate of the content of {@code group} that maps fewer than {@code maxSharing}
     * pages. Full frames it meets in the room list go to the full list, as does the one it fills.
     *
     * @return the frame, its refcount already incremented; {@link #FULL} if all are full; {@link #NONE} if
     *         the content has no duplicates
     */
    int take(int group, int maxSharing) {
        int room = listsOf == null ? NONE : listsOf.get(group);
        if (room == NONE) {
            return NONE;
        }
        for (int slot = after[room]; slot != room; slot = after[room]) {
            steps++;
            int frame = frameOf[slot];
            int refs = frames.refCount(frame);
            if (refs < maxSharing && refs > 0 && frames.tryIncrementRef(frame)) {
                if (frames.refCount(frame) >= maxSharing) {
                    move(slot, room + 1);
                }
                return frame;
            }
            move(slot, room + 1);    // full, or its last mapping is going: until it has room again
        }
        return FULL;
    }

    /**
     * The duplicate in {@code slot} (of the content of {@code group}) has room again: it goes to the front
     * of its room list.
     */
    void noteRoom(int slot, int group) {
        move(slot, listsOf.get(group));
    }

    /** Takes the duplicate in {@code slot} out (of the content of {@code group}). Allocates nothing. */
    void remove(int slot, int group) {
        unlink(slot);
        freeSlot(slot);
        size--;
        int room = listsOf.get(group);
        if (after[room] == room && after[room + 1] == room + 1) {
            listsOf.remove(group);
            after[room] = freePairs;
            frameOf[room] = NONE;
            frameOf[room + 1] = NONE;
            freePairs = room;
        }
    }

    /**
     * Takes out one duplicate of the content of {@code group}, which has some, one with room if there is
     * one; returns its frame. Allocates nothing.
     */
    int removeAny(int group) {
        int room = listsOf.get(group);
        int slot = after[room] != room ? after[room] : after[room + 1];
        int frame = frameOf[slot];
        remove(slot, group);
        return frame;
    }

    /** Duplicate frames held. */
    int size() {
        return size;
    }

    long steps() {
        return steps;
    }

    /** A frame in a full list that maps fewer than {@code maxSharing} pages, or {@link #NONE}. For tests. */
    int withRoomAmongFull(int maxSharing) {
        for (int sentinel = 0; sentinel < used; sentinel++) {
            if (frameOf[sentinel] != FULL_LIST) {
                continue;
            }
            for (int slot = after[sentinel]; slot != sentinel; slot = after[slot]) {
                if (frames.refCount(frameOf[slot]) < maxSharing) {
                    return frameOf[slot];
                }
            }
        }
        return NONE;
    }

    /**
     * Bytes of this part ({@link MetadataSizes}): its object (frames, listsOf, three arrays; used,
     * freeSlots, freePairs, size; steps), its map and its three slot arrays once made.
     */
    long metadataBytes() {
        return MetadataSizes.object(5 * MetadataSizes.REFERENCE + 4 * Integer.BYTES + Long.BYTES)
                + (listsOf == null ? 0 : MetadataSizes.int2IntMap(listsOf.capacity()))
                + (frameOf == null ? 0 : 3 * MetadataSizes.array(frameOf.length, Integer.BYTES));
    }

    /** Moves {@code slot} to the front of the list whose sentinel is {@code sentinel}. */
    private void move(int slot, int sentinel) {
        unlink(slot);
        linkAfter(sentinel, slot);
    }

    private void linkAfter(int at, int slot) {
        int next = after[at];
        before[slot] = at;
        after[slot] = next;
        before[next] = slot;
        after[at] = slot;
    }

    private void unlink(int slot) {
        after[before[slot]] = after[slot];
        before[after[slot]] = before[slot];
    }

    private int newSlot() {
        if (freeSlots != NONE) {
            int slot = freeSlots;
            freeSlots = after[slot];
            return slot;
        }
        return used++;          // within the arrays: add made room
    }

    private void freeSlot(int slot) {
        frameOf[slot] = NONE;
        after[slot] = freeSlots;
        freeSlots = slot;
    }

    /** Two empty lists in consecutive slots: a room list, then a full list. */
    private int newPair() {
        int room;
        if (freePairs != NONE) {
            room = freePairs;
            freePairs = after[room];
        } else {
            room = used;            // within the arrays: add made room
            used += 2;
        }
        frameOf[room] = ROOM_LIST;
        frameOf[room + 1] = FULL_LIST;
        before[room] = after[room] = room;
        before[room + 1] = after[room + 1] = room + 1;
        return room;
    }
}
