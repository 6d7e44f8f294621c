package io.samepage.wasm;

import io.samepage.core.PageInstaller;

/**
 * The seam between {@link SamepageMemory} and the engine: where the bytes of one linear memory live,
 * addressed by byte and by 4 KiB engine page. Today it is {@link GuestPages}, copies through the
 * engine's public {@code Guest} API; the engine's zero-copy access path (cached per-page translations)
 * will take its place without {@code SamepageMemory}'s callers seeing a difference.
 *
 * <p>A bulk write, fill or copy is all or nothing: the engine reserves every frame it needs, in every
 * guest it touches, before it changes a byte, or refuses it with a {@code DedupException}
 * ({@code POOL_EXHAUSTED}) having changed nothing.
 *
 * <p>Every address here is in bounds: {@code SamepageMemory} checks bounds, with
 * {@code ByteArrayMemory}'s exceptions, before it calls. Not thread safe: one memory, one thread.
 */
interface LinearPages {

    /** Copies engine page {@code page} (4 KiB) into {@code dst[0..4096)}. */
    void readPage(int page, byte[] dst);

    /** Writes {@code src[0..4096)} to engine page {@code page}. */
    void writePage(int page, byte[] src);

    /** Copies {@code length} bytes at {@code address} into {@code dst[offset..]}. */
    void read(long address, byte[] dst, int offset, int length);

    /** Writes {@code src[offset..offset+length)} at {@code address}. */
    void write(long address, byte[] src, int offset, int length);

    /** Sets {@code length} bytes at {@code address} to {@code value}; whole pages of zeros give their frames back. */
    void fill(long address, long length, byte value);

    /** Copies {@code length} bytes from {@code src} to {@code dest}; overlapping ranges copy as if through a buffer. */
    void copy(long dest, long src, long length);

    /**
     * Maps engine page {@code page} to the frame resident in the domain whose SHA-256 is
     * {@code digests[offset..offset+32)}, copy-on-write, replacing what the page held.
     *
     * @return false if no such frame is resident (or it maps as many pages as it may); nothing changed
     */
    boolean mapResident(PageInstaller installer, int page, byte[] digests, int offset);

    /**
     * Puts {@code content} (4096 bytes) into a fresh frame, maps it at engine page {@code page} and
     * registers it as resident under {@code digests[offset..offset+32)}, its SHA-256.
     *
     * @return false if the content does not have that digest; nothing changed
     */
    boolean install(PageInstaller installer, int page, byte[] content, byte[] digests, int offset);

    /**
     * Makes room for {@code bytes} of linear memory (a multiple of 64 KiB); the new bytes read as zeros
     * and take no frame until written. All or nothing: whatever it throws (an {@link OutOfMemoryError}
     * too), the memory is as it was, and a guest it made for them is destroyed again (what that destroy
     * throws, if anything, is suppressed in what it throws).
     *
     * @throws io.samepage.core.DedupException if the engine refused a guest for them, nothing changed:
     *         {@code POOL_EXHAUSTED} if it cannot hold that much (its page-id space is taken), else why
     *         not (a closed engine, or this memory closed, is {@code DESTROYED})
     */
    void reserve(long bytes);

    /**
     * Gives every frame back; later calls fail ({@link #reserve} too, making no guest). Idempotent: if it
     * throws, what it could give back it gave, and the next call gives back the rest.
     */
    void close();
}
