package io.samepage.core;

import io.samepage.core.DedupException.Kind;
import io.samepage.hashing.Pages;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.concurrent.locks.StampedLock;

/**
 * How a write or a fill changes a {@link Guest}'s pages. Under the stripes of the whole range it counts
 * the frames the write needs (a page that is shared, zero-merged or never written needs one; a whole
 * page filled with zeros gives one back), reserves them all at once or refuses the whole write, then
 * writes each page: a private one in place; one that is shared breaks sharing (copy-on-write: a fresh
 * frame gets the page's bytes and then the new ones, is mapped writable, then the old one is dropped;
 * the last mapper of a stable frame writes it in place instead). A write changes nothing if the pool
 * refuses; a mapped guest's multi-page write whose remap the host refuses stops at that page, as
 * {@link DedupException} says, and so does a write whose source segment throws part way (its arena
 * closed by another thread), with the source's exception: a page that was breaking keeps its old frame.
 * Either way the frames reserved and not taken go back to the pool, no more ({@link WriteReservation}).
 *
 * <p>Thread safety: as {@link Guest}'s writers; it takes the stripes itself.
 */
final class GuestWrites {

    /** Frames a large write takes ahead at a time: 16 MiB, bounding how long the free lists' lock is held for it. */
    static final int POPULATE_CHUNK_FRAMES = 4096;

    private final DedupEngine engine;
    private final Guest guest;
    private final FramePool pool;
    private final MergeDomain domain;

    GuestWrites(DedupEngine engine, Guest guest) {
        this.engine = engine;
        this.guest = guest;
        this.pool = engine.pool();
        this.domain = guest.domain();
    }

    FramePool pool() {
        return pool;
    }

    /**
     * Writes {@code src} (or fills with {@code value} where {@code src} is null) at {@code address}: all or
     * nothing. A source this thread cannot read (its arena closed, or confined to another thread) is
     * refused before anything is locked or written; one closed by another thread during the write stops
     * it at that page with the segment's own exception, that page as it was.
     *
     * @throws DedupException {@link Kind#INVALID_ARGUMENT} for a source this thread cannot read
     */
    void mutate(long address, long length, MemorySegment src, byte value) {
        if (src != null && (!src.scope().isAlive() || !src.isAccessibleBy(Thread.currentThread()))) {
            throw new DedupException(Kind.INVALID_ARGUMENT, "guest " + guest.name() + ": the source of a write of "
                    + src.byteSize() + " bytes at 0x" + Long.toHexString(address) + " cannot be read by this thread ("
                    + (src.scope().isAlive() ? "its arena is confined to another thread" : "its arena is closed")
                    + "); nothing was written");
        }
        mutate(address, length, src, 0, value);
    }

    /** Like {@link #mutate(long, long, MemorySegment, byte)}, the bytes from {@code srcOffset} of {@code src}. */
    void mutate(long address, long length, MemorySegment src, long srcOffset, byte value) {
        guest.checkRange(address, length);
        if (length == 0) {
            return;
        }
        int first = (int) (address >>> Pages.PAGE_SHIFT);
        int last = (int) ((address + length - 1) >>> Pages.PAGE_SHIFT);
        if (first == last) {
            StampedLock lock = guest.stripeOf(first);
            long stamp = lock.writeLock();
            try {
                mutateLocked(first, last, address, length, src, srcOffset, value);
            } finally {
                lock.unlockWrite(stamp);
            }
            return;
        }
        guest.stripes().lockRange(first, last);
        try {
            mutateLocked(first, last, address, length, src, srcOffset, value);
        } finally {
            guest.stripes().unlockRange(first, last);
        }
    }

    private void mutateLocked(int first, int last, long address, long length, MemorySegment src, long srcOffset, byte value) {
        guest.checkAlive();
        int needed = framesNeeded(first, last, address, length, src == null && value == 0);
        if (!pool.tryReserve(needed)) {
            throw new DedupException(Kind.POOL_EXHAUSTED, "host frame pool exhausted: guest " + guest.name() + " needs " + needed
                    + " free frames to write " + length + " bytes at 0x" + Long.toHexString(address) + ", "
                    + pool.framesAvailable() + " are free; nothing was written");
        }
        try (WriteReservation frames = WriteReservation.of(pool, needed)) {
            writeLocked(first, last, address, length, src, srcOffset, value, frames);
        }
    }

    /**
     * Frames a write ({@code zeros}: a fill with 0) of {@code [address, address + length)}, on pages
     * {@code first..last}, needs. Caller holds their stripes.
     */
    int framesNeeded(int first, int last, long address, long length, boolean zeros) {
        int needed = 0;
        for (int page = first; page <= last; page++) {
            if (needsFrame(page, address, length, zeros)) {
                needed++;
            }
        }
        return needed;
    }

    /**
     * Writes {@code src} from {@code srcOffset} (or fills with {@code value} where {@code src} is null) at
     * {@code [address, address + length)}, pages {@code first..last}, taking the frames it needs from
     * {@code frames}. Caller holds their stripes and reserved the frames ({@link #framesNeeded}).
     *
     * @throws DedupException {@link Kind#HOST_REFUSED} if the host refused a mapped page's remap: the pages
     *                        before it were written
     */
    void writeLocked(int first, int last, long address, long length, MemorySegment src, long srcOffset, byte value,
                     WriteReservation frames) {
        try {
            for (int page = first; page <= last; page++) {
                long pageStart = (long) page << Pages.PAGE_SHIFT;
                long from = Math.max(address, pageStart);
                long to = Math.min(address + length, pageStart + Pages.PAGE_SIZE);
                writePage(page, (int) (from - pageStart), (int) (to - from), src, srcOffset + from - address, value, frames);
            }
        } catch (BreakRefused refused) {
            // The frame the refused page took went back to the pool; the reservation counted it as taken.
            throw new DedupException(Kind.HOST_REFUSED, "guest " + guest.name() + ": the host refused to remap page " + refused.page
                    + " for a copy-on-write break; that page and the rest of the write at 0x"
                    + Long.toHexString(address) + " were not written: " + refused.getCause().getMessage(),
                    refused.getCause());
        }
    }

    /**
     * Makes a page private and dirty for a write through an {@link GuestAccess}, which the caller then
     * stores itself. Caller holds the page's stripe exclusively. All or nothing.
     *
     * @throws DedupException {@link Kind#POOL_EXHAUSTED}, {@link Kind#HOST_REFUSED} or
     *                        {@link Kind#DESTROYED}; nothing changed
     */
    void makeWritable(int page) {
        guest.checkAlive();
        if (!guest.isPrivate(page) && !keepsSoleFrame(page)) {
            if (!pool.tryReserve(1)) {
                throw new DedupException(Kind.POOL_EXHAUSTED, "host frame pool exhausted: guest " + guest.name()
                        + " needs a free frame to break sharing of page " + page + " for a write; none is free");
            }
            int old = guest.frameAt(page);
            // Taking the frame spends the reservation at once: nothing thrown after can leave it reserved.
            int fresh = old != domain.zeroFrame() ? pool.allocateReservedForOverwrite() : pool.allocateReserved();
            if (old != domain.zeroFrame()) {
                copyFrame(old, fresh);
            }
            try {
                breakOnto(page, fresh);
            } catch (BreakRefused refused) {    // the frame it took went back to the pool
                throw new DedupException(Kind.HOST_REFUSED, "guest " + guest.name() + ": the host refused to remap page "
                        + page + " for a copy-on-write break; nothing was written: " + refused.getCause().getMessage(),
                        refused.getCause());
            }
        }
        guest.set(page, guest.frameAt(page), (guest.stateAt(page) & ~PageTable.HOLE) | PageTable.DIRTY);
    }

    /** {@link Guest#breakSharing}: a write fault's break, under the page's stripe. */
    void breakForFault(long address) {
        guest.checkRange(address, 1);
        int page = (int) (address >>> Pages.PAGE_SHIFT);
        StampedLock lock = guest.stripeOf(page);
        long stamp = lock.writeLock();
        try {
            guest.checkAlive();
            if (guest.isPrivate(page)) {
                if (guest.isMapped()) {
                    guest.unprotect(page);  // a fault on a private page: the host refused this after a compare
                }
                return;
            }
            if (!pool.tryReserve(1)) {
                throw new DedupException(Kind.POOL_EXHAUSTED, "host frame pool exhausted: guest " + guest.name()
                        + " needs a free frame to break sharing of page " + page + "; none is free");
            }
            unmerge(page);
        } finally {
            lock.unlockWrite(stamp);
        }
    }

    /**
     * {@code run=2}'s unmerge without a frame: the last mapper of a software guest's stable frame takes
     * the frame back as its own, dirty, as a write's break does ({@link #keepsSoleFrame}). A mapped
     * guest's page always copies. Caller holds the page's stripe.
     *
     * @return true if the page is private now; false if it needs {@link #unmerge} and a frame
     */
    boolean unmergeInPlace(int page) {
        if (!keepsSoleFrame(page)) {
            return false;
        }
        guest.set(page, guest.frameAt(page), guest.stateAt(page) | PageTable.DIRTY);
        return true;
    }

    /**
     * The break of {@code run=2} and {@link Guest#breakSharing}: gives a merged page (stable, zero-merged,
     * or a never-written page on the zero frame) a private copy again, dirty. Unlike a write's break it
     * always takes a fresh frame: the one of the reservation the caller holds for it, with its stripe.
     *
     * @throws DedupException ({@link Kind#HOST_REFUSED}) if the host refused the remap; the page is
     *                        still merged and the frame went back to the pool
     */
    void unmerge(int page) {
        int old = guest.frameAt(page);
        boolean copyOld = old != domain.zeroFrame();
        int fresh = copyOld ? pool.allocateReservedForOverwrite() : pool.allocateReserved();
        if (copyOld) {
            MemorySegment.copy(pool.memory(), FramePool.offsetOf(old), pool.memory(), FramePool.offsetOf(fresh),
                    Pages.PAGE_SIZE);
        }
        try {
            guest.mapWritable(page, fresh);
        } catch (BreakRefused refused) {
            throw new DedupException(Kind.HOST_REFUSED, "guest " + guest.name() + ": the host refused to remap page "
                    + page + " to unmerge it; it stays merged: " + refused.getCause().getMessage(), refused.getCause());
        }
        moveOnto(page, fresh, PageTable.DIRTY);
    }

    /**
     * If the page is a software guest's and the last mapper of its stable frame, makes that frame its own
     * again (out of the stable index), to be written in place. A mapped page always copies: writing the
     * frame in place would need a remap too, and one that could fail after the frame left the stable
     * index. Caller holds the page's stripe.
     *
     * @return true if the page is private now; false if it needs a frame of its own
     */
    private boolean keepsSoleFrame(int page) {
        if (!guest.isMapped() && (guest.stateAt(page) & PageTable.STABLE) != 0
                && engine.takeSoleMapping(domain, guest.frameAt(page))) {
            guest.keepSoleFrame(page);
            return true;
        }
        return false;
    }

    /**
     * Moves a page that is not private onto {@code fresh}, a frame the caller took for it and filled:
     * maps it writable, then {@linkplain #moveOnto points the page at it} and drops the old frame. Caller
     * holds the page's stripe.
     *
     * @throws BreakRefused having given {@code fresh} back, if the host refused the remap; nothing changed
     */
    private void breakOnto(int page, int fresh) {
        guest.mapWritable(page, fresh);
        moveOnto(page, fresh, 0);
    }

    /**
     * Points {@code page} at {@code fresh}, its own frame now, already mapped by the host, with the scan
     * history of its state and {@code bits}; then drops the frame it held ({@link Guest#drop}). In that
     * order, so that whatever the drop throws (it frees the old frame where this was its last mapping),
     * the page reads {@code fresh}'s bytes: dropped first, as {@link Guest#unmap} drops, the page was on
     * the zero frame when the drop threw, read zeros, and {@code fresh}, mapped by the host, was lost.
     * The page's translation epoch still moves before its old frame is dropped ({@link Guest#set}).
     */
    private void moveOnto(int page, int fresh, int bits) {
        int old = guest.frameAt(page);
        int state = guest.stateAt(page);
        guest.set(page, fresh, (state & PageTable.SCAN_HISTORY) | bits);
        guest.drop(old, state);
    }

    private void copyFrame(int from, int to) {
        MemorySegment.copy(pool.memory(), FramePool.offsetOf(from), pool.memory(), FramePool.offsetOf(to), Pages.PAGE_SIZE);
    }

    private boolean needsFrame(int page, long address, long length, boolean zeros) {
        if (zeros && coversPage(page, address, length) && (!guest.isMapped() || guest.isPrivate(page))) {
            return false;
        }
        return !guest.isPrivate(page);
    }

    private static boolean coversPage(int page, long address, long length) {
        long pageStart = (long) page << Pages.PAGE_SHIFT;
        return address <= pageStart && address + length >= pageStart + Pages.PAGE_SIZE;
    }

    /**
     * Writes one page's part of a mutation; the caller holds the page's stripe and the frames' reservation.
     * A private page is written in place. A page that needs a frame of its own (copy-on-write) gets it
     * filled, its old bytes and then the new ones, before the frame is mapped: a source that throws leaves
     * the page on its old frame, as it was, never on a frame of unspecified bytes; and a source in the
     * pool (a {@link GuestChain} copy, even from this page's own frame) is read before that frame is dropped.
     *
     * @throws BreakRefused having given the frame back, if the host refused the remap; the page unchanged
     */
    private void writePage(int page, int inPage, int length, MemorySegment src, long srcOffset, byte value,
            WriteReservation frames) {
        if (src == null && value == 0 && length == Pages.PAGE_SIZE && (!guest.isMapped() || guest.isPrivate(page))) {
            if (guest.isMapped()) {
                guest.releaseZero(page);
            } else {
                guest.unmap(page);
            }
            return;
        }
        if (guest.isPrivate(page) || keepsSoleFrame(page)) {
            markDirty(page);
            put(guest.frameAt(page), inPage, length, src, srcOffset, value);
            return;
        }
        int old = guest.frameAt(page);
        boolean whole = length == Pages.PAGE_SIZE;
        boolean copyOld = !whole && old != domain.zeroFrame();
        int fresh = frames.take(!whole && !copyOld);
        if (copyOld) {
            copyFrame(old, fresh);
        }
        try {
            put(fresh, inPage, length, src, srcOffset, value);
        } catch (RuntimeException | Error e) {
            pool.free(fresh);       // never mapped: the page keeps its old frame
            throw e;
        }
        breakOnto(page, fresh);
        markDirty(page);
    }

    private void markDirty(int page) {
        guest.set(page, guest.frameAt(page), (guest.stateAt(page) & ~PageTable.HOLE) | PageTable.DIRTY);
    }

    /** Writes {@code src} from {@code srcOffset} (or {@code value} where it is null) at {@code inPage} of {@code frame}. */
    private void put(int frame, int inPage, int length, MemorySegment src, long srcOffset, byte value) {
        long at = FramePool.offsetOf(frame) + inPage;
        if (src != null) {
            MemorySegment.copy(src, srcOffset, pool.memory(), at, length);
        } else {
            fill(pool.memory(), at, length, value);
        }
    }

    /**
     * Sets {@code length} bytes (at least one) at {@code at} of the pool's {@code memory} to {@code value},
     * allocating nothing: zeros are copied from the zero frame a page at a time; another value is set in one
     * byte, then copied within the range, each copy doubling what is set. Not a slice's {@code fill}: the
     * slice is an object, and a multi-page write is all or nothing only where nothing between its first
     * page and its last can throw, an {@link OutOfMemoryError} included.
     */
    static void fill(MemorySegment memory, long at, long length, byte value) {
        if (value == 0) {
            for (long done = 0; done < length; done += Pages.PAGE_SIZE) {
                MemorySegment.copy(memory, FramePool.offsetOf(FramePool.ZERO_FRAME), memory, at + done,
                        Math.min(Pages.PAGE_SIZE, length - done));
            }
            return;
        }
        memory.set(ValueLayout.JAVA_BYTE, at, value);
        for (long done = 1; done < length; ) {
            long part = Math.min(done, length - done);
            MemorySegment.copy(memory, at, memory, at + done, part);
            done += part;
        }
    }
}
