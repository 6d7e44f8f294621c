package io.samepage.kvm;

/**
 * Attaches a throwable met while undoing a failure to that failure, as a suppressed one. {@link
 * Throwable#addSuppressed} throws {@link IllegalArgumentException} when both are one instance, which they
 * can be: where the JVM cannot make a new {@link OutOfMemoryError} it throws a preallocated one, so a
 * clean-up that runs out of heap after the failure did may throw the very same object. Then that one
 * failure is thrown as it is, with nothing attached, rather than an IllegalArgumentException in its place.
 */
final class Suppressed {

    private Suppressed() {
    }

    /** Adds {@code also} to {@code failure}'s suppressed throwables, unless it is null or {@code failure} itself. */
    static void add(Throwable failure, Throwable also) {
        if (also != null && also != failure) {
            failure.addSuppressed(also);
        }
    }
}
