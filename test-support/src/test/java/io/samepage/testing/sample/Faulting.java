package io.samepage.testing.sample;

import io.samepage.testing.AllocationFaults;
import java.util.function.LongFunction;
import java.util.function.LongSupplier;

/**
 * A scenario for {@code AllocationFaultRunsTest}: its steps pass three allocations at two sites (the
 * first site twice). Its shape says what it finds: "whole" nothing; "flawed" a line when the last
 * allocation fails; "stuck" a stuck thread when the second fails, and a line when the third does;
 * "unclean" a line on every run. Its findings are literals: a concatenation would be an allocation site.
 */
public final class Faulting implements LongFunction<String>, LongSupplier {

    private final String shape;
    private long allocations;

    public Faulting(String shape) {
        this.shape = shape;
    }

    @Override
    public String apply(long k) {
        AllocationFaults.failAt(k);
        try {
            for (int i = 0; i < 2; i++) {
                int[] first = new int[i + 1];
                first[i] = i;
            }
            long[] last = new long[1];
            last[0] = 1;
            if (k == 0) {
                allocations = AllocationFaults.count();
            }
        } catch (OutOfMemoryError e) {
            // the finding is decided below, from where the failure was
        } finally {
            AllocationFaults.disarm();
        }
        return switch (shape) {
            case "flawed" -> k == 3 ? "the last allocation's failure was not handled" : "";
            case "stuck" -> k == 2 ? "a worker does not return\nits pages stay loaded" : k == 3 ? "run after the stuck one" : "";
            case "unclean" -> "left over";
            default -> "";
        };
    }

    @Override
    public long getAsLong() {
        return allocations;
    }
}
