package io.samepage.core;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.ReentrantLock;
import org.agrona.collections.Int2IntHashMap;
import org.agrona.collections.IntArrayList;
import org.agrona.collections.Long2LongHashMap;

/**
 * A merge domain: the set of guests whose pages may share frames. Pages never merge across domains.
 *
 * <p><b>Why domains.</b> Sharing is observable: a write to a shared page takes longer (it copies
 * first), so a guest that can place a page and time a write to it learns whether some other guest
 * holds the same content. Published attacks turn this into data leaks and into Rowhammer targeting
 * of a victim's pages: "Dedup Est Machina" (Bosman et al., IEEE S&amp;P 2016) leaked randomized
 * pointers through Windows' deduplication, and "Flip Feng Shui" (Razavi et al., USENIX Security 2016)
 * used KSM to place a victim's page on a vulnerable row. VMware responded by salting page sharing
 * per VM by default (KB 2080735), which turns inter-VM sharing off unless an administrator groups
 * VMs. Samepage makes the grouping explicit: a guest is created in a domain, and the recommended use
 * is <b>one domain per tenant</b>, so only guests that trust each other can observe each other.
 *
 * <p>Each domain owns its stable index (hash to shared frames, with chains of duplicates) and its
 * unstable index (hash to a candidate guest page, emptied at every full scan), and, unless the engine
 * shares one, its own zero frame.
 *
 * <p>The domain also keeps the <em>resident registry</em>: SHA-256 digest to frame, for frames loaded
 * from verified image blocks ({@link PageInstaller}). A registered frame is always in the stable
 * index, and it leaves the registry in the same critical section that takes it out of the stable
 * index, so the registry can never name a freed or reused frame. (It lives here rather than in the
 * image-index module for exactly that reason.) Lookups compare all 32 bytes of the digest.
 *
 * <p>Thread safety: the stable index and the registry are guarded by this domain's lock, which guest writers take
 * briefly when they drop a frame's last mapping; the unstable index belongs to the scanner thread.
 */
public final class MergeDomain {

    static final long NONE = -1;

    private final String name;
    private final int id;
    private final int zeroFrame;
    private final FramePool pool;

    private final ReentrantLock stableLock = new ReentrantLock();
    private final Long2LongHashMap stable = new Long2LongHashMap(64, 0.65f, NONE);
    private final Long2LongHashMap unstable = new Long2LongHashMap(64, 0.65f, NONE);
    private static final VarHandle DIGEST_WORD =
            MethodHandles.byteArrayViewVarHandle(long[].class, ByteOrder.LITTLE_ENDIAN);

    /** Registry: the first 8 bytes of a digest to the frame; the full digests sit in {@link #digests}. */
    private final Long2LongHashMap registry = new Long2LongHashMap(64, 0.65f, NONE);
    private final Int2IntHashMap slotOfFrame = new Int2IntHashMap(-1);
    private final IntArrayList freeSlots = new IntArrayList();
    private long[] digests = new long[4 * 64];
    private int slotsUsed;

    private final AtomicLong pagesShared = new AtomicLong();
    private final AtomicLong pagesSharing = new AtomicLong();

    MergeDomain(String name, int id, int zeroFrame, FramePool pool) {
        this.name = name;
        this.id = id;
        this.zeroFrame = zeroFrame;
        this.pool = pool;
    }

    public String name() {
        return name;
    }

    public int id() {
        return id;
    }

    /** The frame that never-written and zero-merged pages of this domain map. */
    int zeroFrame() {
        return zeroFrame;
    }

    ReentrantLock stableLock() {
        return stableLock;
    }

    /** Head of the stable chain for {@code hash}, or -1. Caller holds {@link #stableLock()}. */
    int stableHead(long hash) {
        return (int) stable.get(hash);
    }

    /** Puts {@code frame}, holding content with {@code hash}, into the stable index. Caller holds the lock. */
    void addStable(int frame, long hash) {
        pool.setStableHash(frame, hash);
        long head = stable.get(hash);
        pool.setNext(frame, (int) head);
        stable.put(hash, frame);
        pagesShared.incrementAndGet();
    }

    /** Takes {@code frame} out of the stable index. Caller holds the lock. */
    void removeStable(int frame) {
        long hash = pool.stableHash(frame);
        int current = (int) stable.get(hash);
        int previous = -1;
        while (current != NONE && current != frame) {
            previous = current;
            current = pool.next(current);
        }
        if (current == NONE) {
            throw new IllegalStateException("frame " + frame + " is not in the stable index of domain " + name);
        }
        int after = pool.next(frame);
        if (previous == -1) {
            if (after == NONE) {
                stable.remove(hash);
            } else {
                stable.put(hash, after);
            }
        } else {
            pool.setNext(previous, after);
        }
        pool.setNext(frame, (int) NONE);
        pagesShared.decrementAndGet();
        unregister(frame);
    }

    /** The registered frame whose content has SHA-256 {@code digest[offset..offset+32)}, or -1. Caller holds the lock. */
    int registeredFrame(byte[] digest, int offset) {
        int frame = (int) registry.get(digestWord(digest, offset, 0));
        if (frame == NONE) {
            return frame;
        }
        int slot = slotOfFrame.get(frame);
        for (int w = 0; w < 4; w++) {
            if (digests[4 * slot + w] != digestWord(digest, offset, w)) {
                return (int) NONE;
            }
        }
        return frame;
    }

    /**
     * Registers stable {@code frame} under its verified digest. Another frame registered under the
     * same first 8 digest bytes keeps its place (this one is then simply not registered). Caller holds
     * the lock.
     */
    void register(int frame, byte[] digest, int offset) {
        long key = digestWord(digest, offset, 0);
        if (registry.get(key) != NONE || slotOfFrame.get(frame) != -1) {
            return;
        }
        int slot;
        if (freeSlots.isEmpty()) {
            slot = slotsUsed++;
            if (4 * slotsUsed > digests.length) {
                digests = java.util.Arrays.copyOf(digests, digests.length * 2);
            }
        } else {
            slot = freeSlots.popInt();
        }
        for (int w = 0; w < 4; w++) {
            digests[4 * slot + w] = digestWord(digest, offset, w);
        }
        slotOfFrame.put(frame, slot);
        registry.put(key, frame);
    }

    /** Takes {@code frame} out of the registry (it stays in the stable index). Caller holds the lock. */
    void unregister(int frame) {
        int slot = slotOfFrame.remove(frame);
        if (slot == -1) {
            return;
        }
        registry.remove(digests[4 * slot]);
        freeSlots.addInt(slot);
    }

    /** Frames in this domain's resident registry: loaded from verified image blocks and still mapped. */
    public long residentFrames() {
        stableLock.lock();
        try {
            return slotOfFrame.size();
        } finally {
            stableLock.unlock();
        }
    }

    private static long digestWord(byte[] digest, int offset, int word) {
        return (long) DIGEST_WORD.get(digest, offset + 8 * word);
    }

    /** The candidate page for {@code hash} in the unstable index (packed by {@link #packPage}), or -1. Scanner only. */
    long unstableCandidate(long hash) {
        return unstable.get(hash);
    }

    void putUnstable(long hash, long packedPage) {
        unstable.put(hash, packedPage);
    }

    void removeUnstable(long hash) {
        unstable.remove(hash);
    }

    void clearUnstable() {
        unstable.clear();
    }

    static long packPage(int guestId, int page) {
        return (long) guestId << 32 | (page & 0xFFFF_FFFFL);
    }

    static int guestOf(long packed) {
        return (int) (packed >>> 32);
    }

    static int pageOf(long packed) {
        return (int) packed;
    }

    long pagesShared() {
        return pagesShared.get();
    }

    long pagesSharing() {
        return pagesSharing.get();
    }

    void addSharing(long delta) {
        pagesSharing.addAndGet(delta);
    }

    long pagesUnshared() {
        return unstable.size();
    }

    /**
     * Counts {@code [stable_node_chains, stable_node_dups]}: hashes whose stable chain holds more
     * than one frame, and the frames in those chains. Walks the stable index under its lock.
     */
    long[] chainCounts() {
        stableLock.lock();
        try {
            long[] counts = new long[2];
            stable.forEachLong((hash, head) -> {
                int length = 0;
                for (int f = (int) head; f != NONE; f = pool.next(f)) {
                    length++;
                }
                if (length > 1) {
                    counts[0]++;
                    counts[1] += length;
                }
            });
            return counts;
        } finally {
            stableLock.unlock();
        }
    }

    /** Bytes of this domain's index tables and registry, as allocated. */
    long metadataBytes() {
        return 16L * (stable.capacity() + unstable.capacity() + registry.capacity())
                + 8L * (slotOfFrame.capacity() + digests.length) + 4L * freeSlots.capacity();
    }

    @Override
    public String toString() {
        return "domain " + name;
    }
}
