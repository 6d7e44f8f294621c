package io.samepage.core;

/**
 * Where a {@link FramePool}'s free frames are, under one lock. The pool decides who may take a frame
 * (its {@link FrameReservation}) and what happens to a frame's memory (release, zeroing, faulting in);
 * this class only keeps track of the frames.
 * <ul>
 *   <li>The <em>cold</em> list: freed frames whose memory went back to the operating system (or was
 *       zeroed in place); they read as zeros.</li>
 *   <li>The <em>warm</em> list: at most {@code warmLimit} freed frames kept resident (past it only for
 *       a frame whose memory faults, {@link #untakePastLimit}). Taking one costs no page fault, but it
 *       holds old bytes.</li>
 *   <li>The never-used frames {@code [bump, capacityFrames)}: they read as zeros. {@code bump} only
 *       grows, but for a run given back untouched as the last taken ({@link #untakeRun}).</li>
 *   <li>Frames <em>in flight</em>: taken off the cold list or the never-used frames by
 *       {@link #takeForWarming} and being faulted in by the pool; on no list until {@link #warmed}.</li>
 * </ul>
 * Both lists are stacks linked through {@link FrameTable#next}, so the most recently freed frames are
 * taken first: reusing freed frames before never-used ones keeps the touched part of the region, and
 * the page tables the kernel keeps for it, small. Frames freed together go on in one go, the lowest
 * on top ({@link FramePool#freeAll} sorts them), so they are taken again in address order: a guest
 * written in order then sits on frames in order, which a scan hashes faster
 * (docs/perf/engine.md#scan_threads). Rejected: a lock-free (Treiber) list, which needs an ABA tag and
 * buys nothing at the rate frames are taken and freed, and a bitmap, which costs a scan per allocation.
 *
 * <p>Invariant, kept by the pool and relied on here: the two lists, the never-used frames and the
 * frames in flight together hold at least as many frames as the reservation counts available plus
 * reserved. So a caller holding a reservation always finds a frame in {@link #take}, at worst after the
 * frames in flight reach the warm list.
 *
 * <p>Thread safety: every method is safe from any thread. The lock guards the lists, their links in the
 * {@link FrameTable}, the counts and writes of {@code bump}; {@link #firstNeverUsed()} reads {@code bump}
 * without it. No method calls out while holding the lock. Allocates nothing, but for the bitmap of
 * {@link #takeRun}'s search of the cold list.
 */
final class FreeLists {

    /**
     * Set by {@link #take} on a frame that came off the warm list (it holds old bytes). Frame ids are
     * below {@link FramePool#MAX_FRAMES}, so the sign bit is free to carry it.
     */
    static final int WARM = Integer.MIN_VALUE;

    /** The default number of freed frames kept resident: 1/16 of the pool, at most 8192 (32 MiB). */
    static int defaultWarmFrames(long frames) {
        return (int) Math.min(8192, frames / 16);
    }

    private static final int NO_FRAME = FrameTable.NO_FRAME;

    private final FrameTable table;
    private final int capacityFrames;
    private final int warmLimit;

    private final Object lock = new Object();
    /** Head of the cold list. */
    private int coldHead = NO_FRAME;
    /** Head of the warm list. */
    private int warmHead = NO_FRAME;
    private int warmCount;
    /** Frames {@link #takeForWarming} handed out that are not yet {@link #warmed}. */
    private int inFlight;
    /** First never-used frame; grows, but for {@link #untakeRun}. Volatile: {@link #firstNeverUsed()} locks nothing. */
    private volatile int bump = FramePool.ZERO_FRAME + 1;

    /** Every frame of {@code table} but the zero frame is never used; both lists start empty. */
    FreeLists(FrameTable table, int capacityFrames, int warmLimit) {
        this.table = table;
        this.capacityFrames = capacityFrames;
        this.warmLimit = warmLimit;
    }

    /**
     * Takes one frame for an allocation: from the warm list first, then the cold list, then the
     * never-used frames. If only frames in flight are left, waits until they are on the warm list. The
     * frame leaves unlinked ({@link FrameTable#NO_FRAME}) with stable key 0; its refcount is the
     * caller's to set.
     *
     * @return the frame, with {@link #WARM} or-ed in if it came off the warm list
     * @throws IllegalStateException if no frame is anywhere: the pool's accounting is broken
     */
    int take() {
        synchronized (lock) {
            while (warmHead == NO_FRAME && coldHead == NO_FRAME && bump >= capacityFrames) {
                awaitFramesInFlight();
            }
            int frame;
            int warm = 0;
            if (warmHead != NO_FRAME) {
                frame = warmHead;
                warmHead = table.next(frame);
                warmCount--;
                warm = WARM;
            } else if (coldHead != NO_FRAME) {
                frame = coldHead;
                coldHead = table.next(frame);
            } else {
                frame = bump;
                bump = frame + 1;
            }
            table.setNext(frame, NO_FRAME);
            table.setStableKey(frame, 0);
            return frame | warm;
        }
    }

    /**
     * Takes {@code count} frames under one hold of the lock, as {@code count} calls of {@link #take()}
     * would, into {@code frames[0..count)}: frames taken together are neighbours more often than
     * frames taken one by one while other threads take too.
     *
     * @throws IllegalStateException as {@link #take()}; the frames taken before stay taken
     */
    void take(int[] frames, int count) {
        synchronized (lock) {
            for (int i = 0; i < count; i++) {
                frames[i] = take();
            }
        }
    }

    /**
     * Puts back a frame {@link #take} returned ({@link #WARM} or-ed in or not) whose taker failed before
     * it had the frame: any but a warm one on the cold list, since it still reads as zeros; a warm one on
     * the warm list if the list has room. It may not: frees or a refill may have filled the list since
     * the take emptied it. Then the frame goes on no list and is left to the caller, who gives its
     * memory back and puts it on the cold list ({@link #pushCold}), as a free beyond the limit does. Its
     * refcount becomes {@link FrameTable#FREE}, as every free frame's: a never-used frame is a freed one
     * now.
     *
     * @return the frame left to the caller; {@link FrameTable#NO_FRAME} if it is on a list
     */
    int untake(int taken) {
        synchronized (lock) {
            return putBack(taken, NO_FRAME);
        }
    }

    /**
     * {@link #untake(int)} for each of {@code frames[0..count)}, as {@link #take(int[], int)} returned them.
     *
     * @return the frames left to the caller, a chain linked through {@link FrameTable#next} and ended by
     *         {@link FrameTable#NO_FRAME}; {@code NO_FRAME} if none
     */
    int untake(int[] frames, int count) {
        synchronized (lock) {
            int left = NO_FRAME;
            for (int i = count - 1; i >= 0; i--) {
                left = putBack(frames[i], left);
            }
            return left;
        }
    }

    /**
     * Puts a frame a failed take returned on its list, or, a warm one the warm list has no room for, on
     * the chain {@code left}. Caller holds {@link #lock}.
     *
     * @return the chain of frames left to the caller
     */
    private int putBack(int taken, int left) {
        int frame = taken & ~WARM;
        table.setRefCount(frame, FrameTable.FREE);
        if (taken == frame) {
            table.setNext(frame, coldHead);
            coldHead = frame;
        } else if (warmCount < warmLimit) {
            table.setNext(frame, warmHead);
            warmHead = frame;
            warmCount++;
        } else {
            table.setNext(frame, left);
            return frame;
        }
        return left;
    }

    /**
     * Puts a frame {@link #untake} left to its caller on the warm list past its limit: for one whose memory
     * could be neither given back nor zeroed in place, which would otherwise be lost to the pool. A warm
     * frame is zeroed when taken to read as zeros, so its old bytes never reach a taker that wants zeros.
     */
    void untakePastLimit(int frame) {
        synchronized (lock) {
            table.setNext(frame, warmHead);
            warmHead = frame;
            warmCount++;
        }
    }

    /** Waits, holding {@link #lock}, until {@link #warmed} puts the frames in flight on the warm list. */
    private void awaitFramesInFlight() {
        if (inFlight == 0) {
            throw new IllegalStateException("frame pool accounting broken: a reserved frame is on no list");
        }
        boolean interrupted = false;
        while (inFlight > 0 && warmHead == NO_FRAME && coldHead == NO_FRAME) {
            try {
                lock.wait();
            } catch (InterruptedException e) {
                interrupted = true;
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
    }

    /**
     * Takes {@code count} consecutive frames that read as zeros, all or nothing: the next never-used
     * ones if enough are left, else the lowest run of frames each on the cold list (freed and given
     * back to the operating system) or never used, as a mapped guest made after others were destroyed
     * needs. The never-used frames' links and stable keys are as the table made them; the cold ones
     * leave unlinked with stable key 0, like {@link #take()}'s. Refcounts are the caller's to set.
     *
     * @return the first frame of the run
     * @throws IllegalStateException if no such run is left; nothing is taken
     */
    int takeRun(int count) {
        synchronized (lock) {
            int first = bump;
            if (capacityFrames - first >= count) {
                bump = first + count;
                return first;
            }
            first = lowestColdRun(count);
            if (first < 0) {
                throw new IllegalStateException("no run of " + count + " frames that read as zeros is left (never "
                        + "used, or freed and given back to the system; frames kept resident do not count); size the "
                        + "pool for every mapped guest's run");
            }
            takeColdRun(first, count);
            return first;
        }
    }

    /**
     * The lowest start of {@code count} consecutive frames each on the cold list or never used; -1 if
     * none. A bitmap of the cold list and a pass over the pool: paid by a mapped guest's creation only
     * when the never-used frames alone are too few.
     */
    private int lowestColdRun(int count) {
        long[] cold = new long[(capacityFrames + 63) >>> 6];
        for (int frame = coldHead; frame != NO_FRAME; frame = table.next(frame)) {
            cold[frame >>> 6] |= 1L << frame;
        }
        int length = 0;
        for (int frame = FramePool.ZERO_FRAME + 1; frame < capacityFrames; frame++) {
            length = frame >= bump || (cold[frame >>> 6] & (1L << frame)) != 0 ? length + 1 : 0;
            if (length == count) {
                return frame - count + 1;
            }
        }
        return -1;
    }

    /**
     * Takes {@code [first, first + count)}: its frames off the cold list (the rest keep their order),
     * and the never-used ones.
     */
    private void takeColdRun(int first, int count) {
        int end = first + count;
        int head = NO_FRAME;
        int tail = NO_FRAME;
        for (int frame = coldHead; frame != NO_FRAME; ) {
            int next = table.next(frame);
            if (frame >= first && frame < end) {
                table.setNext(frame, NO_FRAME);
                table.setStableKey(frame, 0);
            } else if (tail == NO_FRAME) {
                head = frame;
                tail = frame;
            } else {
                table.setNext(tail, frame);
                tail = frame;
            }
            frame = next;
        }
        if (tail != NO_FRAME) {
            table.setNext(tail, NO_FRAME);
        }
        coldHead = head;
        bump = Math.max(bump, end);
    }

    /**
     * Gives back the run {@link #takeRun} returned, whose frames read as zeros (the caller never touched
     * them, or gave their memory back: a run a mapping was made over may have been written through it,
     * {@link FramePool#releaseRun}): never-used again, refcounts back to 0 as the table made them, if no
     * never-used frame was taken after it; else onto the cold list, the lowest on top, each free ({@link
     * FrameTable#FREE}) as a frame {@link #untake} puts back is. Allocates nothing and gives no memory
     * back: a mapped guest whose creation ran out of heap gives its run back this way while the heap
     * stays exhausted (the frames freed through an array made for them stayed taken for good when that
     * array could not be made).
     *
     * @return true if the run is never-used again; false if its frames went on the cold list
     */
    boolean untakeRun(int first, int count) {
        synchronized (lock) {
            if (bump == first + count) {
                for (int frame = first; frame < first + count; frame++) {
                    table.setRefCount(frame, 0);
                }
                bump = first;
                return true;
            }
            for (int frame = first + count - 1; frame >= first; frame--) {
                table.setRefCount(frame, FrameTable.FREE);
                table.setStableKey(frame, 0);
                table.setNext(frame, coldHead);
                coldHead = frame;
            }
            return false;
        }
    }

    /** Pushes a freed frame onto the warm list if it holds fewer than the warm limit; false if not. */
    boolean pushWarm(int frame) {
        synchronized (lock) {
            if (warmCount >= warmLimit) {
                return false;
            }
            table.setNext(frame, warmHead);
            warmHead = frame;
            warmCount++;
            return true;
        }
    }

    /**
     * Pushes the first of {@code frames[0..count)}, as many as the warm list has room for, onto it in one
     * go, {@code frames[0]} on top.
     *
     * @return how many it pushed: {@code frames[0..n)}
     */
    int pushWarm(int[] frames, int count) {
        synchronized (lock) {
            int n = Math.max(0, Math.min(count, warmLimit - warmCount));
            for (int i = n - 1; i >= 0; i--) {
                table.setNext(frames[i], warmHead);
                warmHead = frames[i];
            }
            warmCount += n;
            return n;
        }
    }

    /** Pushes a freed frame that reads as zeros onto the cold list. */
    void pushCold(int frame) {
        synchronized (lock) {
            table.setNext(frame, coldHead);
            coldHead = frame;
        }
    }

    /** Pushes {@code frames[0..count)}, freed and reading as zeros, onto the cold list, the first on top. */
    void pushCold(int[] frames, int count) {
        synchronized (lock) {
            for (int i = count - 1; i >= 0; i--) {
                table.setNext(frames[i], coldHead);
                coldHead = frames[i];
            }
        }
    }

    /**
     * Takes up to {@code max} frames that read as zeros (the cold list first, then never-used frames),
     * no more than the warm list has room for counting the frames already in flight, and counts them
     * in flight. The caller faults them in and hands them to {@link #warmed}; until then {@link #take}
     * waits for them rather than fail.
     *
     * @return the first frame of a chain linked through {@link FrameTable#next} and ended by
     *         {@link FrameTable#NO_FRAME}; {@code NO_FRAME} if none was taken
     */
    int takeForWarming(int max) {
        int chain = NO_FRAME;
        int tail = NO_FRAME;
        synchronized (lock) {
            int wanted = Math.min(max, warmLimit - warmCount - inFlight);
            int taken = 0;
            while (taken < wanted && (coldHead != NO_FRAME || bump < capacityFrames)) {
                int frame;
                if (coldHead != NO_FRAME) {
                    frame = coldHead;
                    coldHead = table.next(frame);
                } else {
                    frame = bump;
                    bump = frame + 1;
                }
                table.setNext(frame, NO_FRAME);     // appended: the chain keeps the cold list's order
                if (tail == NO_FRAME) {
                    chain = frame;
                } else {
                    table.setNext(tail, frame);
                }
                tail = frame;
                taken++;
            }
            inFlight += taken;
        }
        return chain;
    }

    /**
     * Puts a chain from {@link #takeForWarming}, {@code count} frames from {@code chain} to {@code tail},
     * on the warm list and wakes the takers waiting for it.
     */
    void warmed(int chain, int tail, int count) {
        synchronized (lock) {
            table.setNext(tail, warmHead);
            warmHead = chain;
            warmCount += count;
            inFlight -= count;
            lock.notifyAll();
        }
    }

    /**
     * Puts a chain from {@link #takeForWarming} that could not be warmed back on the cold list, where it
     * came from (never-used frames read as zeros too), and wakes the takers waiting for it.
     */
    void notWarmed(int chain, int tail, int count) {
        synchronized (lock) {
            table.setNext(tail, coldHead);
            coldHead = chain;
            inFlight -= count;
            lock.notifyAll();
        }
    }

    /** Frames on the warm list right now. */
    int warmCount() {
        synchronized (lock) {
            return warmCount;
        }
    }

    /** The first never-used frame: every frame below it has been taken at least once. A volatile read. */
    int firstNeverUsed() {
        return bump;
    }
}
