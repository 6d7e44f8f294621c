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
 * {@link OutOfMemoryError} too) gives back the guest it made before the failure propagates.
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
        GuestPages pages = new GuestPages(engine, domain, "wasm-" + id + "-" + made.incrementAndGet(), maximumBytes);
        Runnable close = pages::close;
        SamepageMemory memory = new SamepageMemory(limits, pages, this, cachePages);
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
            for (SamepageMemory memory : made) {
                closeAfter(memory, e);
            }
            throw e;
        } finally {
            builder.withMemoryFactory(this);    // the builder does not keep the list (nor its memories) alive
        }
    }

    /** Closes {@code memory}, made for what {@code failure} stopped; what the close throws is suppressed in it. */
    private static void closeAfter(SamepageMemory memory, Throwable failure) {
        try {
            memory.close();
        } catch (RuntimeException | Error e) {
            if (e != failure) {        // one preallocated OutOfMemoryError may be both
                failure.addSuppressed(e);
            }
        }
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
