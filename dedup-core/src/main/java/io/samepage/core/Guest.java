package io.samepage.core;

import io.samepage.core.DedupException.Kind;
import io.samepage.hashing.Pages;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.StampedLock;

import static io.samepage.core.PageTable.DIRTY;
import static io.samepage.core.PageTable.HOLE;
import static io.samepage.core.PageTable.STABLE;
import static io.samepage.core.PageTable.SCAN_HISTORY;
import static io.samepage.core.PageTable.ZERO_MERGED;

/**
 * One guest's memory: a page table of frame ids over the engine's {@link FramePool}, held in software
 * or mirrored by a {@link PageMapping} (mapped guest memory, which a KVM guest runs on).
 *
 * <p>Reads go straight to the mapped frame. A write to a page that maps a shared frame, or the zero
 * frame, first gives the page a private copy (copy-on-write: "breaking" the sharing); a shared frame
 * is never written in place, so a frame in the stable index never changes. Every read returns the
 * bytes last written to that address, exactly as if there were no merging.
 *
 * <p>Metadata: a {@link PageTable} of 13 bytes per guest page, plus one lock per stripe of pages.
 *
 * <p>Thread safety: safe for any number of concurrent readers and writers, and the scanner. Each page
 * belongs to one of up to {@value PageStripes#MAX_STRIPES} lock stripes; a read holds its page's stripe shared,
 * a write holds the stripes of its whole range exclusively (taken in ascending order; a {@link #copy}
 * its source's too, guest by guest in the engine's creation order), so the part of a write that falls
 * in one page is atomic with respect to reads of that page. A failed write or copy (range, destroyed
 * guest, exhausted pool) changes nothing.
 *
 * <p>A guest with a {@link PageMapping} starts with page {@code p} on frame {@code first + p} of one
 * run ({@link FramePool#allocateRun}), read as zeros until written: such a page is a hole, which the
 * scanner passes by like a never-written page. Its pages may also be written behind the engine's back
 * (by a KVM guest): {@link #markWritten} tells the engine, and the scanner asks the mapping at every
 * full scan. An all-zero page gives its frame's memory back in place and stays mapped, writable. Java
 * code reads and writes through the pool's frames, never through the guest's mappings, so it never
 * faults on a read-only page.
 */
public final class Guest {

    private final DedupEngine engine;
    private final FramePool pool;
    private final MergeDomain domain;
    private final String name;
    /** The guests its engine created before this one: its place in {@link DedupEngine#guests}. */
    private final long creation;
    private final int pageCount;
    private final PageTable table;
    /** The page table's arrays, named here for the many accesses below. */
    private final int[] frames;
    private final int[] states;
    private final PageStripes stripes;
    /** How writes and fills change pages: reserve, break sharing, copy in. */
    private final GuestWrites writes;
    /** {@link PageMapping#NONE} for a software guest: then nothing but this class reads or writes its frames. */
    private final PageMapping mapping;
    /** Held by a {@link PageMapping} that something outside the engine reads and writes (a KVM guest). */
    private final boolean mapped;
    /** Asks the mapping what was written behind the engine's back; null for a software guest. */
    private final WrittenPages written;
    private final AtomicLong mergingPages = new AtomicLong();
    private final AtomicLong zeroPages = new AtomicLong();
    private volatile boolean destroyed;

    /**
     * A guest of {@code sizeBytes} whose pages have engine-wide ids from {@code basePageId}. Software
     * ({@code mapping} null): every page maps the zero frame. Mapped: page {@code p} starts on frame
     * {@code firstFrame + p}, a hole, mirrored by {@code mapping}.
     */
    Guest(DedupEngine engine, MergeDomain domain, String name, long creation, long sizeBytes, PageMapping mapping,
          int firstFrame, int basePageId) {
        this.engine = engine;
        this.pool = engine.pool();
        this.domain = domain;
        this.name = name;
        this.creation = creation;
        this.pageCount = (int) (sizeBytes >>> Pages.PAGE_SHIFT);
        this.mapped = mapping != null;
        this.table = new PageTable(pageCount, basePageId, domain.zeroFrame(), mapped ? firstFrame : -1);
        this.frames = table.frames;
        this.states = table.states;
        this.mapping = mapped ? mapping : PageMapping.NONE;
        this.written = mapped ? new WrittenPages(this, mapping) : null;
        this.stripes = new PageStripes(pageCount);
        this.writes = new GuestWrites(engine, this);
    }

    public String name() {
        return name;
    }

    /** The guests its engine created before this one, as an {@code int} (it wraps after 2^31). */
    public int id() {
        return (int) creation;
    }

    long creation() {
        return creation;
    }

    /** The engine this guest belongs to: its frames are that engine's pool's. */
    public DedupEngine engine() {
        return engine;
    }

    public MergeDomain domain() {
        return domain;
    }

    public long sizeBytes() {
        return (long) pageCount << Pages.PAGE_SHIFT;
    }

    public int pageCount() {
        return pageCount;
    }

    public boolean isDestroyed() {
        return destroyed;
    }

    /** Copies {@code length} bytes at {@code address} into {@code dst[offset..]}. */
    public void read(long address, byte[] dst, int offset, int length) {
        java.util.Objects.checkFromIndexSize(offset, length, dst.length);
        read(address, MemorySegment.ofArray(dst).asSlice(offset, length));
    }

    /** Copies {@code dst.byteSize()} bytes at {@code address} into {@code dst}. */
    public void read(long address, MemorySegment dst) {
        long length = dst.byteSize();
        checkRange(address, length);
        long done = 0;
        while (done < length) {
            long at = address + done;
            int page = (int) (at >>> Pages.PAGE_SHIFT);
            int inPage = (int) (at & (Pages.PAGE_SIZE - 1));
            int chunk = (int) Math.min(length - done, Pages.PAGE_SIZE - inPage);
            StampedLock lock = stripes.of(page);
            long stamp = lock.readLock();
            try {
                checkAlive();
                MemorySegment.copy(pool.memory(), FramePool.offsetOf(frames[page]) + inPage, dst, done, chunk);
            } finally {
                lock.unlockRead(stamp);
            }
            done += chunk;
        }
    }

    /** Reads one byte. */
    public byte readByte(long address) {
        byte[] one = new byte[1];
        read(address, one, 0, 1);
        return one[0];
    }

    /** Writes {@code src[offset..offset+length)} at {@code address}. */
    public void write(long address, byte[] src, int offset, int length) {
        java.util.Objects.checkFromIndexSize(offset, length, src.length);
        write(address, MemorySegment.ofArray(src).asSlice(offset, length));
    }

    /** Writes all of {@code src} at {@code address}; a source this thread cannot read is INVALID_ARGUMENT, nothing written. */
    public void write(long address, MemorySegment src) {
        writes.mutate(address, src.byteSize(), src, (byte) 0);
    }

    /** Sets {@code length} bytes at {@code address} to {@code value}. Whole pages filled with 0 give their frames back. */
    public void fill(long address, long length, byte value) {
        writes.mutate(address, length, null, value);
    }

    /**
     * Copies {@code length} bytes from {@code srcAddress} of this guest to {@code dstAddress} of {@code dst},
     * a guest of this engine (this one too: overlapping ranges copy as if through a buffer). All or
     * nothing at any length, as a {@link GuestChain} copy: under the stripes of both ranges it reserves
     * every frame the copy needs, or refuses having changed nothing. Also as there, a mapped {@code dst}'s
     * page whose copy-on-write remap the host refuses stops the copy at that page: the pieces before it (in
     * the copy's direction, backwards where the ranges overlap so) were copied.
     *
     * @throws DedupException {@link Kind#POOL_EXHAUSTED}, {@link Kind#INVALID_ARGUMENT} (a range outside its
     *                        guest, or {@code dst} another engine's), {@link Kind#DESTROYED} (either guest),
     *                        or {@link Kind#HOST_REFUSED} (that remap)
     */
    public void copy(long srcAddress, Guest dst, long dstAddress, long length) {
        GuestChain.copy(this, srcAddress, dst, dstAddress, length);
    }

    /**
     * Gives the page holding {@code address} a private frame, mapped writable, without changing a byte:
     * what a VMM does for a guest's write that faulted on a merged page, before it lets the vCPU retry the
     * store itself. A page private already keeps its frame; a mapped one is made writable again, in case
     * the host refused that after a merge's compare. Nothing is stored, so no store by anyone else can be
     * lost.
     *
     * @throws DedupException {@link Kind#POOL_EXHAUSTED} (no frame), {@link Kind#HOST_REFUSED} (the remap, or
     *                        making the page writable, was refused), {@link Kind#DESTROYED} or
     *                        {@link Kind#INVALID_ARGUMENT}; nothing changed
     */
    public void breakSharing(long address) {
        writes.breakForFault(address);
    }

    /**
     * A new access path to this guest for one embedder thread: cached translations, lock-free reads
     * ({@link GuestAccess}). The first one costs the guest 8 bytes per page (translation epochs).
     */
    public GuestAccess access() {
        checkAlive();
        return new GuestAccess(this, GuestAccess.DEFAULT_ENTRIES);
    }

    /** Per-guest counters, named as KSM's {@code /proc/PID/ksm_stat}. */
    public GuestCounters counters() {
        long merging = mergingPages.get();
        long zero = zeroPages.get();
        return new GuestCounters(name, domain.name(), pageCount, merging, zero,
                (merging + zero) * Pages.PAGE_SIZE - metadataBytes());
    }

    /** Bytes of heap this guest holds: page table, locks, name, its objects ({@link MetadataSizes#guest}). */
    public long metadataBytes() {
        return MetadataSizes.guest(this);
    }

    /**
     * Frees every frame this guest maps and removes it from the engine. Later calls fail. Idempotent. What
     * is thrown before the host mapping is down leaves the guest live and unchanged; once it is down the
     * destroy goes to its end and then throws the first throwable met ({@link DedupEngine#destroy}).
     *
     * @throws DedupException {@link Kind#HOST_REFUSED} if the host will not take its mapping down: it stays live
     *                        and unchanged, to destroy again (calls it overlapped may have failed as destroyed)
     * @throws OutOfMemoryError with the guest destroyed: the engine's list of live guests (a JDK skip list)
     *                        makes a marker node as it unlinks the entry, which cannot be made any earlier
     * @throws Error          another one a page's release met (a StackOverflowError, say), every other page's
     *                        frame free and that page's free or withheld ({@link MergeDomain#releaseStable})
     */
    public void destroy() {
        engine.destroy(this);
    }

    /**
     * {@link #markDestroyed}, then takes the host mapping down, before the frames are freed; where the host
     * refuses, the guest is live again, as it was, and the refusal is thrown.
     */
    void takeDown() {
        markDestroyed();
        try {
            mapping.unmapAll();
        } catch (RuntimeException | Error e) {
            destroyed = false;      // nothing was freed or unlinked yet
            throw e;
        }
    }

    /**
     * Marks the guest destroyed and waits for every operation in flight on it; its frames stay mapped
     * (the engine's close unmaps the whole pool at once instead of freeing frame by frame).
     */
    void markDestroyed() {
        destroyed = true;
        stripes.awaitAll();
        table.invalidateAll();      // cached translations fail their check and see the guest destroyed
    }

    /** True if the page holds a frame of its own: not merged, not on the zero frame. Caller holds its stripe. */
    boolean isPrivate(int page) {
        return (states[page] & (STABLE | ZERO_MERGED)) == 0 && frames[page] != domain.zeroFrame();
    }

    /**
     * The page is the only mapper of its stable frame, which the caller took out of the stable index: it
     * is the page's own frame again, written in place. Caller holds its stripe.
     */
    void keepSoleFrame(int page) {
        set(page, frames[page], states[page] & ~STABLE);
        mergingPages.decrementAndGet();
    }

    PageStripes stripes() {
        return stripes;
    }

    GuestWrites writes() {
        return writes;
    }

    /**
     * Maps a page onto its new private {@code fresh} frame, writable, before its old frame is released.
     *
     * @throws BreakRefused having freed {@code fresh}, if the host refused
     */
    void mapWritable(int page, int fresh) {
        try {
            mapping.map(page, fresh, true);
        } catch (RuntimeException e) {      // a refusal leaves the mapping as it was; an Error may not: keep the frame
            pool.free(fresh);
            throw new BreakRefused(page, e);
        }
    }

    /**
     * A mapped guest's all-zero private page: its frame's memory goes back in place and the page becomes a
     * hole, mapped as before. Caller holds its stripe.
     */
    void releaseZero(int page) {
        set(page, frames[page], (states[page] & SCAN_HISTORY) | HOLE);
        pool.releaseInPlace(frames[page]);
    }

    /**
     * Drops the page's mapping: it maps the zero frame again, as if never written. The page table changes
     * first (its translation epoch moves), then the frame is dropped. Caller holds its stripe.
     */
    void unmap(int page) {
        int frame = frames[page];
        int state = states[page];
        set(page, domain.zeroFrame(), state & SCAN_HISTORY);
        drop(frame, state);
    }

    /** Drops a mapping of {@code frame} in {@code state} that a page no longer holds ({@link #unmap}, {@link #mapLoaded}). */
    void drop(int frame, int state) {
        if ((state & STABLE) != 0) {
            mergingPages.decrementAndGet();
            engine.releaseStable(domain, frame);
        } else if ((state & ZERO_MERGED) != 0) {
            zeroPages.decrementAndGet();
            engine.zeroPageUnmapped();
        } else if (frame != domain.zeroFrame()) {
            pool.free(frame);
        }
    }

    /** Every change of a page's frame or state goes through the page table ({@link PageTable#set}). */
    void set(int page, int frame, int state) {
        table.set(page, frame, state);
    }

    /** Pages merged, or visited and holding a frame: what KSM counts in {@code pages_volatile}'s total. */
    long trackedPages() {
        return table.trackedPages();
    }

    void checkRange(long address, long length) {
        if (address < 0 || length < 0 || address > sizeBytes() - length) {
            throw new DedupException(Kind.INVALID_ARGUMENT, "guest " + name + ": range [0x" + Long.toHexString(address) + ", +" + length
                    + ") is outside its " + sizeBytes() + " bytes");
        }
        checkAlive();
    }

    void checkAlive() {
        if (destroyed) {
            throw new DedupException(Kind.DESTROYED, "guest " + name + " has been destroyed");
        }
    }

    // ---- the scanner's view: called with the page's stripe held ----

    StampedLock stripeOf(int page) {
        return stripes.of(page);
    }

    int frameAt(int page) {
        return frames[page];
    }

    int stateAt(int page) {
        return states[page];
    }

    void setState(int page, int state) {
        set(page, frames[page], state);
    }

    /** The page table: the scanner's keys and the unstable index's links. */
    PageTable table() {
        return table;
    }

    /**
     * Maps {@code page} to the stable {@code frame}; a refusal, whatever it throws, changes nothing, and
     * nothing after the remap can fail. Returns the frame the page left, for the caller to free once its
     * merge is whole (a free may throw), or -1.
     */
    int mapStable(int page, int frame) {
        mapping.map(page, frame, false);    // first: if the host refuses, nothing has changed
        int own = frames[page];
        set(page, frame, (states[page] & SCAN_HISTORY) | STABLE);
        mergingPages.incrementAndGet();
        return own != frame && own != domain.zeroFrame() ? own : -1;
    }

    /**
     * Maps {@code page} to the stable {@code frame} (a reference already taken for it) in place of
     * whatever it mapped: an image block loaded or found resident. Caller holds the page's stripe, and
     * {@linkplain #drop drops} the mapping left once done (a stable frame's release changes the stable
     * index, so a loader files first). Returns the frame mapped before (high 32 bits) and its state.
     */
    long mapLoaded(int page, int frame) {
        mapping.map(page, frame, false);    // first: if the host refuses, nothing has changed
        long left = (long) frames[page] << 32 | states[page] & 0xFFFF_FFFFL;
        set(page, frame, STABLE);
        mergingPages.incrementAndGet();
        return left;
    }

    /** Marks the page's own frame as stable (it stays mapped). */
    void markStable(int page) {
        set(page, frames[page], (states[page] & SCAN_HISTORY) | STABLE);
        mergingPages.incrementAndGet();
    }

    /** Maps an all-zero page to the zero frame (use_zero_pages); returns its own frame, for the caller to free. */
    int mapZero(int page) {
        int own = frames[page];
        set(page, domain.zeroFrame(), (states[page] & SCAN_HISTORY) | ZERO_MERGED);
        zeroPages.incrementAndGet();
        return own;
    }

    boolean isMapped() {
        return mapped;
    }

    /**
     * Before a merge compares the page: read-only for writers behind the engine's back. Caller holds the
     * stripe. A host that fails to throws {@link Kind#HOST_REFUSED}: nothing changed, no merge.
     */
    boolean writeProtect(int page) {
        try {
            return mapping.writeProtect(page);
        } catch (RuntimeException e) {
            throw hostRefused("write-protect page " + page + " for a compare; it was not merged", e);
        }
    }

    /**
     * After a {@link #writeProtect} that no merge followed. Caller holds the stripe. A host that refuses
     * throws {@link Kind#HOST_REFUSED}: the page stays read-only until a write fault ({@link #breakSharing}).
     */
    void unprotect(int page) {
        try {
            mapping.unprotect(page);
        } catch (RuntimeException e) {
            throw hostRefused("make page " + page + " writable again (read-only until a write faults on it)", e);
        }
    }

    private DedupException hostRefused(String what, RuntimeException e) {
        return new DedupException(Kind.HOST_REFUSED, "guest " + name + ": the host refused to " + what + ": "
                + e.getMessage(), e);
    }

    // ---- writes behind the engine's back ----

    /**
     * Tells the engine that the pages whose bits are set in {@code bitmap} (page {@code p} is bit
     * {@code p % 64} of word {@code p / 64}) were written without it, by a KVM guest on its writable
     * mappings: the scanner rehashes them at their next visit. Bits past the last page are ignored.
     * The scanner asks the guest's {@link PageMapping} itself at every full scan; call this where a
     * write must be seen sooner. Thread safe.
     */
    public void markWritten(long[] bitmap) {
        checkAlive();
        WrittenPages.mark(this, bitmap);
    }

    /** {@link #markWritten} of every page: what a mapped guest without a dirty log gets at every full scan. */
    public void markAllWritten() {
        checkAlive();
        WrittenPages.markAll(this);
    }

    /** Scanner thread, at the start of a full scan: marks what the mapping saw written behind the engine's back. */
    void collectWritten() {
        if (mapped && !destroyed) {
            written.collect();
        }
    }

    /** Marks {@code page} written: the scanner rehashes it. Caller holds its stripe. */
    void markWrittenLocked(int page) {
        set(page, frames[page], (states[page] & ~HOLE) | DIRTY);
    }

    boolean isMerged(int page) {
        return (states[page] & (STABLE | ZERO_MERGED)) != 0;
    }

    @Override
    public String toString() {
        return "guest " + name + " (" + domain.name() + ", " + pageCount + " pages)";
    }
}
