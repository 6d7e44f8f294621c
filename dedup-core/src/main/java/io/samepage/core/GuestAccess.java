package io.samepage.core;

import io.samepage.core.DedupException.Kind;
import io.samepage.hashing.Pages;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;
import java.util.Objects;
import java.util.concurrent.locks.StampedLock;

/**
 * An embedder's zero-copy path into one {@link Guest}'s memory, the way a software MMU reaches guest
 * memory (QEMU's softmmu TLB): a small cache of translations, guest page to the frame holding it, and
 * reads and writes of every width straight on the frame. Get one per thread with {@link Guest#access()}.
 *
 * <pre>{@code
 * GuestAccess memory = guest.access();            // one per embedder thread
 * int word = memory.readInt(0x1000);              // little-endian, any alignment
 * memory.writeLong(0x2008, 42L);                  // first write to a shared page breaks sharing once
 * memory.read(0x3000, buffer, 0, buffer.length);  // bulk, page by page
 * }</pre>
 *
 * <h2>How a read stays right while the scanner merges</h2>
 * Each guest page has a translation epoch ({@link PageTable}): the engine moves it, under the page's
 * lock, before it changes the page's frame or whether the page is shared, dirty or a hole, and only
 * then drops the frame the page leaves. A translation is taken under the page's lock with the epoch
 * of that moment. A read through it takes no lock and copies nothing: it reads the bytes from the
 * frame, then checks that the epoch is unchanged (an acquire fence between, as a seqlock's reader;
 * {@code StampedLock.validate} does the same). If it moved, the bytes may come from a frame freed and
 * reused meanwhile, even by another guest: they are dropped, and the read is done again under the
 * lock with a fresh translation. So a read returns only bytes the page held.
 *
 * <h2>Writes</h2>
 * A writable translation is cached only for a page that is private (its own frame) and dirty. The
 * first write to a shared, zero or never-written page takes the page's lock exclusively, breaks
 * sharing once (as {@link Guest#write} does: a fresh frame with the page's bytes; the last mapper of a
 * stable frame takes it), marks the page dirty and caches the writable translation; nothing is
 * changed if the pool or the host refuses ({@link DedupException}). Later writes take the page's lock
 * stripe <em>shared</em> (one CAS each way, no copy), check the epoch and store: every operation that
 * could change the page (a merge, its compare, a remap, an unmerge, a free) holds that stripe
 * exclusively, so no store can land in a frame that is being merged or was freed. The scanner's
 * rehash of a page clears its dirty bit, which moves the epoch: the next write marks the page dirty
 * again, so the scanner always sees that a page changed, exactly as with {@link Guest#write}.
 * A bulk write that spans pages is one {@link Guest#write}: all or nothing.
 *
 * <h2>Invariants</h2>
 * <ul>
 *   <li>A read returns bytes that the page held at some moment during the read (per page: a bulk read
 *       spanning pages may see one page before and the next after a concurrent write, as
 *       {@link Guest#read} may).</li>
 *   <li>No store goes to a frame the page does not map privately at that moment: never a shared frame,
 *       never the zero frame, never a freed frame.</li>
 *   <li>An epoch only grows (64 bits), so an unchanged epoch means an unchanged translation.</li>
 * </ul>
 * Stores through an access are plain memory stores: another thread's read of the same bytes, through
 * an access or {@link Guest#read}, may see them partly, as with plain memory. Reading a guest whose
 * engine is being closed may throw {@link IllegalStateException} (the frames are unmapped); after the
 * guest is destroyed, every access throws {@link DedupException} of kind {@link Kind#DESTROYED}.
 *
 * <p>Works for software and mapped guests alike (a mapped guest's frames are read and written through
 * the pool's memory, never through its mappings, as {@link Guest} does).
 *
 * <p>Thread safety: single thread. Any number of accesses, one per thread, may use one guest with
 * {@link Guest}'s own methods and the scanner. Rejected alternatives: a notifier callback per cached
 * translation (the engine would have to find and call every accessor on every merge, under the page
 * lock); lock-free writes with epoch-based reclamation (a merge would have to wait for every writer's
 * safe point before its compare, and a store that raced a compare would be lost).
 */
public final class GuestAccess {

    /** Translations cached at most, by default: 1024 pages (4 MiB of guest memory), 24 KiB of cache. */
    static final int DEFAULT_ENTRIES = 1024;

    private static final ValueLayout.OfShort SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong LONG = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final int MASK = Pages.PAGE_SIZE - 1;
    private static final long EMPTY = -1;

    private final Guest guest;
    private final MemorySegment memory;
    private final long[] pageEpochs;
    private final PageStripes stripes;
    /** Per entry: {@code page << 1 | writable}, or {@link #EMPTY}. */
    private final long[] tags;
    /** Per entry: where the page's frame starts in {@link #memory}. */
    private final long[] bases;
    /** Per entry: the page's epoch when the translation was taken. */
    private final long[] epochs;
    private final int mask;
    private final MemorySegment scratch = MemorySegment.ofArray(new long[1]);

    GuestAccess(Guest guest, int entries) {
        this.guest = guest;
        this.memory = guest.writes().pool().memory();
        this.pageEpochs = guest.table().epochs();
        this.stripes = guest.stripes();
        int size = Math.min(entries, Integer.highestOneBit(Math.max(1, guest.pageCount() - 1)) << 1);
        this.tags = new long[size];
        this.bases = new long[size];
        this.epochs = new long[size];
        this.mask = size - 1;
        flush();
    }

    public Guest guest() {
        return guest;
    }

    /** Drops every cached translation (they are checked at each use anyway: this only frees the slots). */
    public void flush() {
        java.util.Arrays.fill(tags, EMPTY);
    }

    public byte readByte(long address) {
        int slot = (int) (address >>> Pages.PAGE_SHIFT) & mask;
        if (tags[slot] >>> 1 == address >>> Pages.PAGE_SHIFT) {
            try {
                byte value = memory.get(ValueLayout.JAVA_BYTE, bases[slot] + (address & MASK));
                if (valid(slot, address)) {
                    return value;
                }
            } catch (IllegalStateException closed) {
                // The engine closed after this page was cached: the slow path says DESTROYED.
            }
        }
        return (byte) slowRead(address, 1);
    }

    /** Little-endian, any alignment. */
    public short readShort(long address) {
        int slot = (int) (address >>> Pages.PAGE_SHIFT) & mask;
        if (tags[slot] >>> 1 == address >>> Pages.PAGE_SHIFT && (address & MASK) <= Pages.PAGE_SIZE - 2) {
            try {
                short value = memory.get(SHORT, bases[slot] + (address & MASK));
                if (valid(slot, address)) {
                    return value;
                }
            } catch (IllegalStateException closed) {
                // The engine closed after this page was cached: the slow path says DESTROYED.
            }
        }
        return (short) slowRead(address, 2);
    }

    /** Little-endian, any alignment. */
    public int readInt(long address) {
        int slot = (int) (address >>> Pages.PAGE_SHIFT) & mask;
        if (tags[slot] >>> 1 == address >>> Pages.PAGE_SHIFT && (address & MASK) <= Pages.PAGE_SIZE - 4) {
            try {
                int value = memory.get(INT, bases[slot] + (address & MASK));
                if (valid(slot, address)) {
                    return value;
                }
            } catch (IllegalStateException closed) {
                // The engine closed after this page was cached: the slow path says DESTROYED.
            }
        }
        return (int) slowRead(address, 4);
    }

    /** Little-endian, any alignment. */
    public long readLong(long address) {
        int slot = (int) (address >>> Pages.PAGE_SHIFT) & mask;
        if (tags[slot] >>> 1 == address >>> Pages.PAGE_SHIFT && (address & MASK) <= Pages.PAGE_SIZE - 8) {
            try {
                long value = memory.get(LONG, bases[slot] + (address & MASK));
                if (valid(slot, address)) {
                    return value;
                }
            } catch (IllegalStateException closed) {
                // The engine closed after this page was cached: the slow path says DESTROYED.
            }
        }
        return slowRead(address, 8);
    }

    public void writeByte(long address, byte value) {
        writeValue(address, 1, value);
    }

    /** Little-endian, any alignment. */
    public void writeShort(long address, short value) {
        writeValue(address, 2, value);
    }

    /** Little-endian, any alignment. */
    public void writeInt(long address, int value) {
        writeValue(address, 4, value);
    }

    /** Little-endian, any alignment. */
    public void writeLong(long address, long value) {
        writeValue(address, 8, value);
    }

    /** Copies {@code length} bytes at {@code address} into {@code dst[offset..]}, page by page. Allocates nothing. */
    public void read(long address, byte[] dst, int offset, int length) {
        Objects.checkFromIndexSize(offset, length, dst.length);
        guest.checkRange(address, length);
        int done = 0;
        while (done < length) {
            long at = address + done;
            int chunk = (int) Math.min(length - done, Pages.PAGE_SIZE - (at & MASK));
            int slot = (int) (at >>> Pages.PAGE_SHIFT) & mask;
            boolean fast = false;
            if (tags[slot] >>> 1 == at >>> Pages.PAGE_SHIFT) {
                MemorySegment.copy(memory, ValueLayout.JAVA_BYTE, bases[slot] + (at & MASK), dst, offset + done, chunk);
                fast = valid(slot, at);
            }
            if (!fast) {
                StampedLock lock = stripes.of((int) (at >>> Pages.PAGE_SHIFT));
                long stamp = lock.readLock();
                try {
                    MemorySegment.copy(memory, ValueLayout.JAVA_BYTE, translate(at, false), dst, offset + done, chunk);
                } finally {
                    lock.unlockRead(stamp);
                }
            }
            done += chunk;
        }
    }

    /** Copies {@code dst.byteSize()} bytes at {@code address} into {@code dst}, page by page. */
    public void read(long address, MemorySegment dst) {
        long length = dst.byteSize();
        guest.checkRange(address, length);
        long done = 0;
        while (done < length) {
            long at = address + done;
            int chunk = (int) Math.min(length - done, Pages.PAGE_SIZE - (at & MASK));
            int slot = (int) (at >>> Pages.PAGE_SHIFT) & mask;
            boolean fast = false;
            if (tags[slot] >>> 1 == at >>> Pages.PAGE_SHIFT) {
                MemorySegment.copy(memory, bases[slot] + (at & MASK), dst, done, chunk);
                fast = valid(slot, at);
            }
            if (!fast) {
                StampedLock lock = stripes.of((int) (at >>> Pages.PAGE_SHIFT));
                long stamp = lock.readLock();
                try {
                    MemorySegment.copy(memory, translate(at, false), dst, done, chunk);
                } finally {
                    lock.unlockRead(stamp);
                }
            }
            done += chunk;
        }
    }

    /** Writes {@code src[offset..offset+length)} at {@code address}; as {@link #write(long, MemorySegment)}. */
    public void write(long address, byte[] src, int offset, int length) {
        Objects.checkFromIndexSize(offset, length, src.length);
        int slot = (int) (address >>> Pages.PAGE_SHIFT) & mask;
        if (length > 0 && (address & MASK) + length <= Pages.PAGE_SIZE
                && tags[slot] == (address >>> Pages.PAGE_SHIFT << 1 | 1)) {
            StampedLock lock = stripes.of((int) (address >>> Pages.PAGE_SHIFT));
            long stamp = lock.readLock();
            try {
                if (PageTable.epoch(pageEpochs, (int) (address >>> Pages.PAGE_SHIFT)) == epochs[slot]) {
                    MemorySegment.copy(src, offset, memory, ValueLayout.JAVA_BYTE, bases[slot] + (address & MASK), length);
                    return;
                }
            } finally {
                lock.unlockRead(stamp);
            }
        }
        write(address, MemorySegment.ofArray(src).asSlice(offset, length));
    }

    /**
     * Writes all of {@code src} at {@code address}. Within one page: through the cached translation
     * (the first time, breaking sharing). Across pages: {@link Guest#write}, all or nothing.
     */
    public void write(long address, MemorySegment src) {
        long length = src.byteSize();
        if (length == 0 || (address & MASK) + length > Pages.PAGE_SIZE || address < 0) {
            guest.write(address, src);
            return;
        }
        int slot = (int) (address >>> Pages.PAGE_SHIFT) & mask;
        if (tags[slot] == (address >>> Pages.PAGE_SHIFT << 1 | 1)) {
            StampedLock lock = stripes.of((int) (address >>> Pages.PAGE_SHIFT));
            long stamp = lock.readLock();
            try {
                if (PageTable.epoch(pageEpochs, (int) (address >>> Pages.PAGE_SHIFT)) == epochs[slot]) {
                    MemorySegment.copy(src, 0, memory, bases[slot] + (address & MASK), length);
                    return;
                }
            } finally {
                lock.unlockRead(stamp);
            }
        }
        guest.checkRange(address, length);
        StampedLock lock = stripes.of((int) (address >>> Pages.PAGE_SHIFT));
        long stamp = lock.writeLock();
        try {
            MemorySegment.copy(src, 0, memory, translate(address, true), length);
        } finally {
            lock.unlockWrite(stamp);
        }
    }

    /** True if the entry's translation still holds: its epoch did not move while the caller read. */
    private boolean valid(int slot, long address) {
        VarHandle.acquireFence();       // the bytes were read before the epoch is
        return PageTable.epoch(pageEpochs, (int) (address >>> Pages.PAGE_SHIFT)) == epochs[slot];
    }

    private long slowRead(long address, int width) {
        guest.checkRange(address, width);
        if ((address & MASK) + width > Pages.PAGE_SIZE) {
            read(address, scratch.asSlice(0, width));
            return width == 2 ? scratch.get(SHORT, 0) : width == 4 ? scratch.get(INT, 0) : scratch.get(LONG, 0);
        }
        StampedLock lock = stripes.of((int) (address >>> Pages.PAGE_SHIFT));
        long stamp = lock.readLock();
        try {
            long at = translate(address, false);
            return switch (width) {
                case 1 -> memory.get(ValueLayout.JAVA_BYTE, at);
                case 2 -> memory.get(SHORT, at);
                case 4 -> memory.get(INT, at);
                default -> memory.get(LONG, at);
            };
        } finally {
            lock.unlockRead(stamp);
        }
    }

    private void writeValue(long address, int width, long value) {
        int slot = (int) (address >>> Pages.PAGE_SHIFT) & mask;
        if (tags[slot] == (address >>> Pages.PAGE_SHIFT << 1 | 1) && (address & MASK) <= Pages.PAGE_SIZE - width) {
            StampedLock lock = stripes.of((int) (address >>> Pages.PAGE_SHIFT));
            long stamp = lock.readLock();
            try {
                if (PageTable.epoch(pageEpochs, (int) (address >>> Pages.PAGE_SHIFT)) == epochs[slot]) {
                    store(bases[slot] + (address & MASK), width, value);
                    return;
                }
            } finally {
                lock.unlockRead(stamp);
            }
        }
        guest.checkRange(address, width);
        if ((address & MASK) + width > Pages.PAGE_SIZE) {
            scratch.set(LONG, 0, value);
            guest.write(address, scratch.asSlice(0, width));
            return;
        }
        StampedLock lock = stripes.of((int) (address >>> Pages.PAGE_SHIFT));
        long stamp = lock.writeLock();
        try {
            store(translate(address, true), width, value);
        } finally {
            lock.unlockWrite(stamp);
        }
    }

    private void store(long at, int width, long value) {
        switch (width) {
            case 1 -> memory.set(ValueLayout.JAVA_BYTE, at, (byte) value);
            case 2 -> memory.set(SHORT, at, (short) value);
            case 4 -> memory.set(INT, at, (int) value);
            default -> memory.set(LONG, at, value);
        }
    }

    /**
     * Caches the translation of the page holding {@code address} and returns where that address is in
     * {@link #memory}. For a write, first makes the page private and dirty. Caller holds the page's
     * stripe: shared for a read, exclusively for a write.
     */
    private long translate(long address, boolean write) {
        guest.checkAlive();
        int page = (int) (address >>> Pages.PAGE_SHIFT);
        if (write) {
            guest.writes().makeWritable(page);
        }
        boolean writable = guest.isPrivate(page) && (guest.stateAt(page) & PageTable.DIRTY) != 0;
        int slot = page & mask;
        long base = FramePool.offsetOf(guest.frameAt(page));
        tags[slot] = (long) page << 1 | (writable ? 1 : 0);
        bases[slot] = base;
        epochs[slot] = PageTable.epoch(pageEpochs, page);
        return base + (address & MASK);
    }
}
