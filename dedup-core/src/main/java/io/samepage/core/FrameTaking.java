package io.samepage.core;

import io.samepage.hashing.Pages;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.concurrent.atomic.AtomicLong;
import org.agrona.LangUtil;

/**
 * Takes a {@link FramePool}'s frames off its {@link FreeLists} for their taker, out of a reservation
 * ({@link FrameReservation}): one at a time, many at once, or a run for a mapped guest; and, reserving
 * nothing, for the warm list ({@link #forWarmList}). Each take is all or nothing, whatever throws part
 * way, an {@link Error} included: zeroing a warm frame whose memory
 * faults (the JVM turns a SIGBUS in a mapping into an {@link InternalError}), or the backing's populate
 * running out of memory. Then the frames taken go back to their lists and the reservation is as it was,
 * still held by the caller: a caller's failure path gives back the frames it reserved and did not take
 * ({@link WriteReservation#close}), and a frame counted as taken that nobody got would make that give
 * back one too many, taking it from another writer's reservation. A {@link StackOverflowError} may still
 * strike the undoing itself; nothing in Java guards against that.
 *
 * <p>The warm list keeps its limit through an undo: frees or a refill on other threads may fill the
 * list while a take that emptied it runs, and the warm frames it then has no room for have their
 * memory given back and go on the cold list, as a free's beyond the limit do ({@link #release}, which
 * the pool's frees call too).
 *
 * <p>Thread safety: every method is safe from any thread, as the pool's are.
 */
final class FrameTaking {

    private final FrameBacking backing;
    private final MemorySegment memory;
    private final FrameTable table;
    private final FreeLists lists;
    private final FrameReservation reservation;
    private final FramePopulation population;
    private final AtomicLong releaseFailures = new AtomicLong();
    private final AtomicLong withheld = new AtomicLong();

    FrameTaking(FrameBacking backing, FrameTable table, FreeLists lists, FrameReservation reservation,
            FramePopulation population) {
        this.backing = backing;
        this.memory = backing.region();
        this.table = table;
        this.lists = lists;
        this.reservation = reservation;
        this.population = population;
    }

    /** The takes {@link #reserveAndTake} makes out of the reservation it makes for them. */
    private enum Take { ONE_ZEROED, ONE_FOR_OVERWRITE, MANY, RUN }

    /**
     * Reserves one frame and takes it ({@link #one}), all or nothing ({@link #reserveAndTake}).
     *
     * @return the frame; -1, with nothing changed, if no unreserved frame is free
     */
    int reserveAndTakeOne(boolean zeroed) {
        return reserveAndTake(zeroed ? Take.ONE_ZEROED : Take.ONE_FOR_OVERWRITE, null, 1);
    }

    /**
     * Reserves {@code count} frames and takes them into {@code frames[0..count)} ({@link #many}), all or
     * nothing ({@link #reserveAndTake}).
     *
     * @return false, with nothing changed, if fewer than {@code count} unreserved frames are free
     */
    boolean reserveAndTakeMany(int[] frames, int count) {
        return reserveAndTake(Take.MANY, frames, count) >= 0;
    }

    /**
     * Reserves {@code count} frames and takes them, all or nothing, for a taker with no reservation of its
     * own, whose failure path would otherwise have to give the reservation back itself: where the take
     * throws (having undone its own part), an {@link Error} too, the reservation goes back before the
     * throw passes on.
     *
     * @return the frame one frame taken is, the first frame of a run (whose refcounts and reservation are
     *         the caller's to take, {@link #run}), or {@code count} for many; -1, with nothing changed, if
     *         fewer than {@code count} unreserved frames are free
     */
    private int reserveAndTake(Take take, int[] frames, int count) {
        if (!reservation.tryReserve(count)) {
            return -1;
        }
        try {
            return switch (take) {
                case ONE_ZEROED -> one(true);
                case ONE_FOR_OVERWRITE -> one(false);
                case MANY -> {
                    many(frames, count);
                    yield count;
                }
                case RUN -> lists.takeRun(count);   // may allocate a bitmap of the pool: may run out of memory
            };
        } catch (Throwable e) {     // a checked one too, from a backing that throws it undeclared
            reservation.unreserve(count);
            throw e;
        }
    }

    /**
     * One frame out of the reservation, refcount 1: zeroed if {@code zeroed} (a warm frame holds old
     * bytes), else its bytes unspecified.
     *
     * @throws IllegalStateException if no frame is reserved
     */
    int one(boolean zeroed) {
        reservation.take(1);
        int taken;
        // The free lists hold at least available + reserved frames, so they have the one the reservation
        // promised (at worst once the frames in flight to the warm list arrive).
        try {
            taken = lists.take();
        } catch (Throwable e) {
            reservation.untake(1);
            throw e;
        }
        int frame = taken & ~FreeLists.WARM;
        if (taken != frame && zeroed) {
            try {
                zeroInPlace(memory, frame);
            } catch (Throwable e) {
                undo(lists.untake(taken), 1, e);
                throw e;
            }
        }
        table.setRefCount(frame, 1);
        return frame;
    }

    /**
     * {@code count} frames out of the reservation into {@code frames[0..count)}, refcount 1 each, bytes
     * unspecified; those not resident are populated ({@link FramePopulation#taken}).
     *
     * @throws IllegalStateException if fewer than {@code count} frames are reserved
     */
    void many(int[] frames, int count) {
        reservation.take(count);
        // The free lists hold at least available + reserved frames, so they have the ones reserved.
        lists.take(frames, count);
        try {
            population.taken(frames, count);
        } catch (Throwable e) {     // a checked one too, from a backing that throws it undeclared
            undo(lists.untake(frames, count), count, e);
            throw e;
        }
        for (int i = 0; i < count; i++) {
            frames[i] &= ~FreeLists.WARM;
            table.setRefCount(frames[i], 1);
        }
    }

    /**
     * {@code count} consecutive frames that read as zeros, refcount 1 each, reserved here ({@link
     * FramePool#allocateRun}).
     *
     * @return the first frame of the run
     * @throws IllegalStateException if fewer frames are available, or no such run is left; nothing is taken
     */
    int run(int count) {
        if (count < 1) {
            throw new IllegalArgumentException("a run needs at least one frame, not " + count);
        }
        int first = reserveAndTake(Take.RUN, null, count);
        if (first < 0) {
            throw new IllegalStateException("host frame pool exhausted: a run of " + count + " frames needs that many "
                    + "free frames, " + reservation.available() + " are");
        }
        // The free lists hold at least available + reserved frames; taking never-used ones moves the
        // reservation onto them.
        reservation.take(count);
        for (int frame = first; frame < first + count; frame++) {
            table.setRefCount(frame, 1);
        }
        return first;
    }

    /**
     * Takes up to {@code max} frames that read as zeros for the warm list ({@link FramePool#replenishWarm}),
     * faults them in and puts them on it; returns how many. The frames leave the cold list but stay
     * counted as available: nothing is reserved, so no write is refused meanwhile, and a taker that finds
     * only these waits for them. So whatever throws part way, they go back on the cold list (they still
     * read as zeros) before it is thrown on: left in flight, that taker waited for them for ever.
     */
    int forWarmList(int max) {
        int chain = lists.takeForWarming(max);
        if (chain == FrameTable.NO_FRAME) {
            return 0;
        }
        int tail = chain;
        int taken = 0;
        for (int frame = chain; frame != FrameTable.NO_FRAME; frame = table.next(frame)) {
            tail = frame;
            taken++;
        }
        try {
            population.chain(chain);
            for (int frame = chain; frame != FrameTable.NO_FRAME; frame = table.next(frame)) {
                // A discarded frame reads as zeros; writing a zero keeps it so, resident (faulting it in
                // where the backing could not populate it).
                memory.set(ValueLayout.JAVA_BYTE, FramePool.offsetOf(frame), (byte) 0);
            }
        } catch (Throwable e) {     // a checked one too, from a backing that throws it undeclared
            lists.notWarmed(chain, tail, taken);
            throw e;
        }
        lists.warmed(chain, tail, taken);
        return taken;
    }

    /**
     * Ends the undoing of a take of {@code count} frames that threw {@code failure}, once they are back
     * on their lists but for {@code left} ({@link FreeLists#untake}): the warm ones the warm list had no
     * room for. Each of those has its memory given back and goes on the cold list; one whose memory can
     * be neither given back nor zeroed goes back on the warm list, past its limit, rather than be lost to
     * the pool. Then the reservation takes the {@code count} frames back. What giving back threw is
     * added to {@code failure}, which the caller throws.
     */
    private void undo(int left, int count, Throwable failure) {
        for (int frame = left; frame != FrameTable.NO_FRAME; ) {
            int next = table.next(frame);
            try {
                Suppressed.add(failure, release(frame));
                lists.pushCold(frame);
            } catch (Throwable unzeroed) {
                Suppressed.add(failure, unzeroed);
                lists.untakePastLimit(frame);
            }
            frame = next;
        }
        // Last: until the frames left are on a list they stay counted as taken, so the lists always hold
        // every frame the reservation counts available or reserved (FreeLists' invariant).
        reservation.untake(count);
    }

    /**
     * Gives one frame's memory back ({@link FrameBacking#release(int)}), so it reads as zeros.
     * Never fails for the frame: whatever the backing throws (a failing madvise, an {@link Error}, a
     * checked exception thrown undeclared), the frame is zeroed in place instead, so it still reads as
     * zeros and only its memory stays resident, and the failure is {@linkplain #releaseFailed counted}
     * (FramePool's "Release failures"). What the backing threw is returned, for an undone take to attach
     * to the failure it throws, else not thrown. If zeroing in place throws (the frame's memory faults),
     * that passes through: it is not the backing's, and a frame being freed then stays off every list,
     * withheld (FramePool's "Withheld frames"), never handed out again.
     *
     * @return what the backing threw, or null
     */
    Throwable release(int frame) {
        try {
            backing.release(frame);
            return null;
        } catch (Throwable refused) {
            releaseFailed(1);
            zeroInPlace(memory, frame);
            return refused;
        }
    }

    /**
     * Gives the memory of a taken run {@code [first, first + count)} back before the run goes back ({@link
     * FramePool#releaseRun}): one {@link FrameBacking#release(int, int)} call, so the frames read as zeros.
     * Never fails for the frames, as {@link #release}: whatever the backing throws (a failing madvise or hole
     * punch, an OutOfMemoryError from its own allocation under a full heap), each is zeroed in place instead
     * and counted. Allocates nothing itself. If zeroing one in place throws (its memory faults), some frame
     * may still hold what was written, so the whole run is counted withheld and the fault passes through.
     */
    void giveBackRun(int first, int count) {
        try {
            backing.release(first, count);
        } catch (Throwable refused) {       // a checked one too, from a backing that throws it undeclared
            releaseFailed(count);
            try {
                for (int frame = first; frame < first + count; frame++) {
                    zeroInPlace(memory, frame);
                }
            } catch (Throwable faulted) {
                withheld(count);
                throw faulted;
            }
        }
    }

    /**
     * Puts {@code frames[0..count)}, just marked free and not kept warm, on the cold list once they read as
     * zeros: their memory given back together ({@link FrameBacking#release(int[], int)}; they must be zeroed
     * before they are on the list, where another thread may take and write them), or where that fails, each
     * zeroed in place and counted ({@link #releaseFailed}). A frame whose memory faults when zeroed is
     * withheld, counted, and kept off the list; the first such fault is thrown once the others are on it.
     * Allocates nothing; the order of {@code frames} is kept.
     */
    void giveBackCold(int[] frames, int count) {
        Throwable faulted = null;
        try {
            backing.release(frames, count);
        } catch (Throwable releaseFailed) {     // a checked one too, from a backing that throws it undeclared
            releaseFailed(count);
            int zeroed = 0;
            for (int i = 0; i < count; i++) {
                try {
                    zeroInPlace(memory, frames[i]);
                    frames[zeroed++] = frames[i];
                } catch (RuntimeException | Error fault) {   // its memory faults: it may not read as zeros
                    withheld(1);
                    faulted = faulted == null ? fault : faulted;
                }
            }
            count = zeroed;
        }
        lists.pushCold(frames, count);
        reservation.release(count);
        if (faulted != null) {
            LangUtil.rethrowUnchecked(faulted);     // as a single free's fault passes through
        }
    }

    /** {@link #release} of a frame being freed: one whose memory faults when zeroed is withheld, counted. */
    void releaseFreed(int frame) {
        try {
            release(frame);
        } catch (Throwable faulted) {       // zeroing it in place faulted: it may not read as zeros
            withheld(1);
            throw faulted;
        }
    }

    /** Counts {@code frames} whose memory the backing did not give back: zeroed in place, still resident. */
    void releaseFailed(int frames) {
        releaseFailures.addAndGet(frames);
    }

    /** Frames whose release the backing failed since the pool was made ({@link FramePool#releaseFailures}). */
    long releaseFailures() {
        return releaseFailures.get();
    }

    /** Counts {@code frames} kept in use for good ({@link FramePool#withhold}). */
    void withheld(int frames) {
        withheld.addAndGet(frames);
    }

    /** Frames kept in use for good since the pool was made ({@link FramePool#framesWithheld}). */
    long framesWithheld() {
        return withheld.get();
    }

    /** Copies the zero frame over {@code frame}: afterwards it reads as zeros. */
    static void zeroInPlace(MemorySegment memory, int frame) {
        MemorySegment.copy(memory, FramePool.offsetOf(FramePool.ZERO_FRAME), memory, FramePool.offsetOf(frame),
                Pages.PAGE_SIZE);
    }
}
