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
 * trap with, whose message starts with {@value #PREFIX} and goes on with the engine's, and whose cause
 * is the engine's {@link DedupException}, so its {@link Kind} stays reachable.
 *
 * <p>Any other refusal is left as the engine's exception: a closed memory or engine ({@code DESTROYED})
 * is the host's doing, not the instance's, and nothing else refuses a plain guest's reads and writes
 * that {@code SamepageMemory} has checked the bounds of.
 */
final class OutOfFrames {

    /** How every such trap's message starts. */
    static final String PREFIX = "out of host frames: ";

    private OutOfFrames() {
    }

    /**
     * The exception to throw for {@code refused}: a trap with it as its cause if the pool had too few
     * frames ({@link Kind#POOL_EXHAUSTED}), else {@code refused} itself.
     */
    static RuntimeException trap(DedupException refused) {
        if (refused.kind() != Kind.POOL_EXHAUSTED) {
            return refused;
        }
        return new WasmRuntimeException(PREFIX + refused.getMessage(), refused);
    }
}
