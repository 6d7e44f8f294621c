package io.samepage.core;

import io.samepage.core.DedupException.Kind;
import io.samepage.hashing.Pages;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.Objects;

/**
 * Guests of one engine laid end to end as one address space (guest {@code i}'s bytes follow guest
 * {@code i - 1}'s), over which a write, a fill or a copy is all or nothing, as a write within one guest
 * is ({@link Guest#write}): under the stripes of every page it touches, in every guest it touches, it
 * counts the frames the whole operation needs and reserves them at once, or refuses with nothing
 * changed ({@link Kind#POOL_EXHAUSTED}); then it writes guest by guest out of that one reservation. A
 * copy holds the stripes of its source too and moves the bytes at most a page at a time, frame to
 * frame, backwards where the ranges overlap so. A linear memory grown a guest at a time (a WebAssembly
 * memory) is such a chain, and sends it its bulk operations: so an operation keeps no lock stamps and no
 * copy buffer on the heap (the stripes are found again from the range to release them, and a copy reads
 * the source frame itself). {@link Guest#copy} is a copy over the chain of its one or two guests.
 *
 * <p>As within one guest, a mapped guest's page whose copy-on-write remap the host refuses stops the
 * operation at that page ({@link Kind#HOST_REFUSED}); what came before it was written.
 *
 * <p>Thread safety: as {@link Guest}'s writers. The stripes are taken guest by guest in the order the
 * engine created the guests, each guest's in ascending order, so two chains (or a chain and a one-guest
 * write) never wait for each other in a cycle; the scanner takes a second stripe only by trying.
 */
public final class GuestChain {

    private static final int IN_PAGE = Pages.PAGE_SIZE - 1;
    /** No second range to lock: {@link #lock} of a write or a fill. */
    private static final long NONE = -1;

    private final Guest[] guests;
    /** {@code starts[i]}: the first byte of guest {@code i}; {@code starts[guests.length]} is the end. */
    private final long[] starts;
    /** Indexes of {@link #guests} in the order their stripes are taken: the engine's creation order. */
    private final int[] lockOrder;
    private final FramePool pool;

    /**
     * The chain of {@code guests}, in address order.
     *
     * @throws IllegalArgumentException if there is none, one is there twice or holds no bytes, or they are not all one engine's
     */
    public GuestChain(Guest... guests) {
        if (guests.length == 0) {
            throw new IllegalArgumentException("a chain of no guests");
        }
        this.guests = guests.clone();
        this.starts = new long[guests.length + 1];
        for (int i = 0; i < guests.length; i++) {
            if (guests[i].sizeBytes() == 0) {
                throw new IllegalArgumentException(guests[i] + " holds no bytes");
            }
            if (guests[i].engine() != guests[0].engine()) {
                throw new IllegalArgumentException(guests[i] + " is not of the engine of " + guests[0]);
            }
            for (int j = 0; j < i; j++) {
                if (guests[j] == guests[i]) {
                    throw new IllegalArgumentException(guests[i] + " is in the chain twice");
                }
            }
            starts[i + 1] = starts[i] + guests[i].sizeBytes();
        }
        this.lockOrder = lockOrder(this.guests);
        this.pool = guests[0].engine().pool();
    }

    /**
     * {@link Guest#copy}: the chain of {@code src} alone, or of {@code src} then {@code dst}, copies
     * {@code [srcAddress, +length)} of {@code src} to {@code dstAddress} of {@code dst}, its refusals
     * named in the guests' addresses.
     */
    static void copy(Guest src, long srcAddress, Guest dst, long dstAddress, long length) {
        if (dst.engine() != src.engine()) {
            throw new DedupException(Kind.INVALID_ARGUMENT, "guest " + dst.name() + " belongs to another engine than guest "
                    + src.name() + ": a copy goes between guests of one engine's pool; nothing was copied");
        }
        src.checkRange(srcAddress, length);
        dst.checkRange(dstAddress, length);
        GuestChain chain = dst == src ? new GuestChain(src) : new GuestChain(src, dst);
        long dest = dst == src ? dstAddress : src.sizeBytes() + dstAddress;
        int refused = chain.tryCopy(dest, srcAddress, length);
        if (refused > 0) {
            throw new DedupException(Kind.POOL_EXHAUSTED, "host frame pool exhausted: guest " + dst.name() + " needs "
                    + refused + " free frames to copy " + length + " bytes from guest " + src.name() + " at 0x"
                    + Long.toHexString(srcAddress) + " to 0x" + Long.toHexString(dstAddress) + ", "
                    + chain.pool.framesAvailable() + " are free; nothing was written");
        }
    }

    /** Indexes of {@code guests} in the engine's creation order: an insertion sort, as a chain has few guests. */
    private static int[] lockOrder(Guest[] guests) {
        int[] order = new int[guests.length];
        for (int i = 0; i < guests.length; i++) {
            int at = i;
            while (at > 0 && guests[order[at - 1]].creation() > guests[i].creation()) {
                order[at] = order[at - 1];
                at--;
            }
            order[at] = i;
        }
        return order;
    }

    /** The bytes of all the guests. */
    public long sizeBytes() {
        return starts[guests.length];
    }

    /** Writes {@code src[offset..offset+length)} at {@code address}: all or nothing. */
    public void write(long address, byte[] src, int offset, int length) {
        Objects.checkFromIndexSize(offset, length, src.length);
        mutate(address, length, MemorySegment.ofArray(src), offset, (byte) 0);
    }

    /** Sets {@code length} bytes at {@code address} to {@code value}: all or nothing. Whole pages of 0 give their frames back. */
    public void fill(long address, long length, byte value) {
        mutate(address, length, null, 0, value);
    }

    /**
     * Copies {@code length} bytes from {@code src} to {@code dest}, overlapping ranges as if through a
     * buffer: all or nothing.
     */
    public void copy(long dest, long src, long length) {
        checkRange(dest, length);
        checkRange(src, length);
        int refused = tryCopy(dest, src, length);
        if (refused > 0) {
            throw exhausted(refused, "copy " + length + " bytes from 0x" + Long.toHexString(src) + " to 0x"
                    + Long.toHexString(dest));
        }
    }

    /**
     * {@link #copy}, both ranges in the chain: done, or refused by the pool with nothing changed.
     *
     * @return 0 if copied; else the frames it needs, more than the pool had free
     */
    private int tryCopy(long dest, long src, long length) {
        if (length == 0 || dest == src) {
            return 0;   // nothing moves: no sharing to break, no frame to take
        }
        lock(dest, src, length);
        try {
            checkAlive(dest, length);
            checkAlive(src, length);
            int needed = framesNeeded(dest, length, false);
            if (!pool.tryReserve(needed)) {
                return needed;
            }
            try (WriteReservation frames = WriteReservation.of(pool, needed)) {
                move(dest, src, length, frames);
            }
            return 0;
        } finally {
            unlock(dest, src, length);
        }
    }

    private void mutate(long address, long length, MemorySegment src, long srcOffset, byte value) {
        checkRange(address, length);
        if (length == 0) {
            return;
        }
        int g = guestOf(address);
        if (address + length <= starts[g + 1]) {      // within one guest: its own write, all or nothing
            guests[g].writes().mutate(address - starts[g], length, src, srcOffset, value);
            return;
        }
        lock(address, NONE, length);
        try {
            checkAlive(address, length);
            int needed = framesNeeded(address, length, src == null && value == 0);
            if (!pool.tryReserve(needed)) {
                throw exhausted(needed, (src == null ? "fill " : "write ") + length + " bytes at 0x" + Long.toHexString(address));
            }
            try (WriteReservation frames = WriteReservation.of(pool, needed)) {
                for (int i = g; i < guests.length && starts[i] < address + length; i++) {
                    long from = Math.max(address, starts[i]);
                    long to = Math.min(address + length, starts[i + 1]);
                    guests[i].writes().writeLocked(firstPage(i, address, length), lastPage(i, address, length),
                            from - starts[i], to - from, src, srcOffset + from - address, value, frames);
                }
            }
        } finally {
            unlock(address, NONE, length);
        }
    }

    /** Frames a write ({@code zeros}: a fill with 0) of {@code [address, address + length)} needs. Stripes held. */
    private int framesNeeded(long address, long length, boolean zeros) {
        int needed = 0;
        for (int i = guestOf(address); i < guests.length && starts[i] < address + length; i++) {
            long from = Math.max(address, starts[i]);
            long to = Math.min(address + length, starts[i + 1]);
            needed += guests[i].writes().framesNeeded(firstPage(i, address, length), lastPage(i, address, length),
                    from - starts[i], to - from, zeros);
        }
        return needed;
    }

    /** The refusal of an operation ({@code what}) that needs {@code needed} frames more than are free. */
    private DedupException exhausted(int needed, String what) {
        return new DedupException(Kind.POOL_EXHAUSTED, "host frame pool exhausted: " + this + " needs " + needed
                + " free frames to " + what + ", " + pool.framesAvailable() + " are free; nothing was written");
    }

    /**
     * The copy itself, stripes held and frames reserved: piece by piece, each within one page of the
     * source and one of the destination, written from the source page's current frame. No buffer is
     * needed: a destination page that breaks sharing gets its new frame filled before its old frame is
     * dropped ({@link GuestWrites}), so the source frame is whole when read even where it is that old
     * frame, and a private page is written in place with {@link MemorySegment#copy}, which copies
     * overlapping bytes as if through a buffer.
     */
    private void move(long dest, long src, long length, WriteReservation frames) {
        boolean backward = dest > src && dest < src + length;
        long done = 0;
        while (done < length) {
            long at;
            int size;
            if (backward) {
                long end = length - done;
                size = (int) Math.min(end, Math.min(((dest + end - 1) & IN_PAGE) + 1, ((src + end - 1) & IN_PAGE) + 1));
                at = end - size;
            } else {
                at = done;
                size = (int) Math.min(length - done,
                        Math.min(Pages.PAGE_SIZE - ((dest + at) & IN_PAGE), Pages.PAGE_SIZE - ((src + at) & IN_PAGE)));
            }
            int s = guestOf(src + at);
            long from = src + at - starts[s];
            int frame = guests[s].frameAt((int) (from >>> Pages.PAGE_SHIFT));
            int d = guestOf(dest + at);
            long to = dest + at - starts[d];
            int page = (int) (to >>> Pages.PAGE_SHIFT);
            guests[d].writes().writeLocked(page, page, to, size, pool.memory(), FramePool.offsetOf(frame) + (from & IN_PAGE),
                    (byte) 0, frames);
            done += size;
        }
    }

    /** The first page of guest {@code i} that {@code [address, address + length)} (not empty) covers; 0 if none. */
    private int firstPage(int i, long address, long length) {
        if (!covers(i, address, length)) {
            return 0;
        }
        return (int) ((Math.max(address, starts[i]) - starts[i]) >>> Pages.PAGE_SHIFT);
    }

    /** The last page of guest {@code i} that {@code [address, address + length)} (not empty) covers; -1 if none. */
    private int lastPage(int i, long address, long length) {
        if (!covers(i, address, length)) {
            return -1;
        }
        return (int) ((Math.min(address + length, starts[i + 1]) - 1 - starts[i]) >>> Pages.PAGE_SHIFT);
    }

    private boolean covers(int i, long address, long length) {
        return address < starts[i + 1] && address + length > starts[i];
    }

    /**
     * Write-locks the stripes of the pages {@code [address, address + length)} covers and of those
     * {@code [other, other + length)} covers ({@link #NONE}: none) in each guest they touch, in lock order;
     * a guest's two ranges are locked together, their stripes once. {@link #unlock} with the same
     * arguments releases them.
     */
    private void lock(long address, long other, long length) {
        for (int i : lockOrder) {
            int last = lastPage(i, address, length);
            int otherLast = other == NONE ? -1 : lastPage(i, other, length);
            if (last >= 0 || otherLast >= 0) {
                guests[i].stripes().lockRanges(firstPage(i, address, length), last,
                        other == NONE ? 0 : firstPage(i, other, length), otherLast);
            }
        }
    }

    private void unlock(long address, long other, long length) {
        for (int k = lockOrder.length - 1; k >= 0; k--) {
            int i = lockOrder[k];
            int last = lastPage(i, address, length);
            int otherLast = other == NONE ? -1 : lastPage(i, other, length);
            if (last >= 0 || otherLast >= 0) {
                guests[i].stripes().unlockRanges(firstPage(i, address, length), last,
                        other == NONE ? 0 : firstPage(i, other, length), otherLast);
            }
        }
    }

    /** Checks that every guest {@code [address, address + length)} touches is alive. */
    private void checkAlive(long address, long length) {
        for (int i = guestOf(address); i < guests.length && starts[i] < address + length; i++) {
            guests[i].checkAlive();
        }
    }

    /** The guest holding {@code address} (in range). */
    private int guestOf(long address) {
        int i = Arrays.binarySearch(starts, address);
        return i >= 0 ? i : -i - 2;
    }

    private void checkRange(long address, long length) {
        if (address < 0 || length < 0 || address > sizeBytes() - length) {
            throw new DedupException(Kind.INVALID_ARGUMENT, this + ": range [0x" + Long.toHexString(address) + ", +"
                    + length + ") is outside its " + sizeBytes() + " bytes");
        }
    }

    @Override
    public String toString() {
        StringBuilder names = new StringBuilder("the chain of guests ");
        for (int i = 0; i < guests.length; i++) {
            names.append(i == 0 ? "" : ", ").append(guests[i].name());
        }
        return names.toString();
    }
}
