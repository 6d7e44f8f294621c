package io.samepage.testing.sample;

import java.util.function.BinaryOperator;

/** Code for {@code AllocationFaultLoaderTest} to rewrite: no allocation site but a call the test names. */
public final class Suppressing implements BinaryOperator<Throwable> {

    @Override
    public Throwable apply(Throwable thrown, Throwable earlier) {
        thrown.addSuppressed(earlier);      // allocates the list of suppressed throwables
        return thrown;
    }
}
