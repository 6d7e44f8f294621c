package io.samepage.bench;

import java.util.function.IntConsumer;

/**
 * Runs the parts of a measured task side by side: part 0 on the caller's thread, each other part on a
 * platform thread of its own. It returns once every part is done, or has thrown: what the parts threw
 * is thrown then, the first with the others suppressed (one that several parts threw, as they can the
 * JVM's one shared OutOfMemoryError, is not added to itself). A helper thread's failure used to reach
 * only the uncaught-exception handler, and the report went on with a figure its part was missing from.
 *
 * <p>Thread safety: the parts run at once; what they share is theirs to guard.
 */
final class SideBySide {

    private SideBySide() {
    }

    /**
     * Runs {@code part} for {@code 0 .. parts - 1}, side by side. Waits for every part, an interrupt
     * included (kept for the caller): a part may use memory the caller frees next.
     *
     * @throws RuntimeException the first throwable a part threw, if an unchecked exception (a checked
     *                          one, thrown undeclared, as the cause of an {@link IllegalStateException})
     * @throws Error             the first throwable a part threw, if an error
     */
    static void run(int parts, IntConsumer part) {
        Throwable[] failures = new Throwable[parts];
        Thread[] helpers = new Thread[parts - 1];
        try {
            for (int h = 0; h < helpers.length; h++) {
                int index = h + 1;
                helpers[h] = Thread.ofPlatform().start(() -> {
                    try {
                        part.accept(index);
                    } catch (Throwable e) {
                        failures[index] = e;
                    }
                });
            }
            part.accept(0);
        } catch (Throwable e) {
            failures[0] = e;        // the caller's part, or a helper that could not start
        }
        boolean interrupted = false;
        for (Thread helper : helpers) {
            while (helper != null) {
                try {
                    helper.join();
                    break;
                } catch (InterruptedException e) {
                    interrupted = true;
                }
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
        Throwable first = null;
        for (Throwable failure : failures) {
            if (first == null) {
                first = failure;
            } else if (failure != null && failure != first) {     // the JVM's one shared OutOfMemoryError, say
                first.addSuppressed(failure);
            }
        }
        if (first instanceof RuntimeException e) {
            throw e;
        }
        if (first instanceof Error e) {
            throw e;
        }
        if (first != null) {
            throw new IllegalStateException("a part threw " + first, first);
        }
    }
}
