package io.samepage.wasm;

import com.dylibso.chicory.runtime.Instance;
import com.dylibso.chicory.runtime.Memory;
import com.dylibso.chicory.runtime.WasmRuntimeException;
import com.dylibso.chicory.wasm.ChicoryException;
import com.dylibso.chicory.wasm.types.DataSegment;
import com.dylibso.chicory.wasm.types.MemoryLimits;
import com.dylibso.chicory.wasm.types.PassiveDataSegment;
import io.samepage.core.DedupException;
import io.samepage.core.DedupException.Kind;
import io.samepage.core.Guest;
import io.samepage.hashing.Pages;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;
import java.util.function.Function;

/**
 * A WebAssembly linear memory held by the engine: it behaves exactly as Chicory's {@code ByteArrayMemory}
 * (every width, bulk operations, passive segments, {@code grow}, strings, atomics, and the same
 * {@link WasmRuntimeException} with the same message for every out-of-bounds access), while its bytes
 * live in engine guests ({@link LinearPages}), so equal pages of many instances share one frame.
 *
 * <h2>How it reaches the engine</h2>
 * Linear memory is addressed in 4 KiB engine pages (a WebAssembly page is sixteen of them). Loads and
 * stores go through a small direct-mapped cache of pages ({@code cachePages} slots, a power of two):
 * a hit is an array access like {@code ByteArrayMemory}'s; a miss writes the slot's page back if it was
 * stored to, then reads the new page in. The cache needs no invalidation from the engine: this memory is
 * the only writer of its guests, and a merge never changes a page's bytes, so a cached copy stays equal
 * to the guest's page whatever the scanner does; a write-back after a merge is an ordinary write, which
 * breaks the sharing (copy-on-write). Bulk writes, fills and copies over more than a page write the
 * affected slots back and go to the engine directly (a bulk read lays the cached stored-to pages over
 * the engine's bytes); a whole page filled with zeros gives its frame back.
 *
 * <p>Stored bytes reach the engine, and so become mergeable, when their slot is evicted or at
 * {@link #flush()}; {@link #release()} also drops the cache's arrays. An embedder calls one of them at
 * its safe points (after a call into the instance returns), as the bench does. The engine's zero-copy
 * access path will replace the cache behind the {@link LinearPages} seam.
 *
 * <h2>When the engine has no frame</h2>
 * A call the engine refuses for want of frames traps, having changed nothing: it throws a
 * {@link WasmRuntimeException} (what Chicory's memories trap with; the interpreter passes it out of the
 * call as any trap) whose message starts with {@code "out of host frames: "} and names the width (or
 * length) and address the program stored to, and a copy's source ({@link OutOfFrames}), and whose cause
 * is the engine's {@link DedupException} ({@code POOL_EXHAUSTED}). The stores before it stay stored, as
 * before any trap, and the memory keeps working once frames are free. A store needs a frame when its page is
 * not cached and the stored-to page it evicts must break sharing to be written back; a bulk write, fill
 * or copy needs all of its frames at once; the data-segment image at instantiation needs one per page it
 * cannot map. A load needs none: it reads past the cache instead of evicting such a page, and a bulk
 * read lays the cached stored-to pages over the engine's. A {@code grow} takes none either (new pages
 * read as the zero frame): it returns -1 when the engine cannot hold the pages, or when the heap runs out
 * ({@link OutOfMemoryError}) while it makes the new pages' guest, which it then gives back: the memory
 * stays as it was and a later grow may succeed. {@link #flush()}
 * and {@link #release()}, which the host calls, throw the engine's exception, as every other refusal
 * does (a closed memory or engine is {@code DESTROYED}).
 *
 * <h2>Data segments are the image</h2>
 * {@link #initialize} of a pristine memory hands its active data segments to the
 * {@link SamepageMemoryFactory}: the first instance's pages are installed and registered by SHA-256
 * digest, and later instances map those frames copy-on-write instead of copying the segments.
 *
 * <p>Thread safety: none, like a non-shared {@code ByteArrayMemory}: one thread at a time. The engine's
 * scanner may run concurrently. Shared memories are not made by the factory (they stay on
 * {@code ByteArrayMemory}).
 */
public final class SamepageMemory extends PlainAtomics implements AutoCloseable {

    private static final VarHandle SHORT = MethodHandles.byteArrayViewVarHandle(short[].class, ByteOrder.LITTLE_ENDIAN);
    private static final VarHandle INT = MethodHandles.byteArrayViewVarHandle(int[].class, ByteOrder.LITTLE_ENDIAN);
    private static final VarHandle LONG = MethodHandles.byteArrayViewVarHandle(long[].class, ByteOrder.LITTLE_ENDIAN);
    private static final int IN_PAGE = Pages.PAGE_SIZE - 1;
    private static final int WASM_PAGE_SHIFT = 16;

    private final MemoryLimits limits;
    private final LinearPages pages;
    private final SamepageMemoryFactory factory;
    private int nPages;
    private DataSegment[] dataSegments;

    /** The page cache; its arrays are also held here, for the loads and stores that hit. */
    private final PageCache cache;
    private final int mask;
    private final int[] tags;
    private final byte[][] slots;
    private final boolean[] dirty;

    /**
     * A memory of {@code limits.initialPages()} pages on {@code pages}, which it reserves last: whatever is
     * thrown before leaves the engine as it was, and nothing is thrown after.
     */
    SamepageMemory(MemoryLimits limits, LinearPages pages, SamepageMemoryFactory factory, int cachePages) {
        this.cache = new PageCache(pages, cachePages);
        try {
            pages.reserve((long) limits.initialPages() * PAGE_SIZE);
        } catch (DedupException e) {
            throw e.kind() != Kind.POOL_EXHAUSTED ? e : new ChicoryException("the engine cannot hold "
                    + limits.initialPages() + " pages of linear memory: " + e.getMessage(), e);
        }
        this.limits = limits;
        this.pages = pages;
        this.factory = factory;
        this.nPages = limits.initialPages();
        this.mask = cache.mask;
        this.tags = cache.tags;
        this.slots = cache.slots;
        this.dirty = cache.dirty;
    }

    // ---- size ----

    @Override
    public int pages() {
        return nPages;
    }

    @Override
    public int grow(int size) {
        int prevPages = nPages;
        int numPages = prevPages + size;
        if (numPages > maximumPages() || numPages < prevPages) {
            return -1;
        }
        try {
            pages.reserve((long) numPages * PAGE_SIZE);
        } catch (DedupException e) {
            if (e.kind() == Kind.POOL_EXHAUSTED) {
                return -1;      // the engine is full: a grow may fail so (any other refusal is thrown)
            }
            throw e;
        } catch (OutOfMemoryError e) {
            return -1;          // the heap is full: reserve left the chunks as they were; other Errors propagate
        }
        nPages = numPages;
        return prevPages;
    }

    @Override
    public int initialPages() {
        return limits.initialPages();
    }

    @Override
    public int maximumPages() {
        return Math.min(limits.maximumPages(), RUNTIME_MAX_PAGES);
    }

    @Override
    public boolean shared() {
        return false;
    }

    private int sizeInBytes() {
        return PAGE_SIZE * nPages;
    }

    // ---- data segments ----

    @Override
    public void initialize(Instance instance, DataSegment[] dataSegments) {
        initialize(instance, dataSegments, 0);
    }

    @Override
    public void initialize(Instance instance, DataSegment[] dataSegments, int memoryIndex) {
        this.dataSegments = dataSegments;
        if (dataSegments == null) {
            return;
        }
        factory.images().initialize(this, instance, dataSegments, memoryIndex);
    }

    @Override
    public void initPassiveSegment(int segmentId, int dest, int offset, int size) {
        var segment = dataSegments[segmentId];
        write(dest, segment.data(), offset, size);
    }

    @Override
    public void drop(int segment) {
        dataSegments[segment] = PassiveDataSegment.EMPTY;
    }

    /** True if nothing was stored yet: every page reads as zeros, so the image may be mapped. */
    boolean pristine() {
        return cache.pristine();
    }

    /** The seam, for the image to map and install pages; the cache is emptied first. */
    LinearPages pagesForImage() {
        cache.forgetAll();
        return pages;
    }

    /**
     * Hands every stored byte to the engine (the scanner sees, and may merge, only what was handed over).
     * Call at a safe point: no call into the instance is running.
     */
    public void flush() {
        cache.writeBack(0, Integer.MAX_VALUE, false);
    }

    /** {@link #flush()}, then drops the cache's arrays: an idle instance holds no page copies. */
    public void release() {
        cache.writeBack(0, Integer.MAX_VALUE, true);
        cache.dropArrays();
    }

    /** Heap bytes the cache holds now. */
    public long cacheBytes() {
        return cache.bytes();
    }

    /** The engine guests holding this memory, in address order. */
    public Guest[] guests() {
        return pages instanceof GuestPages g ? g.guests() : new Guest[0];
    }

    /**
     * Gives the memory's frames back to the engine; later loads, stores and grows throw {@code DESTROYED}.
     * Idempotent: where one of its guests' destroy throws, the others are destroyed all the same, and the
     * next close (or the {@code Cleaner}'s, once the memory is unreachable) destroys what is left.
     */
    @Override
    public void close() {
        cache.forgetAll();
        cache.dropArrays();
        pages.close();
    }

    /** The seam, for the factory to close again after a failed build's {@link #close()} threw. */
    LinearPages linearPages() {
        return pages;
    }

    /** The limit {@code ByteArrayMemory} checks a data segment against. */
    int limitBytes() {
        return sizeInBytes();
    }

    // ---- bounds, as ByteArrayMemory checks them ----

    /** ByteArrayMemory's check, the end summed in {@code long}: an end past {@code int} traps, not wraps and passes. */
    static void checkBounds(int addr, int size, int limit, Function<String, ChicoryException> exceptionFactory) {
        if (addr < 0 || size < 0 || addr > limit || (long) addr + size > limit) {
            throw exceptionFactory.apply(message(addr, size, limit));
        }
    }

    private static String message(int addr, int size, int limit) {
        return "out of bounds memory access: attempted to access address: " + addr + " but limit is: " + limit
                + " and size: " + size;
    }

    @Override
    WasmRuntimeException outOfBounds(int addr, int size) {
        return new WasmRuntimeException(message(addr, size, sizeInBytes()));
    }

    /** True if {@code addr} is in a WebAssembly page that exists (ByteArrayMemory's single-page access). */
    private boolean inExistingPage(int addr) {
        return addr >= 0 && (addr >>> WASM_PAGE_SHIFT) < nPages;
    }

    /** True if {@code width} bytes at {@code addr} stay within one WebAssembly page. */
    private static boolean withinWasmPage(int addr, int width) {
        return (addr & (PAGE_SIZE - 1)) + width <= PAGE_SIZE;
    }

    // ---- bytes ----

    @Override
    public byte read(int addr) {
        int page = addr >>> Pages.PAGE_SHIFT;
        int slot = page & mask;
        if (tags[slot] == page) {
            return slots[slot][addr & IN_PAGE];
        }
        if (addr < 0 || addr >= sizeInBytes()) {
            throw outOfBounds(addr, 1);
        }
        return cache.slotFor(page)[addr & IN_PAGE];
    }

    @Override
    public void writeByte(int addr, byte data) {
        int page = addr >>> Pages.PAGE_SHIFT;
        int slot = page & mask;
        if (tags[slot] == page) {
            slots[slot][addr & IN_PAGE] = data;
            dirty[slot] = true;
            return;
        }
        if (addr < 0 || addr >= sizeInBytes()) {
            throw outOfBounds(addr, 1);
        }
        cache.slotForWrite(addr, 1)[addr & IN_PAGE] = data;
    }

    @Override
    public byte[] readBytes(int addr, int len) {
        checkBounds(addr, len, sizeInBytes(), WasmRuntimeException::new);
        byte[] result = new byte[len];
        cache.copyOut(addr, result, 0, len);
        return result;
    }

    @Override
    public void write(int addr, byte[] data, int offset, int size) {
        checkBounds(offset, size, data.length, WasmRuntimeException::new);
        checkBounds(addr, size, sizeInBytes(), WasmRuntimeException::new);
        cache.write(addr, data, offset, size);
    }

    // ---- wider loads and stores: a hit in one engine page, else the checked path ----

    /** Little-endian load of {@code width} bytes, as ByteArrayMemory does it (bytewise across a 64 KiB page). */
    private long loadSlow(int addr, int width) {
        if (withinWasmPage(addr, width)) {
            if (!inExistingPage(addr)) {
                throw outOfBounds(addr, width);
            }
            int in = addr & IN_PAGE;
            if (in <= Pages.PAGE_SIZE - width) {
                byte[] data = cache.slotFor(addr >>> Pages.PAGE_SHIFT);
                return switch (width) {
                    case 2 -> (short) SHORT.get(data, in);
                    case 4 -> (int) INT.get(data, in);
                    default -> (long) LONG.get(data, in);
                };
            }
        }
        long value = 0;
        for (int i = 0; i < width; i++) {
            value |= (read(addr + i) & 0xFFL) << (8 * i);
        }
        return value;
    }

    /** Little-endian store of {@code width} bytes, as ByteArrayMemory does it (checked first across a 64 KiB page). */
    private void storeSlow(int addr, long value, int width) {
        if (withinWasmPage(addr, width)) {
            if (!inExistingPage(addr)) {
                throw outOfBounds(addr, width);
            }
            int in = addr & IN_PAGE;
            if (in <= Pages.PAGE_SIZE - width) {
                byte[] data = cache.slotForWrite(addr, width);
                switch (width) {
                    case 2 -> SHORT.set(data, in, (short) value);
                    case 4 -> INT.set(data, in, (int) value);
                    default -> LONG.set(data, in, value);
                }
                return;
            }
        } else {
            checkBounds(addr, width, sizeInBytes(), WasmRuntimeException::new);
        }
        cache.store(addr, value, width);   // across two engine pages
    }

    @Override
    public short readShort(int addr) {
        int in = addr & IN_PAGE;
        int page = addr >>> Pages.PAGE_SHIFT;
        int slot = page & mask;
        if (tags[slot] == page && in <= Pages.PAGE_SIZE - 2) {
            return (short) SHORT.get(slots[slot], in);
        }
        return (short) loadSlow(addr, 2);
    }

    @Override
    public int readInt(int addr) {
        int in = addr & IN_PAGE;
        int page = addr >>> Pages.PAGE_SHIFT;
        int slot = page & mask;
        if (tags[slot] == page && in <= Pages.PAGE_SIZE - 4) {
            return (int) INT.get(slots[slot], in);
        }
        return (int) loadSlow(addr, 4);
    }

    @Override
    public long readLong(int addr) {
        int in = addr & IN_PAGE;
        int page = addr >>> Pages.PAGE_SHIFT;
        int slot = page & mask;
        if (tags[slot] == page && in <= Pages.PAGE_SIZE - 8) {
            return (long) LONG.get(slots[slot], in);
        }
        return loadSlow(addr, 8);
    }

    @Override
    public void writeShort(int addr, short data) {
        int in = addr & IN_PAGE;
        int page = addr >>> Pages.PAGE_SHIFT;
        int slot = page & mask;
        if (tags[slot] == page && in <= Pages.PAGE_SIZE - 2) {
            SHORT.set(slots[slot], in, data);
            dirty[slot] = true;
            return;
        }
        storeSlow(addr, data, 2);
    }

    @Override
    public void writeI32(int addr, int data) {
        int in = addr & IN_PAGE;
        int page = addr >>> Pages.PAGE_SHIFT;
        int slot = page & mask;
        if (tags[slot] == page && in <= Pages.PAGE_SIZE - 4) {
            INT.set(slots[slot], in, data);
            dirty[slot] = true;
            return;
        }
        storeSlow(addr, data, 4);
    }

    @Override
    public void writeLong(int addr, long data) {
        int in = addr & IN_PAGE;
        int page = addr >>> Pages.PAGE_SHIFT;
        int slot = page & mask;
        if (tags[slot] == page && in <= Pages.PAGE_SIZE - 8) {
            LONG.set(slots[slot], in, data);
            dirty[slot] = true;
            return;
        }
        storeSlow(addr, data, 8);
    }

    @Override
    public long readU16(int addr) {
        return readShort(addr) & 0xFFFFL;
    }

    @Override
    public void writeF32(int addr, float data) {
        writeI32(addr, Float.floatToRawIntBits(data));
    }

    @Override
    public long readF32(int addr) {
        return readInt(addr);
    }

    @Override
    public float readFloat(int addr) {
        return Float.intBitsToFloat(readInt(addr));
    }

    @Override
    public void writeF64(int addr, double data) {
        writeLong(addr, Double.doubleToRawLongBits(data));
    }

    @Override
    public double readDouble(int addr) {
        return Double.longBitsToDouble(readLong(addr));
    }

    @Override
    public long readF64(int addr) {
        return readLong(addr);
    }

    // ---- bulk ----

    @Override
    public void zero() {
        if (pristine()) {
            return;     // every page reads as zeros already
        }
        fill((byte) 0, 0, sizeInBytes());
    }

    @Override
    public void fill(byte value, int fromIndex, int toIndex) {
        int addr = fromIndex;
        int remaining = toIndex - fromIndex;
        checkBounds(addr, remaining, sizeInBytes(), WasmRuntimeException::new);
        cache.fill(addr, remaining, value);
    }

    @Override
    public void copy(int dest, int src, int size) {
        int limit = sizeInBytes();
        checkBounds(dest, size, limit, WasmRuntimeException::new);
        checkBounds(src, size, limit, WasmRuntimeException::new);
        cache.copy(dest, src, size);
    }
}
