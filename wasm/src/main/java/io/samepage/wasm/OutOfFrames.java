package io.samepage.wasm;

import com.dylibso.chicory.runtime.WasmRuntimeException;
import io.samepage.core.DedupException;
import io.samepage.core.DedupException.Kind;

/**
 * What a {@code Memory} call throws when the engine refuses it for want of frames: a WebAssembly trap,
 * not the engine's exception. A store that must break copy-on-write sharing (or write back a cached page
 * that must), a bulk write, fill or copy, or a data-segment image may need frames the pool has not got;
 * that is the instance's failure, as running out of memory is, and its embedder catches it with
 * Chicory's other traps. The trap is a {@link WasmRuntimeException}, the type Chicory's own memories
 * trap with, whose cause is the engine's {@link DedupException}, so its {@link Kind} stays reachable.
 *
 * <p>Its message is one line: {@value #PREFIX}, then what the program asked for, in linear-memory
 * addresses (the width and address of the store, or the length and address of the bulk operation, a
 * copy's source before its destination), then, where the refused write was another page's, that page's
 * address, and last the engine's message. Why the engine's message is not enough: it names the write the
 * engine refused, which for a store is often the write-back of the cached page the store evicts, and for a
 * copy of a page or less a write of the destination alone, and it gives the address within one of the
 * memory's guests, not the program's address.
 *
 * <p>Any other refusal is left as the engine's exception: a closed memory or engine ({@code DESTROYED})
 * is the host's doing, not the instance's, and nothing else refuses a plain guest's reads and writes
 * that {@code SamepageMemory} has checked the bounds of.
 */
final class OutOfFrames {

    /** How every such trap's message starts. */
    static final String PREFIX = "out of host frames: ";
    /** A load-store instruction's store (1 to 8 bytes), an atomic's too. */
    static final String STORE = "store at";
    /** A write of bytes through {@code Memory.write}: {@code memory.init}, or the host's. */
    static final String WRITE = "write at";
    /** {@code memory.fill}. */
    static final String FILL = "fill at";
    /** {@code memory.copy}, named by its source, then its destination. */
    static final String COPY = "copy from";

    private OutOfFrames() {
    }

    /**
     * The exception to throw for {@code refused}, which a {@code length}-byte {@code operation} at
     * {@code address} got: a trap with it as its cause if the pool had too few frames
     * ({@link Kind#POOL_EXHAUSTED}), else {@code refused} itself.
     *
     * @param operation one of {@link #STORE}, {@link #WRITE}, {@link #FILL}, {@link #COPY}
     * @param address   where the operation writes: a copy's destination
     * @param source    where a {@link #COPY} reads from; -1 for any other operation
     * @param evicted   the address of the cached stored-to page whose write-back, to make room for the
     *                  operation's page, the engine refused; -1 if it refused the operation's own write
     */
    static RuntimeException trap(DedupException refused, String operation, long address, long source, long length,
            long evicted) {
        if (refused.kind() != Kind.POOL_EXHAUSTED) {
            return refused;
        }
        String what = length + "-byte " + operation + " " + (source >= 0 ? at(source) + " to " : "") + at(address);
        if (evicted >= 0) {
            what += " must first write back the cached page at 0x" + Long.toHexString(evicted) + " it evicts";
        }
        return new WasmRuntimeException(PREFIX + what + ": " + refused.getMessage(), refused);
    }

    /** {@link #trap} for an instantiation's data-segment image, refused at the page at {@code pageAddress}. */
    static RuntimeException imageTrap(DedupException refused, long pageAddress) {
        if (refused.kind() != Kind.POOL_EXHAUSTED) {
            return refused;
        }
        return new WasmRuntimeException(PREFIX + "data segments' page at address " + pageAddress + " (0x"
                + Long.toHexString(pageAddress) + "): " + refused.getMessage(), refused);
    }

    /** {@code address}, in decimal and in hex: {@code "address 4660 (0x1234)"}. */
    private static String at(long address) {
        return "address " + address + " (0x" + Long.toHexString(address) + ")";
    }
}
