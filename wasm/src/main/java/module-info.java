/**
 * WebAssembly instances on engine memory: a Samepage-backed Chicory {@code Memory} whose data-segment
 * pages are shared copy-on-write across the instances of one module, and the bench that compares it
 * with Chicory's {@code ByteArrayMemory}.
 */
module io.samepage.wasm {
    requires transitive io.samepage.core;
    requires transitive com.dylibso.chicory.runtime;

    exports io.samepage.wasm;
}
