package io.samepage.wasm;

import io.samepage.core.DedupEngine;
import io.samepage.core.DedupException;
import io.samepage.core.DedupException.Kind;
import io.samepage.core.Guest;
import io.samepage.core.GuestChain;
import io.samepage.core.MergeDomain;
import io.samepage.core.PageInstaller;
import io.samepage.hashing.Pages;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;

/**
 * A linear memory held by engine guests: one guest per chunk of address space, created as the memory
 * grows (each new chunk at least doubles what is reserved, up to the memory's maximum), so a memory
 * whose maximum is 4 GiB costs page-table entries only for what it has grown to. Never-written pages map
 * the domain's zero frame and cost no frame. A bulk write, fill or copy goes to the chunks as one
 * {@link GuestChain}: all or nothing across them.
 *
 * <p>A grow that fails part way leaves the chunks as they were and no guest of its own in the engine: the
 * guest it made is destroyed before the failure propagates. Where that destroy fails too (the heap stays
 * full: a destroy allocates), the guest is kept aside, no chunk, and destroyed at the next grow or close;
 * {@link #guests()} lists it last meanwhile, so that it is never the engine's alone.
 *
 * <p>Not thread safe: confined to its memory's thread (the guests themselves are safe for the scanner).
 */
final class GuestPages implements LinearPages {

    private final DedupEngine engine;
    private final MergeDomain domain;
    private final String name;
    private final long maximumBytes;
    private Guest[] chunks = new Guest[0];
    /** {@code starts[i]}: the first byte of chunk {@code i}; {@code starts[chunks.length]} is the end. */
    private long[] starts = {0};
    private int last;
    /** Set at {@link #close}: no guest is made after it. Volatile: the {@code Cleaner}'s thread may close. */
    private volatile boolean closed;
    /** The chunks as one address space, for bulk writes, fills and copies that are all or nothing across them. */
    private GuestChain chain;
    /** The guest a failed grow made and could not destroy; null if none. Destroyed at the next grow or close. */
    private Guest leftover;
    /** The next pages a {@link SamepageMemoryFactory} keeps to close again, after a close that threw; null if none. */
    GuestPages nextUnclosed;

    GuestPages(DedupEngine engine, MergeDomain domain, String name, long maximumBytes) {
        this.engine = engine;
        this.domain = domain;
        this.name = name;
        this.maximumBytes = maximumBytes;
    }

    /** The guests holding this memory, in address order, and last the {@link #leftover} if any (for tests and the bench). */
    Guest[] guests() {
        if (leftover == null) {
            return chunks.clone();
        }
        Guest[] held = Arrays.copyOf(chunks, chunks.length + 1);
        held[chunks.length] = leftover;
        return held;
    }

    @Override
    public void reserve(long bytes) {
        if (closed) {
            throw new DedupException(Kind.DESTROYED, "wasm memory " + name + " is closed: it cannot grow");
        }
        long reserved = starts[chunks.length];
        if (bytes <= reserved) {
            return;
        }
        long size = Math.min(Math.max(bytes - reserved, reserved), maximumBytes - reserved);
        size = Math.max(size, bytes - reserved);
        if (leftover != null) {
            leftover.destroy();     // throws, with nothing changed, while the heap is still full
            leftover = null;
        }
        // What may throw comes before the fields change: a grow that fails leaves the chunks as they were.
        Guest[] grown = Arrays.copyOf(chunks, chunks.length + 1);
        long[] grownStarts = Arrays.copyOf(starts, starts.length + 1);
        grownStarts[grown.length] = reserved + size;
        Guest guest = engine.createGuest(domain, name + "#" + chunks.length, size);
        grown[chunks.length] = guest;
        GuestChain grownChain;
        try {
            grownChain = new GuestChain(grown);
        } catch (RuntimeException | Error e) {
            destroyAfter(guest, e);     // no chunk holds it: nothing else would
            throw e;
        }
        chunks = grown;
        starts = grownStarts;
        chain = grownChain;
    }

    /**
     * Destroys {@code guest}, which {@code failure} kept from becoming a chunk; what that throws is suppressed
     * in it, and the guest kept as the {@link #leftover}.
     */
    private void destroyAfter(Guest guest, Throwable failure) {
        try {
            guest.destroy();
        } catch (RuntimeException | Error e) {
            leftover = guest;           // first: suppressing may run out of heap too
            if (e != failure) {        // one preallocated OutOfMemoryError may be both
                failure.addSuppressed(e);
            }
        }
    }

    /** The chunk holding {@code address}. */
    private int chunkOf(long address) {
        if (address >= starts[last] && address < starts[last + 1]) {
            return last;
        }
        for (int i = 0; i < chunks.length; i++) {
            if (address < starts[i + 1]) {
                last = i;
                return i;
            }
        }
        throw new IllegalStateException(name + ": address 0x" + Long.toHexString(address) + " is past the reserved "
                + starts[chunks.length] + " bytes");
    }

    @Override
    public void readPage(int page, byte[] dst) {
        long address = (long) page << Pages.PAGE_SHIFT;
        int c = chunkOf(address);
        chunks[c].read(address - starts[c], dst, 0, Pages.PAGE_SIZE);
    }

    @Override
    public void writePage(int page, byte[] src) {
        long address = (long) page << Pages.PAGE_SHIFT;
        int c = chunkOf(address);
        chunks[c].write(address - starts[c], src, 0, Pages.PAGE_SIZE);
    }

    @Override
    public void read(long address, byte[] dst, int offset, int length) {
        while (length > 0) {
            int c = chunkOf(address);
            int part = (int) Math.min(length, starts[c + 1] - address);
            chunks[c].read(address - starts[c], dst, offset, part);
            address += part;
            offset += part;
            length -= part;
        }
    }

    @Override
    public void write(long address, byte[] src, int offset, int length) {
        chain.write(address, src, offset, length);
    }

    @Override
    public void fill(long address, long length, byte value) {
        chain.fill(address, length, value);
    }

    @Override
    public void copy(long dest, long src, long length) {
        chain.copy(dest, src, length);
    }

    @Override
    public boolean mapResident(PageInstaller installer, int page, byte[] digests, int offset) {
        long address = (long) page << Pages.PAGE_SHIFT;
        int c = chunkOf(address);
        return installer.mapResident(chunks[c], address - starts[c], digests, offset);
    }

    @Override
    public boolean install(PageInstaller installer, int page, byte[] content, byte[] digests, int offset) {
        long address = (long) page << Pages.PAGE_SHIFT;
        int c = chunkOf(address);
        return installer.install(chunks[c], address - starts[c],
                segment -> MemorySegment.copy(content, 0, segment, ValueLayout.JAVA_BYTE, 0, Pages.PAGE_SIZE),
                digests, offset);
    }

    /**
     * Destroys every chunk, and the {@link #leftover}, whatever an earlier one's destroy threw; then throws
     * the first throwable (the others dropped, as {@code DedupEngine.destroy} drops them: adding them as
     * suppressed allocates). A guest whose destroy threw before taking it down stays live, and the next
     * close destroys it.
     */
    @Override
    public synchronized void close() {      // the Cleaner's thread and a factory's retry may both close
        closed = true;      // first: a grow after this must not make a guest the close will not destroy
        Throwable first = null;
        for (Guest guest : chunks) {
            try {
                guest.destroy();
            } catch (RuntimeException | Error e) {
                first = first == null ? e : first;
            }
        }
        if (leftover != null) {
            try {
                leftover.destroy();
                leftover = null;
            } catch (RuntimeException | Error e) {
                first = first == null ? e : first;
            }
        }
        if (first instanceof Error e) {
            throw e;
        } else if (first instanceof RuntimeException e) {
            throw e;
        }
    }
}
