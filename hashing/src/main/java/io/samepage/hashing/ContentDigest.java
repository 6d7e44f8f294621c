package io.samepage.hashing;

import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.security.DigestException;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;

/**
 * SHA-256 of a 4 KiB page: the content identity that may justify skipping a disk read.
 *
 * <p>Unlike the fast {@link PageHasher}, a digest match is trusted as equality, so it is the only
 * hash the image index uses for identity. The JDK computes it with the SHA extensions where the
 * processor has them.
 *
 * <p>Thread safety: confined to one thread, like {@link MessageDigest}. Allocates nothing per page
 * when the caller supplies the output array and hashes the same segment object repeatedly.
 */
public final class ContentDigest {

    /** Length of a digest in bytes. */
    public static final int LENGTH = 32;

    private final MessageDigest sha256;
    private final SegmentViews views = new SegmentViews();

    public ContentDigest() {
        try {
            sha256 = MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("this JDK has no SHA-256, which every Java SE platform must provide", e);
        }
    }

    /** Writes the SHA-256 of the page at {@code offset} into {@code out[outOffset..outOffset+32)}. */
    public void digest(MemorySegment memory, long offset, byte[] out, int outOffset) {
        Pages.checkPage(memory, offset);
        ByteBuffer view = views.viewOf(memory, offset);
        int start = SegmentViews.positionOf(offset);
        view.limit(start + Pages.PAGE_SIZE).position(start);
        sha256.update(view);
        try {
            sha256.digest(out, outOffset, LENGTH);
        } catch (DigestException e) {
            throw new IllegalArgumentException("no room for a " + LENGTH + "-byte digest at offset " + outOffset
                    + " of a " + out.length + "-byte array", e);
        }
    }

    /** The SHA-256 of the page at {@code offset}, in a new array. */
    public byte[] digest(MemorySegment memory, long offset) {
        byte[] out = new byte[LENGTH];
        digest(memory, offset, out, 0);
        return out;
    }
}
