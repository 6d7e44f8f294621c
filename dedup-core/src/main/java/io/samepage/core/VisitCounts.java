package io.samepage.core;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;

/**
 * One {@link PageVisitor}'s counters: written by the visitor's thread alone, read from any thread.
 * Each count moves with an opaque store, not a volatile one. On x86 a volatile store is a full fence:
 * a visit that counted its page waited there for its earlier stores (the page table, the deferred
 * list) to reach the cache, and a scanner thread's first half of a batch took about 1.4x as long
 * (docs/perf/engine.md#scan_threads). A reader on another thread sees a recent count, as KSM's
 * counters are read while ksmd runs; the scanner reads exact ones after a batch, whose end orders them.
 *
 * <p>Thread safety: one writing thread; the getters are safe from any thread.
 */
final class VisitCounts {

    private static final VarHandle SCANNED = handle("scanned");
    private static final VarHandle SKIPPED = handle("skipped");
    private static final VarHandle HASHED = handle("hashed");
    private static final VarHandle MERGES = handle("merges");

    private long scanned;
    private long skipped;
    private long hashed;
    private long merges;

    /** A page visited (KSM's {@code pages_scanned}). */
    void scanned() {
        SCANNED.setOpaque(this, scanned + 1);
    }

    /** A visit that smart_scan skipped ({@code pages_skipped}). */
    void skipped() {
        SKIPPED.setOpaque(this, skipped + 1);
    }

    /** A page read and hashed. */
    void hashed() {
        HASHED.setOpaque(this, hashed + 1);
    }

    /** A page merged: into the zero frame, a stable frame or a new pair. */
    void merged() {
        MERGES.setOpaque(this, merges + 1);
    }

    long pagesScanned() {
        return (long) SCANNED.getOpaque(this);
    }

    long pagesSkipped() {
        return (long) SKIPPED.getOpaque(this);
    }

    long pagesHashed() {
        return (long) HASHED.getOpaque(this);
    }

    long merges() {
        return (long) MERGES.getOpaque(this);
    }

    private static VarHandle handle(String field) {
        try {
            return MethodHandles.lookup().findVarHandle(VisitCounts.class, field, long.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }
}
