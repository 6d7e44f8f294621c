package io.samepage.wasm;

import com.dylibso.chicory.runtime.ByteArrayMemory;
import com.dylibso.chicory.runtime.Instance;
import com.dylibso.chicory.runtime.Memory;
import com.dylibso.chicory.wasm.types.MemoryLimits;
import io.samepage.core.DedupEngine;
import io.samepage.core.MergeDomain;
import java.lang.ref.Cleaner;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Function;

/**
 * Makes the linear memories of Chicory instances on one engine domain:
 *
 * <pre>{@code
 * SamepageMemoryFactory memories = new SamepageMemoryFactory(engine, engine.createDomain("tenant-a"));
 * Instance instance = memories.build(Instance.builder(module));
 * }</pre>
 *
 * <p>Every instance of one module built with the same factory shares its data-segment pages copy-on-write
 * ({@link DataImages}): the first instance's pages become the image, later ones map them. A non-shared
 * memory is a {@link SamepageMemory}; a shared one (the threads proposal) is Chicory's own
 * {@code ByteArrayMemory}, since waiting and notifying across threads need the engine's lock-free access
 * path. A memory's guests go back to the engine at {@link SamepageMemory#close()}, or once the memory is
 * unreachable (a {@link Cleaner} closes it, after a GC); {@link #build} closes the memories of a build
 * that failed at once, and a memory whose making fails part way ({@link #apply} throws, an
 * {@link OutOfMemoryError} too) gives back the guest it made before the failure propagates. Where that
 * close fails too (on a heap that stays full, a guest's destroy runs out of heap as well), the factory
 * keeps the memory's guests, allocating nothing to keep them, and closes them again at its next
 * {@link #apply}: no guest is ever the engine's alone.
 *
 * <p>Thread safety: {@link #apply} is safe from any thread; each memory is confined to one.
 */
public final class SamepageMemoryFactory implements Function<MemoryLimits, Memory> {

    /** Cached 4 KiB pages per memory, by default: 256 KiB at most while the instance runs. */
    public static final int DEFAULT_CACHE_PAGES = 64;

    private static final Cleaner CLEANER = Cleaner.create();
    private static final AtomicLong FACTORIES = new AtomicLong();

    private final DedupEngine engine;
    private final MergeDomain domain;
    private final DataImages images;
    private final long id = FACTORIES.incrementAndGet();
    private final AtomicLong made = new AtomicLong();
    private volatile int cachePages = DEFAULT_CACHE_PAGES;
    /**
     * The pages of memories made for a failed making or build whose close threw, to close again: a chain
     * through {@link GuestPages#nextUnclosed}, so that keeping one allocates nothing. Guarded by this.
     */
    private GuestPages unclosed;

    public SamepageMemoryFactory(DedupEngine engine, MergeDomain domain) {
        this.engine = engine;
        this.domain = domain;
        this.images = new DataImages(engine.newPageInstaller());
    }

    /**
     * Cached 4 KiB pages per memory made from now on: a power of two, at least 1.
     *
     * @throws IllegalArgumentException otherwise
     */
    public SamepageMemoryFactory cachePages(int pages) {
        if (pages < 1 || Integer.bitCount(pages) != 1) {
            throw new IllegalArgumentException("cachePages must be a power of two, at least 1, not " + pages);
        }
        cachePages = pages;
        return this;
    }

    @Override
    public Memory apply(MemoryLimits limits) {
        if (limits.shared()) {
            return new ByteArrayMemory(limits);
        }
        long maximumBytes = (long) Math.min(limits.maximumPages(), Memory.RUNTIME_MAX_PAGES) * Memory.PAGE_SIZE;
        closeUnclosed();
        GuestPages pages = new GuestPages(engine, domain, "wasm-" + id + "-" + made.incrementAndGet(), maximumBytes);
        Runnable close = pages::close;
        SamepageMemory memory;
        try {
            memory = new SamepageMemory(limits, pages, this, cachePages);
        } catch (RuntimeException | Error e) {
            closeAfter(pages, e);       // a guest its failed grow kept aside: nothing else would destroy it
            throw e;
        }
        try {
            CLEANER.register(memory, close);
        } catch (RuntimeException | Error e) {
            closeAfter(memory, e);      // no Cleaner would close it, and the caller never gets it
            throw e;
        }
        return memory;
    }

    /**
     * Builds {@code builder} with this factory's memories ({@code builder.withMemoryFactory(this).build()}),
     * except that a build that throws (a trap in the start function, a data segment that does not fit, a
     * missing import) closes the memories made for it before the exception propagates: their frames go back
     * to the engine now, not whenever a GC runs the {@link Cleaner}. Leaves {@code builder} with this
     * factory as its memory factory.
     */
    public Instance build(Instance.Builder builder) {
        List<SamepageMemory> made = new ArrayList<>(1);
        builder.withMemoryFactory(limits -> {
            Memory memory = apply(limits);
            if (memory instanceof SamepageMemory m) {
                try {
                    made.add(m);
                } catch (RuntimeException | Error e) {
                    closeAfter(m, e);       // the build's failure would not close it: it is not listed
                    throw e;
                }
            }
            return memory;
        });
        try {
            return builder.build();
        } catch (RuntimeException | Error e) {
            for (int i = 0; i < made.size(); i++) {     // no iterator: the heap may be full
                closeAfter(made.get(i), e);
            }
            throw e;
        } finally {
            builder.withMemoryFactory(this);    // the builder does not keep the list (nor its memories) alive
        }
    }

    /**
     * Closes {@code memory}, made for what {@code failure} stopped; what the close throws is suppressed in
     * it where there is room, and the memory's pages kept, to close again at the next {@link #apply}.
     */
    private void closeAfter(SamepageMemory memory, Throwable failure) {
        try {
            memory.close();
        } catch (RuntimeException | Error e) {
            keepAfter(memory.linearPages(), e, failure);
        }
    }

    /** {@link #closeAfter(SamepageMemory, Throwable)} of pages no memory was made on. */
    private void closeAfter(LinearPages pages, Throwable failure) {
        try {
            pages.close();
        } catch (RuntimeException | Error e) {
            keepAfter(pages, e, failure);
        }
    }

    /** Keeps {@code pages}, whose close after {@code failure} threw {@code thrown}, and suppresses that in it if there is room. */
    private void keepAfter(LinearPages pages, Throwable thrown, Throwable failure) {
        if (pages instanceof GuestPages g) {
            keepUnclosed(g);        // first: suppressing may run out of heap too
        }
        if (thrown != failure) {    // one preallocated OutOfMemoryError may be both
            try {
                failure.addSuppressed(thrown);
            } catch (OutOfMemoryError noRoom) {
                // the failure propagates without it; the pages are kept all the same
            }
        }
    }

    private synchronized void keepUnclosed(GuestPages pages) {
        pages.nextUnclosed = unclosed;
        unclosed = pages;
    }

    /** Closes the pages kept by {@link #keepUnclosed} again; those whose close throws again are kept. */
    private synchronized void closeUnclosed() {
        GuestPages pages = unclosed;
        unclosed = null;
        while (pages != null) {
            GuestPages next = pages.nextUnclosed;
            pages.nextUnclosed = null;
            try {
                pages.close();
            } catch (RuntimeException | Error e) {
                keepUnclosed(pages);    // the heap is still full, or the engine closed: tried again next time
            }
            pages = next;
        }
    }

    /** The guests of the pages kept to close again, for tests. */
    synchronized List<io.samepage.core.Guest> unclosedGuests() {
        List<io.samepage.core.Guest> guests = new ArrayList<>();
        for (GuestPages pages = unclosed; pages != null; pages = pages.nextUnclosed) {
            guests.addAll(List.of(pages.guests()));
        }
        return guests;
    }

    DataImages images() {
        return images;
    }

    /**
     * Heap bytes the data-segment images hold: one copy of each image's pages, for installing them again,
     * for each {@code WasmModule} still reachable (a module's images go with it, at a GC).
     */
    public long imageHeapBytes() {
        return images.heapBytes();
    }

    public DedupEngine engine() {
        return engine;
    }

    public MergeDomain domain() {
        return domain;
    }
}
