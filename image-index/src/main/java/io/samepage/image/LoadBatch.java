package io.samepage.image;

import io.samepage.core.Guest;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.concurrent.locks.LockSupport;

/**
 * A run of consecutive blocks of one file that one thread resolves into guest pages: for each block,
 * what became of it ({@link #outcome}). Reused from load to load; allocates nothing per block.
 *
 * <p>Handed from the loading thread to a worker through the {@link Handoff}: the loading thread opens it
 * there under a ticket, one worker claims it with one compare-and-set of its claim word, and finishes it
 * with one write of that word; {@link #await()} returns once it has, and orders every write the worker
 * made before every read the loading thread makes after.
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

    /** {@link #claim}: finished, or never given. */
    private static final long DONE = -1;
    private static final VarHandle CLAIM;

    static {
        try {
            CLAIM = MethodHandles.lookup().findVarHandle(LoadBatch.class, "claim", long.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

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
    /**
     * Who has the batch: its ticket ({@code >= 0}) while it is open, given and claimed by no worker;
     * {@code -2 - w} while worker {@code w} holds it; {@link #DONE} once finished, and before it was first
     * given. Only the loading thread opens it, only a compare-and-set from its ticket claims it, and only the
     * worker that holds it finishes it.
     */
    private volatile long claim = DONE;
    /** The hand-off it was last opened in, its ticket there and the load it belongs to: the loading thread's. */
    private Handoff handoff;
    private long ticket;
    private LoadRecord load;

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

    /**
     * Opens the batch in {@code handoff} as ticket {@code ticket}, of {@code load}: from this write on, a
     * worker that knows the ticket is given can claim it. Called by the loading thread, on a finished batch.
     */
    void open(Handoff handoff, long ticket, LoadRecord load) {
        this.handoff = handoff;
        this.ticket = ticket;
        this.load = load;
        claim = ticket;     // last: publishes the fields above and the batch's blocks to the claiming worker
    }

    /** The load it was last opened for. */
    LoadRecord load() {
        return load;
    }

    /**
     * Claims the batch for worker {@code worker} if it is open as {@code ticket}; true if this call claimed
     * it. The claim is the compare-and-set itself: from the instant it succeeds, the batch says who holds it.
     */
    boolean claim(long ticket, int worker) {
        return claim == ticket && CLAIM.compareAndSet(this, ticket, -2L - worker);
    }

    /** Whether worker {@code worker} holds the batch: claimed it and has not finished it. */
    boolean heldBy(int worker) {
        return claim == -2L - worker;
    }

    /** Lets go of the batch; called by the worker that holds it, once done with it. */
    void finish() {
        claim = DONE;
    }

    /** Whether no worker holds the batch or may still claim it: finished, or never given. */
    boolean finished() {
        return claim == DONE;
    }

    /** Whether it is in flight as {@code ticket}: opened as that ticket and not finished. Loading thread only. */
    boolean inFlightAs(long ticket) {
        return this.ticket == ticket && claim != DONE;
    }

    /**
     * Waits until the worker that claimed it has finished it; at once if it was never given, or if a
     * throwable on the loading thread came between opening it and raising the hand-off's count of tickets
     * given (the loading thread counts a batch in flight before it gives it): no worker can claim it then,
     * and it is marked finished. While it waits for an open batch, it wakes a worker, in case a throwable on
     * the loading thread cut off the wake after the batch was given. Uninterruptible, since a worker always
     * finishes a batch it claimed. Called by the thread that gave it.
     */
    void await() {
        boolean interrupted = false;
        for (long c = claim; c != DONE; c = claim) {
            if (c >= 0) {
                if (handoff.given() <= c) {
                    claim = DONE;   // never published: no worker claims a ticket it does not know is given
                    break;
                }
                handoff.wakeOne();
            }
            handoff.seams().beforePark();
            LockSupport.park(this);
            interrupted |= Thread.interrupted();    // else park would return at once from now on
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
    }
}
