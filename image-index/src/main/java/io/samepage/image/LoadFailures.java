package io.samepage.image;

/**
 * What an {@link ImageLoader}'s load fails with when it meets more than one throwable: its own failure,
 * one that surfaced late on the loading thread while it waited for its batches ({@link BatchRing#drain}),
 * a worker's stray ({@link LoadWorkers#takeStray}). A fault in a memory access (the {@link InternalError}
 * the JVM raises late for a read of a mapped file cut short) goes first: it says that pages the load left
 * may not be the image's, which {@link ImageLoader#load} then reports (its range emptied, if the index
 * file was cut short), where any other failure says the blocks before it stay loaded.
 */
final class LoadFailures {

    private LoadFailures() {
    }

    /**
     * Of {@code kept} and {@code met}, either may be null, the one to report, allocating nothing: {@code met}
     * if nothing is kept or it is an InternalError and {@code kept} is not; otherwise {@code kept}.
     */
    static Throwable first(Throwable kept, Throwable met) {
        return kept == null || met instanceof InternalError && !(kept instanceof InternalError) ? met : kept;
    }

    /**
     * {@link #first} of {@code failure} and {@code late}, with the other added to it as suppressed, unless the
     * two are one throwable (which cannot suppress itself), or adding it runs out of heap: then the other is
     * lost, the one reported is not.
     */
    static Throwable together(Throwable failure, Throwable late) {
        Throwable first = first(failure, late);
        Throwable other = first == failure ? late : failure;
        if (other != null && other != first) {
            try {
                first.addSuppressed(other);
            } catch (OutOfMemoryError lost) {
                // the heap is full: the one reported matters more than the one it would carry
            }
        }
        return first;
    }

    /** Throws {@code thrown}, an unchecked throwable: a load's calls throw no checked exception. */
    static RuntimeException rethrow(Throwable thrown) {
        if (thrown instanceof Error error) {
            throw error;
        }
        throw (RuntimeException) thrown;
    }
}
