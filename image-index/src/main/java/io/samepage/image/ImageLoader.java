package io.samepage.image;

import io.samepage.core.DedupEngine;
import io.samepage.core.DedupException;
import io.samepage.core.Guest;
import io.samepage.core.PageInstaller;
import io.samepage.hashing.ContentDigest;
import io.samepage.hashing.Pages;
import java.nio.ByteBuffer;
import java.util.Objects;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Loads blocks of an indexed image into guests. For each block:
 * <ul>
 *   <li>all zeros (the index says so): the page maps the zero frame; nothing is read;</li>
 *   <li>content resident in the guest's merge domain (same SHA-256): the page maps that frame
 *       copy-on-write; nothing is read;</li>
 *   <li>otherwise the block is read into a fresh frame, its SHA-256 is checked against the index, and
 *       only then is it mapped and registered as resident. A mismatch means the image changed since the
 *       index was built: the load fails naming the block and the file, and the block is never
 *       installed.</li>
 * </ul>
 * Identity is always the SHA-256 digest, never the fast hash.
 *
 * <h2>Threads</h2>
 * Hashing every block read with SHA-256 is most of a first load's work, so a loader made with
 * {@code threads > 1} ({@link #defaultThreads()}: one per available processor) starts that many worker
 * threads. The loading thread walks the blocks in order and maps zero and resident blocks itself; at
 * the first block it must read, it hands the blocks from there on, in batches of at most
 * {@value LoadBatch#MAX_BLOCKS} blocks of one file, to the workers, at most two batches per worker
 * ahead of itself. A worker reads a batch with as few positional reads as it can, and installs each
 * block it lacks into a private <em>staging guest</em> of the same domain (created for the load,
 * destroyed at its end) through {@link PageInstaller#install}, which verifies the SHA-256 before it
 * maps or registers anything. The loading thread then maps each block, in block order, to the frame
 * registered under its digest; a block whose digest occurs earlier in the load is left to it, so no
 * content is read twice. The guest being loaded thus only ever receives verified frames, in order: a
 * mismatch or a read error found by a worker stops the load at that block with the same error as with
 * one thread, the blocks before it loaded and none after (a worker's frames beyond it go when the
 * staging guest is destroyed). An exhausted pool stops it the same way at the block that found no
 * frame, which, since the workers' frames in flight count too, can come earlier than with one thread.
 * An index file cut short while in use stops it too, on any number of threads, but keeps none of its
 * blocks: the whole range is left reading zeros ({@link #load}). While a load runs, the staging guest
 * is one more guest of the engine and domain; it holds no frame the loaded guest does not hold too,
 * except for blocks in flight. A batch in which every block was resident stops the hand-off until the
 * loading thread catches up, so a later guest, which finds everything resident, uses no worker at all.
 *
 * <p>Thread safety: a loader is confined to one loading thread (it holds open files, buffers and
 * {@link PageInstaller}s); use one loader per loading thread. Its workers are its own. Close it to stop
 * them (close waits until they have ended) and close the image's files.
 */
public final class ImageLoader implements AutoCloseable {

    /** The most worker threads a loader takes. */
    public static final int MAX_THREADS = 256;

    private static final AtomicLong STAGING_GUESTS = new AtomicLong();

    private final ImageIndex index;
    private final DedupEngine engine;
    private final PageInstaller installer;
    private final BatchResolver resolver;
    private final LoadBatch direct = new LoadBatch();
    private final byte[] digest = new byte[ContentDigest.LENGTH];
    private final int threads;
    /** Null with one thread. */
    private final LoadWorkers workers;
    /** The batches the workers hold, in block order; their staging pages by slot. Null with one thread. */
    private final BatchRing ring;
    /**
     * The staging guest not known to be destroyed: the running load's from the moment it is made, or one an
     * earlier load left (a throwable cut that load's end short, or its destroy threw twice). Destroyed first
     * by the next load, once no batch is in flight, or by close.
     */
    private Guest leftStaging;
    private long read;
    private long mapped;
    private long zero;
    private boolean closed;

    /** One thread per available processor: the default of {@link #ImageLoader(ImageIndex, DedupEngine)}. */
    public static int defaultThreads() {
        return Math.min(MAX_THREADS, Runtime.getRuntime().availableProcessors());
    }

    /**
     * A loader with {@link #defaultThreads()} threads.
     *
     * @param index  an index bound to its image ({@link ImageIndex#open(java.nio.file.Path, java.nio.file.Path)}
     *               or {@link ImageIndex#build})
     * @param engine the engine whose guests it loads into
     */
    public ImageLoader(ImageIndex index, DedupEngine engine) {
        this(index, engine, defaultThreads());
    }

    /**
     * @param index   an index bound to its image
     * @param engine  the engine whose guests it loads into
     * @param threads 1: the loading thread reads and hashes every block itself; 2 to {@value #MAX_THREADS}:
     *                that many worker threads read and hash, started now, stopped by {@link #close()}
     */
    public ImageLoader(ImageIndex index, DedupEngine engine, int threads) {
        this(index, engine, threads, LoadWorkers.Seams.NONE);
    }

    /**
     * As above, the workers running {@code seams}: a parameter so that a test can make a worker throw,
     * as a fault the JVM raises late does.
     */
    ImageLoader(ImageIndex index, DedupEngine engine, int threads, LoadWorkers.Seams seams) {
        if (index.layout().root() == null) {
            throw new IllegalArgumentException("the index " + index.origin()
                    + " is not bound to its image: open it with ImageIndex.open(index, source)");
        }
        if (threads < 1 || threads > MAX_THREADS) {
            throw new IllegalArgumentException("threads must be 1 (hash on the loading thread) to " + MAX_THREADS
                    + ", not " + threads);
        }
        this.index = index;
        this.engine = engine;
        this.threads = threads;
        this.installer = engine.newPageInstaller();
        this.resolver = new BatchResolver(index, engine);
        if (threads == 1) {
            this.ring = null;
            this.workers = null;
        } else {
            this.ring = new BatchRing(Handoff.PER_WORKER * threads);
            this.workers = new LoadWorkers(index, engine, threads, seams);
        }
    }

    /** The threads that read and hash: 1 means the loading thread alone. */
    public int threads() {
        return threads;
    }

    /**
     * CPU time this loader's worker threads have used so far, in nanoseconds (0 with one thread: the
     * loading thread does the work, and its own CPU time counts it). Add it to the loading thread's to
     * know what the loads cost; read it before {@link #close()}, which ends the workers.
     */
    public long workerCpuNanos() {
        return workers == null ? 0 : workers.cpuNanos();
    }

    /** Loads the whole image into {@code guest} at {@code guestAddress}. */
    public LoadStats loadAll(Guest guest, long guestAddress) {
        return load(guest, guestAddress, 0, index.blockCount());
    }

    /**
     * Loads blocks {@code [firstBlock, firstBlock + blocks)} into {@code guest} from {@code guestAddress}
     * (page aligned) on.
     *
     * <p>A fault reading the mapped index can surface well after the read that met it: on a worker, once its
     * batch is done. So every load, once all its batches are finished, failed or not, takes what a worker met
     * outside its batches, after a batch of this load, that no batch failed with
     * ({@link LoadWorkers#takeStray}), and one that went well checks, with one stat, whether the index file is
     * now shorter than when it was opened. Either fails this load, as below, rather than the next one. A
     * throwable that surfaces on a worker after the take still belongs to this load, which has returned: the
     * next load does not fail with it as its own, but, if it is a fault in a memory access, reports it before
     * it changes anything, naming this load (IO below), unless this load failed with CORRUPT; any other is
     * dropped ({@link LoadWorkers}: Strays).
     *
     * @throws ImageIndexException BLOCK_MISMATCH if a block read does not match the index (the blocks
     *                             before it stay loaded, this one and those after are not), IO if the
     *                             image cannot be read (likewise); IO before anything changed if a worker
     *                             met a fault in a memory access (an InternalError) after an earlier load
     *                             of this loader ended, having read for it, and that load did not fail
     *                             with CORRUPT: its message names that load's guest and blocks, which may
     *                             hold bytes that are not the image's; load them again, then this load;
     *                             CORRUPT if the index file was cut
     *                             short since it was opened, whether a read met the cut or the load
     *                             found the file short at its end: then every page of the range
     *                             {@code [guestAddress, guestAddress + blocks * 4096)} reads zeros, whatever
     *                             it held before or the load put there (the JVM reports that fault only
     *                             after the read that met it, and the load went on with whatever that
     *                             read returned, so no block loaded before it can be trusted); load them
     *                             again with a rebuilt index. If the guest refuses that emptying too (no
     *                             frame for a mapped guest's shared page, the host refuses its remap, the
     *                             guest was destroyed), the error is still CORRUPT and carries that
     *                             refusal as suppressed, and pages of the range may still hold what they
     *                             held before the load or what the load left there: fill the range with
     *                             zeros or destroy the guest before it runs
     * @throws InternalError a fault that a worker met outside its batches, after one of this load (it
     *                       surfaced late), and that is not known to be the index's, as it is and once,
     *                       with any failure of the load suppressed; the blocks loaded stay. Any other
     *                       throwable a worker met there is thrown likewise, or suppressed by the load's failure
     * @throws io.samepage.core.DedupException if the pool is exhausted (likewise); and before anything
     *                                           changed, if the guest is another engine's or destroyed, or
     *                                           the address is off a page or the blocks do not fit the guest
     * @throws IllegalStateException if the loader is closed
     */
    public LoadStats load(Guest guest, long guestAddress, long firstBlock, long blocks) {
        if (closed) {
            throw new IllegalStateException("the loader of " + index.origin() + " is closed: its threads and files are gone");
        }
        Objects.checkFromIndexSize(firstBlock, blocks, index.blockCount());
        checkTarget(guest, guestAddress, blocks);
        if (ring != null) {
            ring.drain();   // returns at once, unless a throwable cut the last load's end short: then it waits for its batches
        }
        if (leftStaging != null) {
            leftStaging.destroy();     // an earlier load's, which it could not destroy: before this load changes anything
            leftStaging = null;
        }
        LoadRecord load = new LoadRecord(guest, guestAddress, firstBlock, blocks);
        if (workers != null) {
            workers.startLoad(load);
        }
        long start = System.nanoTime();
        read = 0;
        mapped = 0;
        zero = 0;
        try {
            if (workers == null) {
                for (long b = firstBlock; b < firstBlock + blocks; b = direct.endBlock()) {
                    resolveHere(guest, guestAddress + ((b - firstBlock) << Pages.PAGE_SHIFT), b,
                            BlockReader.runLength(index.layout(), b, (int) Math.min(LoadBatch.MAX_BLOCKS, firstBlock + blocks - b)));
                }
            } else {
                loadStaged(guest, guestAddress, firstBlock, firstBlock + blocks);
            }
            ImageIndexException cut = index.cutShort(null);
            if (cut != null) {
                throw load.emptied(cut);
            }
        } catch (InternalError fault) {
            // A fault reading the mapped index (here or on a worker, which hands it on as its block's
            // failure or as the stray): the index file was cut short while in use. The staging guest is
            // gone already.
            throw load.emptied(index.cutShortWhileInUse(fault));
        }
        return new LoadStats(read, mapped, zero, (mapped + zero) << Pages.PAGE_SHIFT, System.nanoTime() - start);
    }

    /**
     * Refuses a load that could only fail part way, before it changes anything: zero blocks are filled
     * through the guest, which takes any byte address, so a load at an address off a page zeroed the
     * guest's bytes there before its first mapped block was refused; and this loader's frames are its own
     * engine's (a guest of another engine read another guest's private page through them).
     */
    private void checkTarget(Guest guest, long address, long blocks) {
        String name = "guest " + guest.name();
        if (guest.engine() != engine) {
            throw new DedupException(DedupException.Kind.INVALID_ARGUMENT, name + " belongs to another engine than "
                    + "the loader of " + index.origin() + "; load it with a loader of its own engine");
        }
        if (guest.isDestroyed()) {
            throw new DedupException(DedupException.Kind.DESTROYED, name + " has been destroyed");
        }
        if ((address & (Pages.PAGE_SIZE - 1)) != 0 || address < 0) {
            throw new DedupException(DedupException.Kind.INVALID_ARGUMENT, name + ": 0x" + Long.toHexString(address)
                    + " is not the start of a page");
        }
        if (address > guest.sizeBytes() || blocks > (guest.sizeBytes() - address) >>> Pages.PAGE_SHIFT) {
            throw new DedupException(DedupException.Kind.INVALID_ARGUMENT, name + ": " + blocks + " blocks at 0x"
                    + Long.toHexString(address) + " do not fit its " + guest.sizeBytes() + " bytes");
        }
    }

    /** Resolves {@code count} blocks of one file from {@code block} on into {@code guest} on this thread. */
    private void resolveHere(Guest guest, long address, long block, int count) {
        direct.reset(block, count, guest, address, false, block, null);
        resolver.resolve(direct);
        for (int i = 0; i < count; i++) {
            switch (direct.outcome[i]) {
                case LoadBatch.ZERO -> zero++;
                case LoadBatch.RESIDENT -> mapped++;
                case LoadBatch.READ -> read++;
                default -> throw failureOf(direct, i, guest, direct.addressOf(i));
            }
        }
    }

    /**
     * Loads with the workers; returns only once none of them resolves a batch of this load (even if a
     * throwable surfaces while it waits: {@link BatchRing#drain}), it has taken its strays
     * ({@link LoadWorkers#takeStray}) and the staging guest is destroyed (or kept as {@link #leftStaging}).
     * Only a throwable that cuts that end short (one the drain cannot hold, as the third in a row) returns
     * sooner: the staging guest, {@link #leftStaging} from the moment it is made, then waits for the next
     * load, which waits for the batches before it destroys it. It fails with its own failure, with what it
     * met after (in its end, or what cut its end short) as suppressed, unless that is a fault in a memory
     * access ({@link LoadFailures}).
     */
    private void loadStaged(Guest guest, long base, long from, long end) {
        Guest staging = null;
        int[] duplicates = null;
        boolean handingOff = false;
        long next = from;
        Throwable failure = null;
        try {
            for (long b = from; b < end; ) {
                long address = base + ((b - from) << Pages.PAGE_SHIFT);
                if (ring.isEmpty()) {
                    if (index.isZero(b)) {
                        guest.fill(address, Pages.PAGE_SIZE, (byte) 0);
                        zero++;
                        b++;
                        continue;
                    }
                    index.digest(b, digest, 0);
                    if (installer.mapResident(guest, address, digest, 0)) {
                        mapped++;
                        b++;
                        continue;
                    }
                    if (staging == null) {
                        staging = leftStaging = engine.createGuest(guest.domain(), guest.name() + "/image-load-"
                                + STAGING_GUESTS.incrementAndGet(), (long) ring.capacity() * LoadBatch.MAX_BLOCKS << Pages.PAGE_SHIFT);
                        duplicates = index.previousBlocks();
                    }
                    handingOff = true;
                    next = b;
                }
                while (handingOff && !ring.isFull() && next < end) {
                    int slot = ring.nextSlot();
                    int count = BlockReader.runLength(index.layout(), next, (int) Math.min(LoadBatch.MAX_BLOCKS, end - next));
                    ring.at(slot).reset(next, count, staging, (long) slot * LoadBatch.MAX_BLOCKS << Pages.PAGE_SHIFT,
                            true, from, duplicates);
                    ring.add();     // first: whatever surfaces from here on, the drain waits for the batch if given
                    workers.submit(ring.at(slot));
                    next += count;
                }
                LoadBatch batch = ring.takeOldest();
                handingOff = commit(batch, guest, base, from) && handingOff;
                b = batch.endBlock();
            }
        } catch (Throwable e) {
            failure = e;    // its record, with nothing between: e is held nowhere else
        }
        Throwable late;
        try {
            late = endStaged(staging);
        } catch (Throwable e) {
            late = e;       // it cut the end short: the next load waits for the batches and destroys leftStaging
        }
        if (failure != null || late != null) {
            // an InternalError goes to load's handler, as one met in a batch does; late may be failure itself
            throw LoadFailures.rethrow(LoadFailures.together(failure, late));
        }
    }

    /**
     * Ends a load with the workers: waits until none of them holds a batch of it ({@link BatchRing#drain}),
     * takes their strays and destroys {@code staging} (null if none was made); returns what surfaced
     * meanwhile and what they met outside their batches ({@link LoadFailures#together}), or null.
     */
    private Throwable endStaged(Guest staging) {
        Throwable late = LoadFailures.together(ring.drain(), workers.takeStray());
        if (staging != null) {
            try {
                destroyStaging(staging);
            } catch (RuntimeException | Error e) {
                late = LoadFailures.together(late, e);
            }
        }
        return late;
    }

    /**
     * Destroys {@code staging}, which is {@link #leftStaging}, and once more if that throws: {@link Guest#destroy}
     * changes nothing or completes, and an {@link OutOfMemoryError} may have cleared once the first attempt
     * unwound. If the second throws too, the guest stays {@link #leftStaging}, for the next load or close to
     * destroy first, and the first throwable is thrown.
     */
    private void destroyStaging(Guest staging) {
        try {
            staging.destroy();
        } catch (RuntimeException | Error first) {
            try {
                staging.destroy();
            } catch (RuntimeException | Error second) {
                throw first;
            }
        }
        leftStaging = null;
    }

    /**
     * Maps a worker's batch into {@code guest}, in block order; returns whether the worker read any block.
     *
     * @throws RuntimeException what the first failed block of the batch failed with
     */
    private boolean commit(LoadBatch batch, Guest guest, long base, long from) {
        boolean anyRead = false;
        for (int i = 0; i < batch.blocks(); i++) {
            long b = batch.firstBlock() + i;
            long address = base + ((b - from) << Pages.PAGE_SHIFT);
            byte outcome = batch.outcome[i];
            switch (outcome) {
                case LoadBatch.ZERO -> {
                    guest.fill(address, Pages.PAGE_SIZE, (byte) 0);
                    zero++;
                }
                case LoadBatch.DUPLICATE, LoadBatch.RESIDENT, LoadBatch.READ -> {
                    anyRead |= outcome == LoadBatch.READ;
                    index.digest(b, digest, 0);
                    if (!installer.mapResident(guest, address, digest, 0)) {
                        resolveHere(guest, address, b, 1);  // its frame left the registry meanwhile: read it here
                    } else if (outcome == LoadBatch.READ) {
                        read++;
                    } else {
                        mapped++;
                    }
                }
                default -> throw failureOf(batch, i, guest, address);
            }
        }
        return anyRead;
    }

    /**
     * The error for block {@code i} of {@code batch}, which did not resolve; {@code address} is where it
     * was to be loaded in {@code guest}, the guest being loaded (not a staging guest).
     */
    private RuntimeException failureOf(LoadBatch batch, int i, Guest guest, long address) {
        long b = batch.firstBlock() + i;
        return switch (batch.outcome[i]) {
            case LoadBatch.MISMATCH -> {
                ImageLayout layout = index.layout();
                ImageLayout.Extent extent = layout.extents().get(layout.extentOfBlock(b));
                yield new ImageIndexException(ImageIndexException.Kind.BLOCK_MISMATCH, layout.pathOf(extent)
                        + ": block " + b + " (byte " + ((b << Pages.PAGE_SHIFT) - extent.imageOffset())
                        + " of the file) does not match its digest in " + index.origin()
                        + "; the image changed since the index was built: rebuild the index (--rebuild)");
            }
            case LoadBatch.FAILED -> {
                if (batch.failure() instanceof Error error) {
                    throw error;
                }
                if (batch.staged() && batch.failure() instanceof DedupException staged) {
                    yield inLoadedGuest(staged, guest, address, b);
                }
                yield (RuntimeException) batch.failure();
            }
            default -> new IllegalStateException("block " + b + " was not resolved (outcome " + batch.outcome[i] + ")");
        };
    }

    /**
     * A worker's engine error, which names the staging guest and a page of it, restated for the guest
     * being loaded: its name, the address the block was to be loaded at, and the block; same kind, the
     * worker's error as the cause. An exhausted pool reads as on one thread, with the block added; any
     * other kind (which a staging guest, a software guest made for the load, hardly meets) keeps the
     * worker's message after the loaded guest's page.
     */
    private static DedupException inLoadedGuest(DedupException staged, Guest guest, long address, long block) {
        String page = "page at 0x" + Long.toHexString(address) + " (block " + block + ")";
        String message = staged.kind() == DedupException.Kind.POOL_EXHAUSTED
                ? "host frame pool exhausted: no frame to load guest " + guest.name() + "'s " + page
                : "guest " + guest.name() + ": cannot load the " + page + ": " + staged.getMessage();
        return new DedupException(staged.kind(), message, staged);
    }

    /**
     * Loads blocks without the index, as a guest without Samepage would: read every block and write it
     * into the guest. The reference the index is measured against.
     */
    public static LoadStats loadWithoutIndex(ImageLayout layout, Guest guest, long guestAddress) {
        long start = System.nanoTime();
        ByteBuffer buffer = ByteBuffer.allocateDirect(IndexBuilder.RUN_BLOCKS * Pages.PAGE_SIZE);
        java.lang.foreign.MemorySegment segment = java.lang.foreign.MemorySegment.ofBuffer(buffer);
        long blocks = layout.blockCount();
        try (BlockReader reader = new BlockReader(layout)) {
            for (long b = 0; b < blocks; ) {
                int run = reader.runLength(b, IndexBuilder.RUN_BLOCKS);
                buffer.clear();
                reader.read(b, run, buffer);
                guest.write(guestAddress + (b << Pages.PAGE_SHIFT), segment.asSlice(0, (long) run << Pages.PAGE_SHIFT));
                b += run;
            }
        }
        return new LoadStats(blocks, 0, 0, 0, System.nanoTime() - start);
    }

    /**
     * Stops the worker threads, waiting until they have ended, closes the image's files, and destroys a
     * staging guest a failed load could not ({@link #leftStaging}).
     */
    @Override
    public void close() {
        closed = true;
        if (workers != null) {
            workers.close();
        }
        resolver.close();
        if (leftStaging != null) {
            leftStaging.destroy();
            leftStaging = null;
        }
    }
}
