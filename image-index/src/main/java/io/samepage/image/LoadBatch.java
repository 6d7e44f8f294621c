package io.samepage.image;

import io.samepage.core.Guest;
import java.util.concurrent.locks.LockSupport;

/**
 * A run of consecutive blocks of one file that one thread resolves into guest pages: for each block,
 * what became of it ({@link #outcome}). Reused from load to load; allocates nothing per block.
 *
 * <p>Handed from the loading thread to a worker through {@link LoadWorkers#submit}, which puts it in the
 * worker's {@link Handoff}, and back when the worker finishes it there; {@link #await()} returns once it
 * has, and orders every write the worker made before every read the loading thread makes after.
 */
final class LoadBatch {

    /** The most blocks in a batch: 256 KiB, one read when none of them is resident. */
    static final int MAX_BLOCKS = 64;

    /** All zeros (the index says so); in direct mode its page is already filled. */
    static final byte ZERO = 1;
    /** An earlier block of the load has the same digest: left to the loading thread, not resolved. */
    static final byte DUPLICATE = 2;
    /** Resident in the domain: mapped, nothing read. */
    static final byte RESIDENT = 3;
    /** Read, its SHA-256 checked, installed and registered. */
    static final byte READ = 4;
    /** Read, and its bytes did not match its digest: not installed. The batch stops here. */
    static final byte MISMATCH = 5;
    /** Its resolution threw {@link #failure()}: nothing changed for it. The batch stops here. */
    static final byte FAILED = 6;
    /** Not resolved: the batch stopped before it, or was cancelled. */
    static final byte SKIPPED = 7;

    final byte[] outcome = new byte[MAX_BLOCKS];
    private long firstBlock;
    private int blocks;
    private Guest guest;
    private long address;
    private boolean staged;
    private long loadStart;
    private int[] duplicates;
    private Throwable failure;
    private volatile boolean cancelled;
    /** The hand-off it was last given through, and its number there; null: never given. */
    private Handoff handoff;
    private long number;

    /**
     * Makes this batch blocks {@code [firstBlock, firstBlock + blocks)}, all of one file, to be resolved
     * into {@code guest} from {@code address} on.
     *
     * @param staged    true: {@code guest} is a staging guest that only holds verified frames for the
     *                  loading thread to map; zero blocks and duplicates are left to the loading thread.
     *                  False: {@code guest} is the guest being loaded, and zero blocks are filled.
     * @param loadStart  the load's first block
     * @param duplicates when staged, {@link DuplicateBlocks#previous} of the index or null: a block whose
     *                   digest occurs earlier in the load (at or after {@code loadStart}) is then a
     *                   {@link #DUPLICATE}
     */
    void reset(long firstBlock, int blocks, Guest guest, long address, boolean staged, long loadStart,
            int[] duplicates) {
        this.firstBlock = firstBlock;
        this.blocks = blocks;
        this.guest = guest;
        this.address = address;
        this.staged = staged;
        this.loadStart = loadStart;
        this.duplicates = duplicates;
        this.failure = null;
        this.cancelled = false;
    }

    long firstBlock() {
        return firstBlock;
    }

    int blocks() {
        return blocks;
    }

    long endBlock() {
        return firstBlock + blocks;
    }

    Guest guest() {
        return guest;
    }

    /** The guest address of block {@code i} of the batch. */
    long addressOf(int i) {
        return address + ((long) i << io.samepage.hashing.Pages.PAGE_SHIFT);
    }

    boolean staged() {
        return staged;
    }

    /** True if block {@code i} is a {@link #DUPLICATE}: staged, and its digest occurs earlier in the load. */
    boolean isDuplicate(int i) {
        return staged && duplicates != null && duplicates[(int) (firstBlock + i)] >= loadStart;
    }

    /** What the {@link #FAILED} block threw. */
    Throwable failure() {
        return failure;
    }

    void fail(int i, Throwable e) {
        failure = e;
        outcome[i] = FAILED;
    }

    /**
     * Fails the whole batch with {@code e}, which its resolution threw past its blocks: an {@link Error}
     * from giving frames back, or a fault in reading the mapped index that the JVM raised only after the
     * read (it then went on with whatever the read left, so no outcome of the batch can be trusted). The
     * first block becomes {@link #FAILED}, so the loading thread maps none of the batch; a failure the
     * batch already had is kept as suppressed.
     */
    void failWhole(Throwable e) {
        if (failure != null && failure != e) {
            e.addSuppressed(failure);
        }
        fail(0, e);
    }

    /** Asks the resolving thread to stop at its next block; the rest stay {@link #SKIPPED}. */
    void cancel() {
        cancelled = true;
    }

    boolean cancelled() {
        return cancelled;
    }

    /** Records that the loading thread is giving it to a worker through {@code handoff}, as number {@code number}. */
    void givenAs(Handoff handoff, long number) {
        this.handoff = handoff;
        this.number = number;
    }

    /**
     * Waits until the worker it was last given to has finished it; at once if it was never given, or if a
     * throwable on the loading thread came between its number and its hand-off (the loading thread counts
     * a batch in flight before it gives it). Uninterruptible, since a worker always finishes a batch.
     * Called by the thread that gave it.
     */
    void await() {
        if (handoff == null) {
            return;
        }
        boolean interrupted = false;
        while (handoff.given > number && handoff.finished <= number) {
            LockSupport.park(this);
            interrupted |= Thread.interrupted();    // else park would return at once from now on
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
    }
}
