package io.samepage.core;

import io.samepage.hashing.Pages;

import java.lang.foreign.MemorySegment;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * Host memory for the engine: one off-heap region cut into 4 KiB frames, and the allocator that hands
 * them out.
 *
 * <h2>The region</h2>
 * The region comes from a {@link FrameBacking}: by default private anonymous memory with
 * {@code MAP_NORESERVE} (a frame nobody has touched costs neither RAM nor commit charge, so a pool may
 * be sized for the worst case), or a memfd whose frames guests map (kvm-integration). Frame {@code f}
 * lives at {@link #offsetOf(int) f * 4096} of {@link #memory()}. Frame {@link #ZERO_FRAME} is the
 * canonical zero frame: it is never handed out, never freed and must never be written, so it stays a
 * page of zeros that guests may map read-only. A {@linkplain #free freed} frame is
 * {@linkplain FrameBacking#release released}: on Linux its physical page goes back to the operating
 * system ({@code madvise(MADV_DONTNEED)}, or a punched hole for a memfd), the process's memory drops,
 * and the frame reads as zeros when it is next allocated; the frames {@linkplain #freeAll freed
 * together} are released with as few system calls as the backing can. Up to the warm limit, freed
 * frames are kept resident instead and handed out first, so their next write costs no page fault.
 * Where the backing only zeroes in place (not Linux), no warm list is kept.
 *
 * <h2>Release failures</h2>
 * Freeing never fails for want of the backing: where its release throws, whatever it throws (a failing
 * {@code madvise} or hole punch, an {@link Error}, a checked exception thrown undeclared), the frame is
 * zeroed in place, so it reads as zeros all the same and only its memory stays resident; it is free, or
 * for {@link #releaseInPlace} still its mapper's, and the engine is whole. So the failure is not thrown:
 * it is counted in {@link #releaseFailures()} (the engine's {@code frameReleaseFailures}), which an
 * embedder watches, and none of the pool's callers decides on its own (a caller whose work is done is
 * never told it failed). What does not come from the backing's call passes through: a fault zeroing a
 * frame in place (that frame is then withheld, below; the others freed with it are freed), an
 * {@link OutOfMemoryError} or {@link StackOverflowError} anywhere else.
 *
 * <h2>Withheld frames</h2>
 * A frame that cannot be freed safely is kept in use for good and counted in {@link #framesWithheld()}
 * (the engine's {@code framesWithheld}), so that an embedder sees what a leak would hide: a frame whose
 * memory faulted when a free zeroed it in place (its next taker could not trust it to read as zeros),
 * and a stable frame whose release was cut short and whose finishing was cut short too, before its
 * free began ({@link StableRelease}). It is never handed out again.
 *
 * <h2>Metadata</h2>
 * Each frame's refcount, stable key and link live in the pool's {@link FrameTable} ({@link #table()}),
 * 12 bytes per frame; the free lists ({@link FreeLists}) reuse the links. Beside those, a pool takes
 * a few hundred bytes of objects, and its backing its own ({@link #metadataBytes()}).
 *
 * <h2>Allocation: reserve first, then take</h2>
 * A caller that will need frames (a copy-on-write break, a merge that starts a chain duplicate) first
 * {@linkplain #tryReserve reserves} them, failing cleanly before it changes anything, and later
 * {@linkplain #allocateReserved takes} them one at a time; taking can then never fail for lack of
 * frames. A caller about to fill many frames takes them all at once instead
 * ({@link #allocateForOverwrite(int[], int)}), backed with memory for it alone
 * ({@link FramePopulation}). A take that throws part way, with an {@link Error} too, changes nothing
 * ({@link FrameTaking}). The count of free-and-unreserved frames and the count of reserved frames
 * change together in one CAS ({@link FrameReservation}), so {@code framesInUse + framesAvailable + reserved ==
 * capacityFrames - 1} holds in every snapshot. Frames come from the {@link FreeLists}: the warm list,
 * then the cold list (frames given back to the operating system), each most recently freed first (frames
 * freed together lowest first), then
 * never-used frames. The warm list refill ({@link #replenishWarm}) takes frames off the cold list without
 * reserving them, so it never makes a write fail; while it faults them in they are on no list, and an
 * allocation that finds nothing else waits for them (only when the pool is nearly exhausted). The free
 * lists take one lock; allocation is rarer than reads, writes and refcount changes, which take none.
 *
 * <h2>Thread safety</h2>
 * Allocation, reservation, freeing and the counters are safe from any thread. Frame contents are the
 * caller's to synchronize. {@link #close()} must not race with any other use; afterwards every access
 * to {@link #memory()} throws {@link IllegalStateException} rather than touching unmapped memory.
 */
public final class FramePool implements AutoCloseable {

    /** The canonical zero frame: never handed out, never freed, never written. */
    public static final int ZERO_FRAME = 0;
    /** The fewest frames {@link #allocateForOverwrite(int[], int)} populates: for fewer, the call saves nothing. */
    public static final int POPULATE_MIN_FRAMES = FramePopulation.MIN_FRAMES;

    /** The largest pool in frames: the longest array every JVM allocates (the JDK's own soft limit), 8 TiB. */
    static final int MAX_FRAMES = Integer.MAX_VALUE - 8;

    private final FrameBacking backing;
    private final MemorySegment memory;
    private final boolean discardsToOs;
    private final int capacityFrames;
    private final FrameTable table;
    private final FrameReservation reservation;

    /** Which frames are free, and where: the warm list, the cold list, the never-used frames. */
    private final FreeLists lists;
    /** Takes frames off the lists out of the reservation, all or nothing. */
    private final FrameTaking taking;

    private final AtomicBoolean closed = new AtomicBoolean();

    /**
     * Creates a pool of {@code capacityBytes / 4096} frames (rounded down), frame 0 being the zero frame.
     *
     * @throws IllegalArgumentException if that is fewer than 2 frames or more than {@value #MAX_FRAMES}
     * @throws IllegalStateException    if the operating system refuses to map the region
     */
    public FramePool(long capacityBytes) {
        this(capacityBytes, FreeLists.defaultWarmFrames(capacityBytes >> Pages.PAGE_SHIFT));
    }

    /**
     * Creates a pool that keeps up to {@code warmFrames} freed frames resident instead of giving them
     * back to the operating system at once: a copy-on-write break that takes one pays no page fault
     * (a fault costs more than the 4 KiB copy itself). Beyond that many, freed frames are discarded.
     */
    public FramePool(long capacityBytes, int warmFrames) {
        this(capacityBytes, warmFrames, FrameBacking.anonymous());
    }

    /**
     * Creates a pool whose region {@code backing} makes (the anonymous default, or a memfd for mapped
     * guest memory); the pool owns it and closes it, at once if this constructor throws after making it.
     *
     * @throws IllegalStateException if the backing's region is not {@code capacityBytes / 4096} frames
     */
    public FramePool(long capacityBytes, int warmFrames, FrameBacking.Factory backing) {
        long frames = capacityBytes >> Pages.PAGE_SHIFT;
        if (capacityBytes < 0 || frames < 2) {
            throw new IllegalArgumentException("frame pool capacity " + capacityBytes + " bytes is too small: "
                    + "need at least 2 frames of " + Pages.PAGE_SIZE + " bytes (" + 2 * Pages.PAGE_SIZE
                    + " bytes), the zero frame and one frame to allocate");
        }
        if (frames > MAX_FRAMES) {
            throw new IllegalArgumentException("frame pool capacity " + capacityBytes + " bytes is too large: "
                    + "at most " + MAX_FRAMES + " frames of " + Pages.PAGE_SIZE + " bytes fit int frame ids");
        }
        if (warmFrames < 0) {
            throw new IllegalArgumentException("warmFrames must be >= 0, not " + warmFrames);
        }
        this.capacityFrames = (int) frames;
        long bytes = frames << Pages.PAGE_SHIFT;
        this.table = new FrameTable(capacityFrames);
        this.lists = new FreeLists(table, capacityFrames, warmFrames);
        this.reservation = new FrameReservation(capacityFrames - 1);
        this.backing = backing.create(capacityFrames);
        try {
            this.memory = this.backing.region();
            if (memory.byteSize() != bytes) {
                throw new IllegalStateException("the frame backing made a region of " + memory.byteSize()
                        + " bytes for a pool of " + bytes);
            }
            this.discardsToOs = this.backing.releasesMemory();
            this.taking = new FrameTaking(this.backing, table, lists, reservation, new FramePopulation(this.backing, table));
        } catch (RuntimeException | Error e) {      // an OutOfMemoryError too: nothing else would close the backing
            this.backing.close();
            throw e;
        }
    }

    /** Where the region comes from. */
    FrameBacking backing() {
        return backing;
    }

    /** The whole region; frame {@code f} lives at {@link #offsetOf(int) offsetOf(f)}. Thread safe. */
    public MemorySegment memory() {
        return memory;
    }

    /** Where {@code frame} starts in {@link #memory()}: {@code frame * 4096}. */
    public static long offsetOf(int frame) {
        return (long) frame << Pages.PAGE_SHIFT;
    }

    /** Total frames, the zero frame included. Thread safe. */
    public int capacityFrames() {
        return capacityFrames;
    }

    /**
     * Reserves {@code frames} free frames for later {@link #allocateReserved()} calls, all or nothing.
     * Thread safe.
     *
     * @return true if reserved; false, with nothing changed, if fewer free unreserved frames remain
     * @throws IllegalArgumentException if {@code frames} is negative
     */
    public boolean tryReserve(int frames) {
        return reservation.tryReserve(frames);
    }

    /**
     * Gives back {@code frames} of a reservation that will not be taken. Thread safe.
     *
     * @throws IllegalArgumentException if {@code frames} is negative
     * @throws IllegalStateException    if fewer frames than that are reserved
     */
    public void unreserve(int frames) {
        reservation.unreserve(frames);
    }

    /**
     * Takes one frame out of a prior {@link #tryReserve reservation}. Its 4096 bytes read as zeros; its
     * refcount is 1, its stable key 0 and its link -1. If it throws (an {@link Error} zeroing a frame
     * whose memory faults), nothing changed: the reservation is still held ({@link FrameTaking}). Thread
     * safe.
     *
     * @return the frame, never {@link #ZERO_FRAME}
     * @throws IllegalStateException if no frame is reserved
     */
    public int allocateReserved() {
        return taking.one(true);
    }

    /** Reserves one frame and takes it, as {@link #allocateReserved()} or for overwrite: -1 if none is free; all or nothing. */
    int tryAllocate(boolean zeroed) {
        return taking.reserveAndTakeOne(zeroed);
    }

    /**
     * Like {@link #allocateReserved()}, but the frame's bytes are unspecified: for a caller that writes
     * all 4096 of them at once (a copy-on-write copy, a block read), which saves zeroing a resident frame.
     */
    public int allocateReservedForOverwrite() {
        return taking.one(false);
    }

    /**
     * Returns {@code frame} to the pool. Up to the warm limit it stays resident for a fast reuse;
     * beyond that its memory goes back to the operating system (on Linux). Either way it reads as zeros
     * when next taken with {@link #allocateReserved()}. The caller must hold no other reference to it: its refcount
     * is not consulted. A failed release is counted, not thrown ("Release failures" above). Thread safe.
     *
     * @throws IllegalArgumentException if {@code frame} is the zero frame or outside the pool
     * @throws IllegalStateException    if {@code frame} was never allocated or is already free
     */
    public void free(int frame) {
        checkFreeable(frame);
        markFree(frame);
        if (keepWarm(frame)) {
            return;
        }
        // Zero the frame before it is on the cold list: once there, another thread may take and write it.
        taking.releaseFreed(frame);
        lists.pushCold(frame);
        reservation.release(1);
    }

    /**
     * Returns the frames {@code frames[0..count)} to the pool, like {@link #free} on each, but those that
     * go back to the operating system go together ({@link FrameBacking#release(int[], int)}: one
     * {@code process_madvise} call for anonymous memory) instead of one {@code madvise} each; the
     * scanner frees the frames of a merge pass this way. The caller must hold no other reference to any
     * of them, and the contents of {@code frames} are unspecified afterwards. Thread safe, and callers
     * run side by side: the backing's batch release is safe from any thread. A failed release is counted,
     * one per frame it was for, not thrown ("Release failures" above).
     *
     * @throws IllegalArgumentException if a frame is the zero frame or outside the pool; nothing is freed
     * @throws IllegalStateException    if a frame was never allocated or is already free; every other
     *                                  frame is freed
     */
    public void freeAll(int[] frames, int count) {
        java.util.Objects.checkFromIndexSize(0, count, frames.length);
        for (int i = 0; i < count; i++) {
            checkFreeable(frames[i]);
        }
        IllegalStateException refused = null;
        // In address order, lowest on top of each list: pages written in order then get frames in address
        // order, which a scan hashes faster than frames in no order (docs/perf/engine.md#scan_threads).
        java.util.Arrays.sort(frames, 0, count);
        int freedNow = 0;
        for (int i = 0; i < count; i++) {
            int frame = frames[i];
            try {
                markFree(frame);
            } catch (IllegalStateException e) {
                refused = refused == null ? e : refused;
                continue;
            }
            frames[freedNow++] = frame;
        }
        int warm = lists.pushWarm(frames, freedNow);
        reservation.release(warm);
        int kept = freedNow - warm;
        System.arraycopy(frames, warm, frames, 0, kept);
        taking.giveBackCold(frames, kept);      // a fault zeroing one in place passes, the others are freed
        if (refused != null) {
            throw refused;
        }
    }

    private void checkFreeable(int frame) {
        if (frame == ZERO_FRAME) {
            throw new IllegalArgumentException("cannot free the zero frame: it is shared by every zero page "
                    + "and is never allocated");
        }
        if (frame < 0 || frame >= capacityFrames) {
            throw new IllegalArgumentException("cannot free frame " + frame + ": the pool has frames 1.."
                    + (capacityFrames - 1));
        }
    }

    /** Takes {@code frame} from allocated to free: its refcount becomes {@link FrameTable#FREE}. */
    private void markFree(int frame) {
        if (frame >= lists.firstNeverUsed()) {
            throw new IllegalStateException("cannot free frame " + frame + ": it was never allocated");
        }
        table.markFree(frame);
    }

    /** Puts a just-freed frame on the warm list if it has room; then it is available at once. */
    private boolean keepWarm(int frame) {
        if (!lists.pushWarm(frame)) {
            return false;
        }
        reservation.release(1);
        return true;
    }

    /**
     * Tops the warm list up toward its limit with up to {@code max} frames faulted in now, taken from
     * the frames that went back to the operating system (or were never used). A copy-on-write break
     * that takes a warm frame pays no page fault; this moves that fault off the guests' write path onto
     * the caller's thread. The scanner calls it at the end of every batch. It reserves nothing: the
     * frames it moves stay available, and an allocation that finds only those waits until they are on
     * the warm list. Does nothing where the backing does not {@linkplain FrameBacking#releasesMemory
     * release memory} (every frame is resident there already). If it throws (the backing's populate out
     * of memory, a fault writing a frame), the frames it took are back where they came from. Thread
     * safe; allocates nothing.
     *
     * @return frames faulted in and added to the warm list
     */
    public int replenishWarm(int max) {
        if (!discardsToOs || max <= 0) {
            return 0;
        }
        return taking.forWarmList(max);
    }

    /**
     * Takes {@code count} frames at once, all or nothing, as {@link #tryReserve tryReserve(count)} and
     * then {@code count} calls of {@link #allocateReservedForOverwrite()} would, into
     * {@code frames[0..count)}; and for {@value #POPULATE_MIN_FRAMES} or more, asks the backing to back
     * those not resident with one call per run of neighbours ({@link FrameBacking#populate}; a hint: a
     * backing that refuses leaves the writes to fault them in), so that the caller fills them without a
     * page fault each. The frames are the caller's alone, so no other thread takes a frame populated
     * for it (as it did when writers asked for the free lists' next frames and then took them one at a
     * time side by side). Each has refcount 1 and unspecified bytes; give back those not used with
     * {@link #freeAll}. If it throws (an {@link Error} from the backing), nothing changed. Thread safe.
     *
     * @return true if taken; false, with nothing changed, if fewer than {@code count} frames are available
     * @throws IndexOutOfBoundsException if {@code count} is negative or more than {@code frames.length}
     */
    public boolean allocateForOverwrite(int[] frames, int count) {
        java.util.Objects.checkFromIndexSize(0, count, frames.length);
        return taking.reserveAndTakeMany(frames, count);
    }

    /**
     * Like {@link #allocateForOverwrite(int[], int)}, but out of a prior {@link #tryReserve reservation}
     * of at least {@code count} frames, so it cannot fail for lack of frames. If it throws (an
     * {@link Error} from the backing), nothing changed: the reservation is still held. Thread safe.
     *
     * @throws IllegalStateException if fewer than {@code count} frames are reserved
     */
    public void allocateReservedForOverwrite(int[] frames, int count) {
        java.util.Objects.checkFromIndexSize(0, count, frames.length);
        taking.many(frames, count);
    }

    /** Freed frames held resident right now (at most the warm limit). Thread safe. */
    public int warmFrames() {
        return lists.warmCount();
    }

    /**
     * Takes {@code count} consecutive frames that read as zeros (never used, else freed and given back to
     * the system: {@link FreeLists#takeRun}), each with refcount 1: the initial layout of a mapped guest,
     * whose pages map one run of frames with one kernel mapping. Thread safe.
     *
     * @return the first frame of the run
     * @throws IllegalStateException if no such run is left (frames kept warm do not count), or fewer
     *                               frames are available; nothing is taken, as for any throw
     */
    public int allocateRun(int count) {
        return taking.run(count);
    }

    /**
     * Gives back the run {@link #allocateRun} returned, which something may have written since (a mapping
     * of it was made): its memory first, so that its frames read as zeros as the lists they go back to are
     * trusted to, then the run as {@link #untakeRun} ({@link FrameTaking#giveBackRun}). Allocates nothing
     * itself. If zeroing a frame faults, the run stays taken, withheld, and the fault is thrown. Thread safe.
     *
     * @return true if the run is never-used again; false if its frames went on the cold list
     */
    boolean releaseRun(int first, int count) {
        taking.giveBackRun(first, count);
        return untakeRun(first, count);
    }

    /**
     * Gives back the untouched run {@link #allocateRun} returned, its frames available again: never-used
     * again if no never-used frame was taken after it, so a retry finds it; else free on the cold list,
     * as they still read as zeros. Allocates nothing and calls no backing ({@link FreeLists#untakeRun}):
     * for a run nothing can have written, else {@link #releaseRun}. Thread safe.
     *
     * @return true if the run is never-used again; false if its frames went on the cold list
     */
    boolean untakeRun(int first, int count) {
        boolean neverUsed = lists.untakeRun(first, count);
        reservation.release(count);
        return neverUsed;
    }

    /**
     * Releases the memory of allocated {@code frame} in place ({@link FrameBacking#release(int)}): it
     * stays allocated to its one mapper and reads as zeros. For an all-zero page of a mapped guest,
     * which keeps its own frame and mapping. The caller holds the frame's only reference. A failed release
     * is counted, not thrown ("Release failures" above). Thread safe.
     */
    public void releaseInPlace(int frame) {
        checkFreeable(frame);
        taking.release(frame);
    }

    /**
     * Frames whose memory the backing failed to give back since the pool was made, each zeroed in place
     * instead (a free's, a batch free's, one per frame, a {@link #releaseInPlace}'s, and an undone take's):
     * resident memory the operating system did not get back. Nothing was lost or left wrong. Thread safe.
     */
    public long releaseFailures() {
        return taking.releaseFailures();
    }

    /**
     * Keeps allocated {@code frame} in use for good, counted ("Withheld frames" above): for a caller that
     * cannot free it safely. Changes nothing else; allocates nothing. Thread safe.
     */
    void withhold(int frame) {
        checkFreeable(frame);
        taking.withheld(1);
    }

    /**
     * Frames kept in use for good since the pool was made, each never handed out again ("Withheld frames"
     * above). Counted in {@link #framesInUse()} too. Thread safe.
     */
    public long framesWithheld() {
        return taking.framesWithheld();
    }

    /** Frames allocated and not freed, the zero frame excluded. Thread safe; a consistent snapshot. */
    public int framesInUse() {
        return reservation.inUse(capacityFrames - 1);
    }

    /** Free frames nobody reserved: what {@link #tryReserve} can still grant. Thread safe. */
    public int framesAvailable() {
        return reservation.available();
    }

    /** Each frame's refcount, stable key and link. */
    FrameTable table() {
        return table;
    }

    /**
     * The bytes of Java heap this pool spends on bookkeeping outside the region: 12 per frame for the
     * frame table (the free list reuses its links), the pool's own objects ({@link
     * MetadataSizes#FRAME_POOL}) and its backing's ({@link FrameBacking#metadataBytes}). Feeds {@code
     * general_profit}. Thread safe.
     */
    public long metadataBytes() {
        return table.metadataBytes() + MetadataSizes.FRAME_POOL + backing.metadataBytes();
    }

    /**
     * Unmaps the region; later accesses to {@link #memory()} throw {@link IllegalStateException}.
     * Idempotent. Must not race with other use of the pool.
     */
    @Override
    public void close() {
        if (closed.compareAndSet(false, true)) {
            backing.close();
        }
    }
}
