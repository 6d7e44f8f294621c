package io.samepage.wasm;

import io.samepage.core.DedupException;
import io.samepage.core.DedupException.Kind;
import io.samepage.hashing.Pages;
import java.util.Arrays;

/**
 * A linear memory's direct-mapped cache of 4 KiB engine pages: slot {@code s} holds engine page
 * {@code tags[s]} (or -1), its bytes in {@code slots[s]}, and {@code dirty[s]} if it was stored to since
 * it was read in. {@link SamepageMemory} reads the arrays directly on its loads and stores that hit.
 *
 * <p>Why no invalidation from the engine is needed: the memory is the only writer of its guests, and a
 * merge or a copy-on-write break never changes a page's bytes, so a cached copy stays equal to the page
 * whatever the scanner does. A write-back is an ordinary guest write, which breaks any sharing.
 *
 * <p>A load never needs a frame: where the page it misses would evict a stored-to page whose write-back
 * the engine refuses for want of frames, it reads the page past the cache, and a bulk read takes the
 * engine's bytes with the cached stored-to pages laid over them. A store that evicts such a page, and a
 * bulk write, fill or copy, throw the trap {@link OutOfFrames} makes instead, naming the address and
 * length the program stored to (and a copy's source), and the evicted page, if that was the refused
 * write; no byte of the memory has changed (a page written back before the refusal holds what its slot
 * held). The trap's parts are passed down as primitives and the constant operation names, so nothing is
 * allocated unless it traps.
 * {@link #writeBack}, which {@code flush} and {@code release} call, throws the engine's exception.
 *
 * <p>Not thread safe: confined to its memory's thread.
 */
final class PageCache {

    private static final int IN_PAGE = Pages.PAGE_SIZE - 1;

    final int mask;
    final int[] tags;
    final byte[][] slots;
    final boolean[] dirty;
    private final LinearPages pages;
    /** True once anything reached the engine: until then every page reads as zeros. */
    private boolean pagesWritten;
    /** A page read past the cache ({@link #slotFor}); made at the first such read. */
    private byte[] spare;
    /** A copy's bytes between its source and its destination (a page at most); made at the first such copy. */
    private byte[] scratch;
    /** A store's bytes, little-endian, where it spans two pages. */
    private final byte[] word = new byte[8];

    PageCache(LinearPages pages, int slotCount) {
        if (slotCount < 1 || Integer.bitCount(slotCount) != 1) {
            throw new IllegalArgumentException("cachePages must be a power of two, at least 1, not " + slotCount);
        }
        this.pages = pages;
        this.mask = slotCount - 1;
        this.tags = new int[slotCount];
        Arrays.fill(tags, -1);
        this.slots = new byte[slotCount][];
        this.dirty = new boolean[slotCount];
    }

    /**
     * The bytes of engine page {@code page} (in bounds), to read at once: its slot, read in on a miss,
     * or, if the slot's stored-to page cannot be written back for want of frames, a copy read past the
     * cache, good until the next such read (the page is cached nowhere else, so the engine's is current).
     */
    byte[] slotFor(int page) {
        int slot = page & mask;
        if (tags[slot] != page) {
            try {
                load(slot, page);
            } catch (DedupException e) {
                if (e.kind() != Kind.POOL_EXHAUSTED) {
                    throw e;
                }
                if (spare == null) {
                    spare = new byte[Pages.PAGE_SIZE];
                }
                pages.readPage(page, spare);
                return spare;
            }
        }
        return slots[slot];
    }

    /**
     * The cached bytes of the engine page of a {@code width}-byte store at {@code addr} (in bounds, within
     * one engine page), read in on a miss, marked stored to.
     */
    byte[] slotForWrite(int addr, int width) {
        return cachedForWrite(addr >>> Pages.PAGE_SHIFT, OutOfFrames.STORE, addr, -1, width);
    }

    /** {@link #cached}, the page marked stored to. */
    private byte[] cachedForWrite(int page, String operation, int addr, int source, int length) {
        byte[] data = cached(page, operation, addr, source, length);
        dirty[page & mask] = true;
        return data;
    }

    /**
     * The cached bytes of engine page {@code page}, read in on a miss, for the {@code length}-byte
     * {@code operation} at {@code addr}, a copy's from {@code source} (-1 for any other operation), which
     * the trap names: an eviction refused for want of frames traps.
     */
    private byte[] cached(int page, String operation, int addr, int source, int length) {
        int slot = page & mask;
        if (tags[slot] != page) {
            try {
                load(slot, page);
            } catch (DedupException e) {    // the slot is as it was: it names the page whose write-back was refused
                throw OutOfFrames.trap(e, operation, addr, source, length, (long) tags[slot] << Pages.PAGE_SHIFT);
            }
        }
        return slots[slot];
    }

    /**
     * Reads {@code page} into {@code slot}, first writing back the stored-to page the slot held.
     *
     * @throws DedupException if the engine refused that write-back; the slot is as it was
     */
    private void load(int slot, int page) {
        byte[] data = slots[slot];
        if (data == null) {
            data = new byte[Pages.PAGE_SIZE];
            slots[slot] = data;
        } else if (dirty[slot]) {
            pages.writePage(tags[slot], data);
            pagesWritten = true;
            dirty[slot] = false;
        }
        tags[slot] = -1;
        pages.readPage(page, data);
        tags[slot] = page;
    }

    /** Writes back every stored-to cached page in {@code [first, last]}; with {@code drop}, forgets them too. */
    void writeBack(int first, int last, boolean drop) {
        for (int slot = 0; slot < tags.length; slot++) {
            int page = tags[slot];
            if (page >= first && page <= last) {
                if (dirty[slot]) {
                    pages.writePage(page, slots[slot]);
                    pagesWritten = true;
                    dirty[slot] = false;
                }
                if (drop) {
                    tags[slot] = -1;
                }
            }
        }
    }

    /** Forgets every slot without writing it back (the memory is being replaced or closed). */
    void forgetAll() {
        Arrays.fill(tags, -1);
        Arrays.fill(dirty, false);
        pagesWritten = true;
    }

    /** True if nothing was stored yet: every page reads as zeros. */
    boolean pristine() {
        if (pagesWritten) {
            return false;
        }
        for (boolean d : dirty) {
            if (d) {
                return false;
            }
        }
        return true;
    }

    long bytes() {
        long bytes = (spare == null ? 0 : spare.length) + (scratch == null ? 0 : scratch.length);
        for (byte[] slot : slots) {
            bytes += slot == null ? 0 : slot.length;
        }
        return bytes;
    }

    /** Drops every page array, once every slot was written back and forgotten: the cache holds no page copy. */
    void dropArrays() {
        Arrays.fill(slots, null);
        spare = null;
        scratch = null;
    }

    /** Copies out through the cache (up to a page or two) or from the engine (bulk). In bounds. */
    void copyOut(int addr, byte[] dst, int offset, int length) {
        if (length > Pages.PAGE_SIZE) {
            pages.read(addr, dst, offset, length);
            overlayStoredTo(addr, dst, offset, length);
            return;
        }
        while (length > 0) {
            int in = addr & IN_PAGE;
            int chunk = Math.min(length, Pages.PAGE_SIZE - in);
            System.arraycopy(slotFor(addr >>> Pages.PAGE_SHIFT), in, dst, offset, chunk);
            addr += chunk;
            offset += chunk;
            length -= chunk;
        }
    }

    /** Copies the stored-to cached bytes of {@code [addr, addr + length)}, which the engine has not got, over {@code dst}. */
    private void overlayStoredTo(int addr, byte[] dst, int offset, int length) {
        long end = (long) addr + length;
        for (int slot = 0; slot < tags.length; slot++) {
            if (dirty[slot]) {
                long start = (long) tags[slot] << Pages.PAGE_SHIFT;
                long from = Math.max(start, addr);
                long to = Math.min(start + Pages.PAGE_SIZE, end);
                if (from < to) {
                    System.arraycopy(slots[slot], (int) (from - start), dst, offset + (int) (from - addr), (int) (to - from));
                }
            }
        }
    }

    /**
     * Before a write of {@code [addr, addr + length)} (1 to 4096 bytes, an {@code operation}, a copy's
     * from {@code source}) changes a
     * cached byte: reads in both pages it touches, so an eviction refused on the way (a stored-to page
     * whose write-back needs a frame the engine has not got) leaves the whole write undone, not its first
     * page's part done.
     *
     * @return false if the two pages share a slot (the write goes to the engine instead)
     */
    private boolean resident(String operation, int addr, int source, int length) {
        int first = addr >>> Pages.PAGE_SHIFT;
        int last = (addr + length - 1) >>> Pages.PAGE_SHIFT;
        if (first == last) {
            return true;
        }
        if (((first ^ last) & mask) == 0) {
            return false;
        }
        cached(first, operation, addr, source, length);
        cached(last, operation, addr, source, length);      // another slot: it cannot evict the first
        return true;
    }

    /** Writes the cached pages of {@code [addr, addr + length)} back and forgets them, before a write to the engine. */
    private void bypass(int addr, long length) {
        writeBack(addr >>> Pages.PAGE_SHIFT, (int) ((addr + length - 1) >>> Pages.PAGE_SHIFT), true);
        pagesWritten = true;
    }

    /** The little-endian store of {@code width} bytes of {@code value} at {@code addr}, across two engine pages. In bounds. */
    void store(int addr, long value, int width) {
        for (int i = 0; i < width; i++) {
            word[i] = (byte) (value >>> (8 * i));
        }
        copyIn(OutOfFrames.STORE, addr, -1, word, 0, width);     // one write, all or nothing
    }

    /** Writes {@code src[offset..offset+length)} at {@code addr}. In bounds. */
    void write(int addr, byte[] src, int offset, int length) {
        copyIn(OutOfFrames.WRITE, addr, -1, src, offset, length);
    }

    /**
     * Copies in through the cache (up to a page or two) or to the engine (bulk), for {@code operation}
     * (a copy's from {@code source}; -1 for any other operation). In bounds.
     */
    private void copyIn(String operation, int addr, int source, byte[] src, int offset, int length) {
        if (length > Pages.PAGE_SIZE || (length > 0 && !resident(operation, addr, source, length))) {
            try {
                bypass(addr, length);
                pages.write(addr, src, offset, length);
            } catch (DedupException e) {
                throw OutOfFrames.trap(e, operation, addr, source, length, -1);
            }
            return;
        }
        for (int at = addr, left = length; left > 0; ) {
            int in = at & IN_PAGE;
            int chunk = Math.min(left, Pages.PAGE_SIZE - in);
            System.arraycopy(src, offset, cachedForWrite(at >>> Pages.PAGE_SHIFT, operation, addr, source, length), in, chunk);
            at += chunk;
            offset += chunk;
            left -= chunk;
        }
    }

    /** Sets {@code length} bytes at {@code addr} to {@code value}, through the cache (up to a page or two) or in the engine. In bounds. */
    void fill(int addr, int length, byte value) {
        if (length > Pages.PAGE_SIZE || (length > 0 && !resident(OutOfFrames.FILL, addr, -1, length))) {
            try {
                bypass(addr, length);
                pages.fill(addr, length, value);
            } catch (DedupException e) {
                throw OutOfFrames.trap(e, OutOfFrames.FILL, addr, -1, length, -1);
            }
            return;
        }
        for (int at = addr, left = length; left > 0; ) {
            int in = at & IN_PAGE;
            int chunk = Math.min(left, Pages.PAGE_SIZE - in);
            Arrays.fill(cachedForWrite(at >>> Pages.PAGE_SHIFT, OutOfFrames.FILL, addr, -1, length), in, in + chunk, value);
            at += chunk;
            left -= chunk;
        }
    }

    /**
     * Copies {@code length} bytes from {@code src} to {@code dest}, overlapping either way: up to a page
     * through the cache, by way of a buffer; more in the engine, after writing back the source's
     * stored-to pages and writing back and forgetting the destination's. In bounds.
     */
    void copy(int dest, int src, int length) {
        if (length <= Pages.PAGE_SIZE) {
            if (scratch == null) {
                scratch = new byte[Pages.PAGE_SIZE];
            }
            copyOut(src, scratch, 0, length);
            copyIn(OutOfFrames.COPY, dest, src, scratch, 0, length);
            return;
        }
        try {
            writeBack(src >>> Pages.PAGE_SHIFT, (src + length - 1) >>> Pages.PAGE_SHIFT, false);
            writeBack(dest >>> Pages.PAGE_SHIFT, (dest + length - 1) >>> Pages.PAGE_SHIFT, true);
            pagesWritten = true;
            pages.copy(dest, src, length);
        } catch (DedupException e) {
            throw OutOfFrames.trap(e, OutOfFrames.COPY, dest, src, length, -1);
        }
    }
}
