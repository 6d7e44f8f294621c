package io.samepage.image;

/**
 * The batches an {@link ImageLoader}'s loading thread has given its {@link LoadWorkers} and not yet taken
 * back, in block order: a ring of reusable {@link LoadBatch}es, each with a slot (which places its pages
 * in the staging guest). The loading thread counts a batch in flight before it gives it ({@link #add}),
 * takes batches back oldest first ({@link #takeOldest}), and ends every load with {@link #drain}, which
 * returns only once no batch is in flight, whatever surfaces meanwhile: so a load never returns while a
 * worker resolves a batch of it, and the next load never resets a batch a worker still holds. Allocates
 * nothing after it is made. Loading thread only.
 */
final class BatchRing {

    private final LoadBatch[] batches;
    /** The slot of the oldest batch in flight. */
    private int head;
    /** Batches in flight, from {@link #head} on; at most {@code batches.length}. */
    private int inFlight;

    /** A ring of {@code capacity} batches, none in flight. */
    BatchRing(int capacity) {
        batches = new LoadBatch[capacity];
        for (int i = 0; i < capacity; i++) {
            batches[i] = new LoadBatch();
        }
    }

    int capacity() {
        return batches.length;
    }

    boolean isEmpty() {
        return inFlight == 0;
    }

    boolean isFull() {
        return inFlight == batches.length;
    }

    /** The slot of the batch given next: the one after the newest in flight. */
    int nextSlot() {
        return (head + inFlight) % batches.length;
    }

    LoadBatch at(int slot) {
        return batches[slot];
    }

    /**
     * Counts the batch in {@link #nextSlot} in flight; called before it is given, so that whatever
     * surfaces from then on, {@link #drain} waits for it if it was given (and at once if it was not).
     */
    void add() {
        inFlight++;
    }

    /**
     * Waits until the oldest batch in flight is finished ({@link LoadBatch#await}) and takes it out of
     * flight. What surfaces in here leaves it in flight, for {@link #drain}, or already out of it.
     *
     * @throws IllegalStateException if none is in flight
     */
    LoadBatch takeOldest() {
        if (inFlight == 0) {
            throw new IllegalStateException("no batch in flight");
        }
        LoadBatch batch = batches[head];
        batch.await();
        // head first: cut off between the two, the ring counts one slot past the newest, a batch that is
        // finished or never given (drain waits for it at once), rather than miss the newest
        head = (head + 1) % batches.length;
        inFlight--;
        return batch;
    }

    /** Asks every batch in flight to stop at its next block ({@link LoadBatch#cancel}); waits for none. */
    void cancelInFlight() {
        for (int i = 0; i < inFlight; i++) {
            batches[(head + i) % batches.length].cancel();
        }
    }

    /**
     * Cancels every batch in flight ({@link #cancelInFlight}) and waits until each is finished, oldest
     * first; then none is. A throwable that surfaces meanwhile (a late fault, a StackOverflowError, an
     * OutOfMemoryError) does not cut it short: it goes on from the batch it waited for. Returns the
     * throwable that surfaced ({@link LoadFailures#first} of them, the others dropped, since keeping them
     * would allocate and a full heap may be what throws); null if none did. Only a third throwable in a
     * row, in the outer handler, escapes it: then batches may still be in flight, for the next drain.
     */
    Throwable drain() {
        Throwable thrown = null;
        while (true) {
            try {
                while (true) {
                    try {
                        cancelInFlight();
                        while (inFlight > 0) {
                            takeOldest();
                        }
                        return thrown;
                    } catch (Throwable e) {
                        thrown = LoadFailures.first(thrown, e);
                    }
                }
            } catch (Throwable e) {
                // It surfaced on the way from the inner handler to its loop's next turn; no call here, which
                // could overflow the stack again.
                thrown = thrown == null || e instanceof InternalError && !(thrown instanceof InternalError) ? e : thrown;
            }
        }
    }
}
