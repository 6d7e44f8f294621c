/**
 * WebAssembly instances on engine memory: a Chicory {@code Memory} held by Samepage guests.
 *
 * <h2>What it does</h2>
 * {@link io.samepage.wasm.SamepageMemory} implements {@code com.dylibso.chicory.runtime.Memory} and
 * behaves exactly as Chicory's {@code ByteArrayMemory}, while its bytes live in engine guests: a linear
 * memory is a guest (one per chunk of address space as it grows; a WebAssembly page is sixteen 4 KiB engine
 * pages), so the scanner merges equal pages across instances and never-written memory costs no frame.
 * {@link io.samepage.wasm.SamepageMemoryFactory}, passed to {@code Instance.builder(module).withMemoryFactory},
 * treats a module's active data segments as an image: the first instance's initialized pages are
 * installed and registered by SHA-256 in the factory's domain, later instances map them copy-on-write and
 * copy nothing.
 *
 * <h2>Invariants</h2>
 * <ul>
 *   <li>Every call returns, and every trap says, what {@code ByteArrayMemory} would, on the same JVM
 *       (checked by {@code WasmDifferentialTest} and {@code MemoryCallsDifferentialTest}), but for one
 *       trap {@code ByteArrayMemory} has no cause for: a call the engine refuses for want of frames throws
 *       a {@code WasmRuntimeException} with the engine's {@code DedupException} as its cause, having
 *       changed nothing ({@code SamepageMemoryOutOfFramesTest}).</li>
 *   <li>The memory is the only writer of its guests; a merge never changes a page's bytes. So the page
 *       cache in front of the guests never needs invalidating, and a write-back after a merge is a
 *       copy-on-write break like any write.</li>
 *   <li>Everything goes through one seam ({@code LinearPages}): page reads and writes, bulk reads,
 *       writes and fills, and the image's map-resident and install; nothing else touches the engine.</li>
 *   <li>An image page is mapped only into a memory nothing has written yet, and only after every active
 *       segment was checked against the memory's bounds.</li>
 * </ul>
 *
 * <h2>Rejected alternatives</h2>
 * Calling {@code Guest.read}/{@code write} on every load and store (a lock and a copy per access, several
 * times an interpreter's cost for the access itself); copying the data segments into every instance and
 * leaving sharing to the scanner (the first full scans would hold N copies, and instantiation would copy
 * MiBs per instance); one guest sized for the memory's maximum (a 4 GiB maximum would cost a 16 MiB page
 * table per instance). Shared memories (threads) stay on {@code ByteArrayMemory} until the engine's
 * lock-free access path replaces the cache.
 */
package io.samepage.wasm;
