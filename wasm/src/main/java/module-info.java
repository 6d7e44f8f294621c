/**
 * WebAssembly instances on engine memory: a Samepage-backed Chicory {@code Memory} whose data-segment
 * pages are shared copy-on-write across the instances of one module, and the bench that compares it
 * with Chicory's {@code ByteArrayMemory}.
 */
module io.samepage.wasm {
    requires transitive io.samepage.core;
    requires transitive com.dylibso.chicory.runtime;
    requires java.management; // the bench reads the heap in use (MemoryMXBean)
    requires static com.fasterxml.jackson.databind; // the bench's wasm.json (optional dependency)
    requires static xchart;   // the bench's wasm.png (optional dependency)
    requires static java.desktop; // XChart draws with AWT

    exports io.samepage.wasm;
}
