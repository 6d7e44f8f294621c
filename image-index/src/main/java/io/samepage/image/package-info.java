/**
 * The pre-load image index: guests map resident image blocks instead of reading them.
 *
 * <h2>What it does</h2>
 * {@link io.samepage.image.ImageIndex#build} lays an image out in 4 KiB blocks
 * ({@link io.samepage.image.ImageLayout}: a raw image or file, or a directory tree in a documented
 * order) and records each block's SHA-256 digest, fast hash and zero flag, hashing on every core.
 * The index is written atomically and opened memory-mapped ({@link io.samepage.image.IndexFile}
 * documents the layout). {@link io.samepage.image.ImageLoader} loads blocks into guests: a zero
 * block maps the zero frame, a block whose content is resident in the guest's merge domain maps that
 * frame copy-on-write, and any other block is read into a fresh frame, checked against its digest
 * and registered as resident. Reads are batched, and the SHA-256 checks run on worker threads (one per
 * processor by default); the guest still receives the verified blocks in block order, so a load that
 * fails stops at the same block, in the same state, as on one thread.
 *
 * <h2>Invariants</h2>
 * <ul>
 *   <li>Identity is SHA-256, never the fast hash: a block is mapped only to a frame registered under
 *       the same 32-byte digest, and a frame is registered only after its bytes hashed to it.</li>
 *   <li>The loader hands out no stale or foreign bytes it can see: an index whose image changed is
 *       refused when opened (size, modification time, files, and each file's change time and inode
 *       number, which user space cannot set back, though writes through a shared mapping of the image
 *       may not move them), an index is not built from an image that changed
 *       while it was read, and a block whose bytes do not match the index fails its load, naming the
 *       block and the file, without being installed. A change made after the open is seen only in the
 *       blocks a load reads.</li>
 *   <li>A damaged, truncated, foreign or wrong-version index file is refused with one error; the
 *       parser reads nothing outside the file. An index file cut short while a load reads it fails the
 *       load, which keeps none of its blocks: the JVM reports the fault only after the read that met
 *       it, so the whole range the load was given is left reading zeros. For the same reason a load
 *       looks at the file's size as it ends, so that the load that met the cut is the one that fails.</li>
 * </ul>
 *
 * <h2>Where the registry lives, and why</h2>
 * The design put the resident registry in this module. It lives beside the stable index in
 * {@code io.samepage.core.MergeDomain} instead, because a registered frame must leave the registry in
 * the same critical section in which its last mapping goes; here the registry could only learn of it
 * afterwards, and for that moment it would name a frame that may already hold other bytes. This module
 * reaches it through {@code io.samepage.core.PageInstaller}.
 *
 * <h2>Rejected</h2>
 * Chronicle Bytes for the mapped file (needs internal-package flags and fails when
 * {@code sun.misc.Unsafe} memory access is denied): the JDK's {@code FileChannel.map(..., Arena)} does
 * the same job. A digest-sorted block table: the loader looks blocks up by number, so a flat array
 * indexed by block number is the fastest lookup, and digests are looked up in the in-memory registry.
 */
package io.samepage.image;
