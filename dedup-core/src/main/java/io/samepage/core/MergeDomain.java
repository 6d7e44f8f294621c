package io.samepage.core;

import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.IntConsumer;

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
 * <p>Each domain owns its stable index ({@link StableIndex}: key to shared frames, with chains of
 * duplicates) and its unstable index ({@link UnstableIndex}: key to a candidate guest page, emptied at
 * every full scan), and, unless the engine shares one, its own zero frame. A key is the fast hash
 * folded to 32 bits ({@link #keyOf}); it only files content, it never decides a merge.
 *
 * <p>The domain also keeps the <em>resident registry</em> ({@link ResidentRegistry}): SHA-256 digest to
 * frame, for frames loaded from verified image blocks ({@link PageInstaller}). A registered frame is
 * always in the stable index, and it leaves the registry in the same critical section that takes it out
 * of the stable index, so the registry can never name a freed or reused frame. (It lives here rather
 * than in the image-index module for exactly that reason.) Lookups compare all 32 bytes of the digest.
 *
 * <p>Thread safety: the stable index and the registry are guarded by this domain's lock, which guest writers take
 * briefly when they drop a frame's last mapping, or a mapping of a full frame ({@link #releaseStable});
 * the unstable index by one lock per shard of keys ({@link #unstableLock}), which the scanner's threads
 * take and may hold while they take this one.
 */
public final class MergeDomain {

    static final long NONE = -1;

    private final String name;
    private final int id;
    private final int zeroFrame;
    private final FramePool pool;

    private final ReentrantLock stableLock = new ReentrantLock();
    private final StableIndex stable;
    private final UnstableShards unstable;
    /** The engine's page ids: where a filing reads the full scan it marks a guest with. */
    private final PageIds pageIds;
    /** The resident registry; guarded by {@link #stableLock}. */
    private final ResidentRegistry registry = new ResidentRegistry();
    private final AtomicLong pagesShared = new AtomicLong();
    private final AtomicLong pagesSharing = new AtomicLong();
    /** Releases of stable frames' mappings, and the removal and free of a last one. */
    private final StableRelease release;

    MergeDomain(String name, int id, int zeroFrame, FramePool pool, PageIds pageIds, PageCompare compare, long secret) {
        this.name = name;
        this.id = id;
        this.zeroFrame = zeroFrame;
        this.pool = pool;
        this.stable = new StableIndex(pool, compare, secret);
        this.pageIds = pageIds;
        this.unstable = new UnstableShards(pageIds, compare, secret ^ 0x5DEE_CE66_DL);
        this.release = new StableRelease(name, stableLock, stable, registry, pool, pagesShared, pagesSharing);
    }

    /** The 32-bit key the indexes file content with fast hash {@code hash} under. */
    static int keyOf(long hash) {
        return (int) (hash ^ (hash >>> 32));
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

    /**
     * Counts the frames {@code domains} hold in their stable indexes and, if there are none, runs {@code
     * change}; returns the count ({@link ScanKnobs.SharedFrames}). Holds every domain's lock, taken in the
     * list's order, from the count to the end of the change: no merge files a frame in between, and one
     * waiting for a lock reads what the change wrote. Holds {@code joining} throughout, which the engine
     * holds to add a domain to {@code domains}: a domain that joined meanwhile would merge unlocked.
     */
    static long runIfNoneShared(List<MergeDomain> domains, Object joining, Runnable change) {
        synchronized (joining) {
            MergeDomain[] all = domains.toArray(new MergeDomain[0]);
            int locked = 0;
            try {
                long shared = 0;
                for (MergeDomain domain : all) {
                    domain.stableLock.lock();
                    locked++;
                    shared += domain.pagesShared();
                }
                if (shared == 0) {
                    change.run();
                }
                return shared;
            } finally {
                while (locked > 0) {
                    all[--locked].stableLock.unlock();
                }
            }
        }
    }

    /** The lock that guards the unstable index for {@code key} ({@link UnstableShards}). */
    ReentrantLock unstableLock(int key) {
        return unstable.lock(key);
    }

    /** Frames the stable index's lookups looked at, ever. For tests. */
    long stableTakeSteps() {
        return stable.takeSteps();
    }

    /** A stable frame the index holds among full ones that maps fewer than {@code maxSharing} pages, or -1. For tests. */
    int stableWithRoomAmongFull(int maxSharing) {
        return stable.withRoomAmongFull(maxSharing);
    }

    /** Frames the stable index holds. Caller holds the lock. For tests. */
    int stableFrames() {
        return stable.size();
    }

    /** Where stable {@code frame}'s content is filed ({@link StableIndex#placeOf}). Caller holds the lock. For tests. */
    int stablePlaceOf(int frame) {
        return stable.placeOf(frame);
    }

    /**
     * Runs {@code hook} from now on before the stable index allocates (to grow, or to rebuild its filter)
     * for a frame it files. For tests: a hook that throws {@link OutOfMemoryError} stands for the
     * allocation failing.
     */
    void beforeStableIndexGrows(Runnable hook) {
        stableLock.lock();
        try {
            stable.beforeGrowth(hook);
        } finally {
            stableLock.unlock();
        }
    }

    /**
     * Takes a reference on a stable frame whose bytes equal the page at {@code offset} and that maps fewer
     * than {@code maxSharing} pages ({@link StableIndex#take}). Caller holds the lock.
     *
     * @return the frame; {@link StableIndex#FULL} if every equal frame is full; {@link StableIndex#NONE}
     */
    int takeStable(int key, long offset, int maxSharing) {
        return stable.take(key, offset, maxSharing);
    }

    /** False if no stable frame can hold bytes with {@code key}: the lookup can be skipped. Caller holds the lock. */
    boolean mayHoldStable(int key) {
        return stable.mayHold(key);
    }

    /** {@link #mayHoldStable} without the lock: false only if no frame was filed under {@code key} just now. */
    boolean mayHoldStableUnlocked(int key) {
        return stable.mayHoldUnlocked(key);
    }

    /**
     * {@link #mayHoldStable}, the filter asked first without the lock, then, where it says "may", the index
     * under it. For a filed page's visit: each wrong "may" took the page out of the unstable index and filed
     * it again, every full scan. Takes the lock; the caller may hold a page's stripe, never this lock.
     */
    boolean mayHoldStableLocked(int key) {
        if (!stable.mayHoldUnlocked(key)) {
            return false;
        }
        SpinLocks.lock(stableLock);
        try {
            return stable.mayHold(key);
        } finally {
            stableLock.unlock();
        }
    }

    /** True if {@code frame} is in the stable index. Caller holds the lock. */
    boolean inStableIndex(int frame) {
        return stable.contains(frame);
    }

    /**
     * Works out where {@code frame}, holding content with {@code key}, goes in the stable index and makes
     * room for it there ({@link StableIndex#plan}), so that {@link #addStable(StableIndex.Filing)} cannot
     * fail. Caller holds the lock until then. If the index cannot grow it throws, and nothing a lookup sees
     * has changed.
     */
    void planStable(int frame, int key, StableIndex.Filing filing) {
        stable.plan(frame, key, filing);
    }

    /**
     * Puts the frame planned in {@code filing} ({@link #planStable}) into the stable index; allocates
     * nothing. Caller holds the lock, and has held it since the plan.
     */
    void addStable(StableIndex.Filing filing) {
        stable.add(filing);
        pagesShared.incrementAndGet();
    }

    /**
     * Drops one mapping of stable {@code frame}; the last one takes it out of the index, {@code pages_shared}
     * and the registry, and frees it. A mapping of a full frame (one that maps {@code maxSharing} pages) is
     * dropped under the lock, so the index learns at once that the frame has room ({@link
     * StableIndex#noteRoom}); any other, without it. The caller may hold the lock.
     *
     * <p>Once its last mapping is dropped the frame is this release's alone, and whatever is thrown after
     * that (a StackOverflowError, an InternalError from a frame whose memory faults, a bug's exception)
     * passes on only once the release is finished from the step it reached ({@link StableRelease}): each
     * remaining change is made if still to do, so the index, {@code pages_shared}, the registry and the
     * pool agree again and the frame ends free. Only if the finishing is cut short too is the frame withheld
     * ({@link FramePool#withhold}), never freed while the index or the registry may still name it, since a
     * frame reused then would let a merge map one guest's page onto another's bytes.
     */
    void releaseStable(int frame, int maxSharing) {
        release.release(frame, maxSharing);
    }

    /** Takes {@code frame} out of the stable index, {@code pages_shared} and the registry. Caller holds the lock. */
    void removeStable(int frame) {
        release.unfile(frame);
    }

    /** The registered frame whose content has SHA-256 {@code digest[offset..offset+32)}, or -1. Caller holds the lock. */
    int registeredFrame(byte[] digest, int offset) {
        return registry.frameOf(digest, offset);
    }

    /**
     * Runs {@code hook} from now on each time the last mapping of a stable frame is dropped, once the frame
     * is out of the index and free. For tests: a hook that throws stands for an {@link Error} met on the way
     * out of the release (a StackOverflowError, say) with the domain and the pool whole.
     */
    void afterStableFrameFreed(Runnable hook) {
        duringStableRelease(step -> {
            if (step == StableRelease.FREED) {
                hook.run();
            }
        });
    }

    /**
     * Tells {@code hook} from now on each step a stable frame's last release reaches ({@link
     * StableRelease#DROPPED} to {@link StableRelease#FREED}), and the release of a full frame's mapping
     * ({@link StableRelease#MAPPED}), where it is. For tests: a hook that throws
     * stands for an {@link Error} met at that step (a StackOverflowError, say).
     */
    void duringStableRelease(IntConsumer hook) {
        release.duringRelease(hook);
    }

    /**
     * Runs {@code hook} from now on before the resident registry allocates to grow. For tests: a hook that
     * throws {@link OutOfMemoryError} stands for the allocation failing.
     */
    void beforeRegistryGrows(Runnable hook) {
        stableLock.lock();
        try {
            registry.beforeGrowth(hook);
        } finally {
            stableLock.unlock();
        }
    }

    /**
     * Makes room in the registry for one more frame, so that {@link #register} and every {@link #unregister}
     * allocate nothing until then ({@link ResidentRegistry#makeRoom}). Caller holds the lock until it registers.
     */
    void makeRegistryRoom() {
        registry.makeRoom();
    }

    /**
     * Registers stable {@code frame} under its verified digest ({@link ResidentRegistry#register}). Caller
     * holds the lock, and has made room since the last registration ({@link #makeRegistryRoom}).
     */
    void register(int frame, byte[] digest, int offset) {
        registry.register(frame, digest, offset);
    }

    /** Takes {@code frame} out of the registry (it stays in the stable index). Caller holds the lock. */
    void unregister(int frame) {
        registry.unregister(frame);
    }

    /** Calls {@code action} with every registered frame. Caller holds the lock. */
    void forEachRegistered(IntConsumer action) {
        registry.forEach(action);
    }

    /** Frames in this domain's resident registry: loaded from verified image blocks and still mapped. */
    public long residentFrames() {
        stableLock.lock();
        try {
            return registry.size();
        } finally {
            stableLock.unlock();
        }
    }

    /** The engine-wide id of the unstable candidate filed under {@code key}, or -1. Caller holds {@link #unstableLock}. */
    int unstableChained(int key) {
        return unstable.chained(key);
    }

    /** An unstable candidate whose key collides and whose bytes equal the page at {@code offset}, or -1. Caller holds {@link #unstableLock}. */
    int unstableColliding(int key, long offset) {
        return unstable.colliding(key, offset);
    }

    /**
     * True if {@code key}'s shard of the unstable index holds no candidate {@code key} could pair with:
     * none chained under it, and no colliding keys at all. Caller holds {@link #unstableLock}.
     */
    boolean unstableHoldsNothingFor(int key) {
        return unstable.holdsNothingFor(key);
    }

    /**
     * Files {@code page} of the guest of {@code table} (which holds {@code key}) as a candidate under
     * {@code key}, and marks the table filed in this full scan: a destroyed guest whose table is not
     * marked gives its page ids back at once ({@link PageIds#releaseUnfiled}).
     */
    void putUnstable(int key, PageTable table, int page) {
        table.markFiled(pageIds.scanEpoch());     // first: the mark must never miss a page filed
        int id = table.basePageId() + page;
        try {
            unstable.put(key, id);
        } catch (RuntimeException | Error e) {
            unstable.remove(key, id);       // filed or not as it threw (growing, say): not, as its mark says
            throw e;
        }
        table.setInUnstable(page);
    }

    /** Takes {@code page} of the guest of {@code table}, filed under {@code key}, out. Caller holds {@link #unstableLock}. */
    void removeUnstable(int key, PageTable table, int page) {
        unstable.remove(key, table.basePageId() + page);
        table.clearInUnstable(page);
    }

    /** Empties the unstable index; the caller clears its live guests' marks ({@link DedupEngine#clearUnstableIndexes}). */
    void clearUnstable() {
        unstable.clear();
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

    /** Calls {@code action} with every page id the unstable index names, stale ones too: for tests. */
    void forEachUnstableId(java.util.function.IntConsumer action) {
        unstable.forEachNamed(action, false);
    }

    /** Calls {@code action} with every page id filed in the unstable index (not those taken out of its tree): for tests. */
    void forEachFiledUnstableId(java.util.function.IntConsumer action) {
        unstable.forEachNamed(action, true);
    }

    /**
     * True if the unstable index's collision trees hold a node marked removed, which stands where bytes
     * its page may no longer hold put it, so the index is best emptied ({@link UnstableFiling}). Only
     * while no scanner thread runs.
     */
    boolean unstableNeedsEmptying() {
        return unstable.anyRemovedTreeNode();
    }

    /** True if the unstable index names no page. Only while no scanner thread runs. */
    boolean unstableIsEmpty() {
        return unstable.isEmpty();
    }

    long pagesUnshared() {
        return unstable.size();
    }

    /**
     * {@code [stable_node_chains, stable_node_dups]}: contents held by more than one stable frame, and
     * the frames of those contents, as the index keeps them (no walk).
     */
    long[] chainCounts() {
        stableLock.lock();
        try {
            return new long[] {stable.chains(), stable.dups()};
        } finally {
            stableLock.unlock();
        }
    }

    /**
     * Bytes of this domain ({@link MetadataSizes}): its object (ten references; id, zeroFrame), its name,
     * its place in the engine's list, its lock and counters, its release (eight references), its indexes and
     * its registry.
     */
    long metadataBytes() {
        return MetadataSizes.object(10 * MetadataSizes.REFERENCE + 2 * Integer.BYTES) + MetadataSizes.string(name)
                + MetadataSizes.REFERENCE + MetadataSizes.REENTRANT_LOCK + 2 * MetadataSizes.ATOMIC_LONG
                + MetadataSizes.object(8 * MetadataSizes.REFERENCE) + stable.metadataBytes() + unstable.metadataBytes()
                + registry.metadataBytes();
    }

    @Override
    public String toString() {
        return "domain " + name;
    }
}
