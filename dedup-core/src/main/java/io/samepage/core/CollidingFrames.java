package io.samepage.core;

import java.util.function.IntConsumer;

/**
 * A {@link StableIndex}'s frames of contents whose key its hash chain held for other content when their
 * first frame was filed, all their later frames too (one content, one place): a {@link ContentTree}
 * ordered by key and bytes with one node per content, which holds one frame of it, and that content's
 * other frames in {@link DuplicateFrames} lists found by the node, those with room ahead of the full ones.
 *
 * <p>So a lookup of a colliding content costs what one of a chained content costs, plus the tree's
 * O(log n) compares for n colliding contents: it looks at the node's frame, then at the first of the room
 * list, and a lookup that finds every frame full looks at one or two frames however many the content has.
 * Before, every frame of a colliding content was a node of its own, and such a lookup looked at, and
 * compared, each of them: O(k) for k frames. A frame in the tree has {@code -2 - node} in its {@code next}
 * link in the {@link FrameTable}, a duplicate {@code -2 - slot}, told apart by the slot's frame ({@link
 * DuplicateFrames#holds}). When the node's frame leaves, a duplicate takes its place in the same node, so
 * the lists stay found by it. A duplicate's node is found again by its bytes, in O(log n) compares, as a
 * node's removal already compared: no fourth {@code int} a slot.
 *
 * <p>Counted as {@link StableIndex} counts a chained content: {@link #count} tells one frame of a
 * content from more than one, all that KSM's {@code stable_node_chains} and {@code stable_node_dups} need.
 * Costs nothing until hashes collide: the tree and the lists make their arrays with their first entry.
 *
 * <p>Thread safety: none; the owning {@link MergeDomain}'s lock guards every call. Allocates only in
 * {@link #makeRoom}; {@link #add} and {@link #remove} allocate nothing.
 */
final class CollidingFrames {

    static final int NONE = -1;
    /** {@link #take}'s answer when frames of equal content are here but every one is full. */
    static final int FULL = -2;

    private final FrameTable frames;
    private final ContentTree tree;
    private final DuplicateFrames duplicates;
    /** Frames {@link #take} looked at in the tree, ever (its duplicates count their own). For tests. */
    private long steps;

    CollidingFrames(FrameTable frames, PageCompare compare, long secret) {
        this.frames = frames;
        this.duplicates = new DuplicateFrames(frames);
        this.tree = new ContentTree(new ContentTree.Entries() {
            @Override
            public int key(int frame) {
                return frames.stableKey(frame);
            }

            @Override
            public long offset(int frame) {
                return FramePool.offsetOf(frame);
            }
        }, compare, secret);
    }

    /**
     * Takes a reference on a frame here whose bytes equal the page at {@code offset} (key {@code key}) and
     * that maps fewer than {@code maxSharing} pages: the node's frame, else the first duplicate with room.
     *
     * @return the frame, its refcount already incremented; {@link #FULL} if equal frames are here but all are
     *         full; {@link #NONE} if no frame here holds these bytes
     */
    int take(int key, long offset, int maxSharing) {
        int node = tree.findNode(key, offset);
        if (node == ContentTree.NONE) {
            return NONE;
        }
        int first = tree.entryAt(node);
        steps++;
        int refs = frames.refCount(first);
        if (refs < maxSharing && refs > 0 && frames.tryIncrementRef(first)) {
            return first;
        }
        int duplicate = duplicates.take(node, maxSharing);
        if (duplicate >= 0) {
            return duplicate;
        }
        return refs >= maxSharing || duplicate == DuplicateFrames.FULL ? FULL : NONE;
    }

    /**
     * The tree's node of the content whose bytes equal the page at {@code offset} (key {@code key}), or
     * {@link #NONE}: where {@link #add} puts a frame of that content. O(log n) compares.
     */
    int nodeOf(int key, long offset) {
        return tree.findNode(key, offset);
    }

    /** The frames of {@code node}'s content (a node of {@link #nodeOf}, or NONE: none), counted up to 2. */
    int count(int node) {
        return node == NONE ? 0 : duplicates.has(node) ? 2 : 1;
    }

    /** True if {@link #add} of a frame to {@code node} (a node of {@link #nodeOf}, or NONE) allocates nothing. */
    boolean hasRoom(int node) {
        return node == NONE ? tree.hasRoom() : duplicates.hasRoom(node);
    }

    /**
     * Makes room for one {@link #add} to {@code node} (a node of {@link #nodeOf}, or NONE: a new node), which
     * then allocates nothing. If it cannot grow it throws, and what a lookup finds has not changed.
     */
    void makeRoom(int node) {
        if (node == NONE) {
            tree.makeRoom();
        } else {
            duplicates.makeRoom(node);
        }
    }

    /**
     * Files {@code frame}, whose key is set in the frame table: among the duplicates of {@code node}'s
     * content, or, if {@code node} is NONE (no frame here holds its bytes), in a node of its own. Returns
     * what its {@code next} link holds then ({@code -2 - slot or node}). Allocates only if {@link #hasRoom}
     * is false, and then changes nothing if it cannot.
     */
    int add(int frame, int node) {
        return -2 - (node == NONE ? tree.insert(frame) : duplicates.add(node, frame));
    }

    /** True if {@code frame}'s {@code next} link, {@code link}, names its place here. */
    boolean holds(int link, int frame) {
        return duplicates.holds(-2 - link, frame) || tree.holds(-2 - link, frame);
    }

    /**
     * Takes out {@code frame}, whose {@code next} link {@code link} names its place here ({@link #holds}).
     * If it was the node's frame and its content has duplicates, one of them takes its place, its link set
     * to the node. Allocates nothing.
     */
    void remove(int frame, int link) {
        int at = -2 - link;
        if (duplicates.holds(at, frame)) {
            duplicates.remove(at, groupOf(frame));
        } else if (duplicates.has(at)) {
            int successor = duplicates.removeAny(at);        // one with room, if any: the node's frame is looked at first
            tree.replace(at, successor);
            frames.setNext(successor, link);
        } else {
            tree.remove(at);
        }
    }

    /**
     * Tells that {@code frame}, whose {@code next} link {@code link} names its place here, full until now,
     * has room: a duplicate goes ahead of its content's full frames. The node's frame is looked at by every
     * lookup of its content anyway.
     */
    void noteRoom(int frame, int link) {
        int slot = -2 - link;
        if (duplicates.holds(slot, frame)) {
            duplicates.noteRoom(slot, groupOf(frame));
        }
    }

    /** The node of duplicate {@code frame}'s content, found by its key and bytes, which are the node's. */
    private int groupOf(int frame) {
        int node = tree.findNode(frames.stableKey(frame), FramePool.offsetOf(frame));
        if (node == ContentTree.NONE) {
            throw new IllegalStateException("colliding frames: no node holds the content of duplicate frame " + frame);
        }
        return node;
    }

    /** Calls {@code action} with the frame of every node: one frame of each content, whose key is the content's. */
    void forEachContent(IntConsumer action) {
        tree.forEachLive(action);
    }

    /** False only if no content here has key {@code key}: reads keys only, O(log n) nodes. */
    boolean mayHoldKey(int key) {
        return tree.mayHoldKey(key);
    }

    /** True if no frame is here. Every lookup asks, so it reads one field. */
    boolean isEmpty() {
        return tree.size() == 0;       // a content with duplicates has its node
    }

    /** Frames here. */
    int size() {
        return tree.size() + duplicates.size();
    }

    /** Frames {@link #take} looked at, ever: the nodes' and the duplicates'. For tests. */
    long steps() {
        return steps + duplicates.steps();
    }

    /** A duplicate frame among full ones that maps fewer than {@code maxSharing} pages, or NONE. For tests. */
    int withRoomAmongFull(int maxSharing) {
        return duplicates.withRoomAmongFull(maxSharing);
    }

    /**
     * Bytes of this part ({@link MetadataSizes}): its object (frames, tree, duplicates; steps), the tree
     * and the duplicates.
     */
    long metadataBytes() {
        return MetadataSizes.object(3 * MetadataSizes.REFERENCE + Long.BYTES) + tree.metadataBytes()
                + duplicates.metadataBytes();
    }
}
