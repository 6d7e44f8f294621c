package io.samepage.hashing;

import java.util.zip.CRC32C;

/**
 * Pages crafted against CRC32C, the way a hostile tenant would build them: CRC is affine over GF(2),
 * so for messages of equal length {@code crc(a ^ b) = crc(a) ^ crc(b) ^ crc(0)}. The map
 * {@code L(x) = crc(x) ^ crc(0)} is linear in the bits of {@code x}; Gaussian elimination over the
 * images of single-bit messages finds combinations of bits whose images cancel, and XORing any set of
 * those kernel vectors into a half page leaves its CRC32C unchanged, whatever seed a hasher mixes in
 * afterwards. {@code Crc32cPageHasher} hashes the two 2 KiB halves separately, so pages that keep both
 * halves' CRCs collide under it.
 *
 * <p>For tests and reports that show what such content costs the engine, and why the default hash is
 * keyed. Not thread safe; building one costs a few milliseconds.
 */
public final class CrcCollisions {

    public static final int HALF = 2048;
    /** Single-bit positions tried: their 32-bit images span at most 32 dimensions, so at least 64 kernel vectors. */
    private static final int BITS = 96;

    /** Kernel vectors: each a set of the first {@link #BITS} bit positions, as a bit mask in two longs. */
    private final long[][] kernel;

    public CrcCollisions() {
        int[] image = new int[BITS];
        byte[] zeros = new byte[HALF];
        int crcZero = crc(zeros);
        for (int bit = 0; bit < BITS; bit++) {
            byte[] one = new byte[HALF];
            one[bit >>> 3] = (byte) (1 << (bit & 7));
            image[bit] = crc(one) ^ crcZero;
        }
        // Row-reduce [image | identity]: rows whose image becomes 0 are kernel vectors.
        int[] rows = image.clone();
        long[][] combo = new long[BITS][2];
        for (int bit = 0; bit < BITS; bit++) {
            combo[bit][bit >>> 6] = 1L << bit;
        }
        int rank = 0;
        for (int column = 31; column >= 0 && rank < BITS; column--) {
            int pivot = -1;
            for (int r = rank; r < BITS; r++) {
                if ((rows[r] >>> column & 1) != 0) {
                    pivot = r;
                    break;
                }
            }
            if (pivot < 0) {
                continue;
            }
            swap(rows, combo, pivot, rank);
            for (int r = 0; r < BITS; r++) {
                if (r != rank && (rows[r] >>> column & 1) != 0) {
                    rows[r] ^= rows[rank];
                    combo[r][0] ^= combo[rank][0];
                    combo[r][1] ^= combo[rank][1];
                }
            }
            rank++;
        }
        kernel = new long[BITS - rank][];
        for (int r = rank; r < BITS; r++) {
            if (rows[r] != 0) {
                throw new IllegalStateException("elimination left a non-zero row");
            }
            kernel[r - rank] = combo[r];
        }
    }

    /** How many independent kernel vectors there are: {@code 2^dimension()} distinct colliding halves. */
    public int dimension() {
        return kernel.length;
    }

    /**
     * A page equal to {@code base} except for kernel combination {@code index} (bit i of {@code index}
     * selects kernel vector i) XORed into its first half: both halves keep {@code base}'s CRC32C, and
     * different indexes give different pages.
     */
    public byte[] page(byte[] base, long index) {
        byte[] page = base.clone();
        for (int v = 0; v < kernel.length && index >>> v != 0; v++) {
            if ((index >>> v & 1) == 0) {
                continue;
            }
            for (int bit = 0; bit < BITS; bit++) {
                if ((kernel[v][bit >>> 6] >>> bit & 1) != 0) {
                    page[bit >>> 3] ^= (byte) (1 << (bit & 7));
                }
            }
        }
        return page;
    }

    /** CRC32C of the 2 KiB half of {@code bytes} at {@code offset}. */
    public static int crc(byte[] bytes, int offset) {
        CRC32C crc = new CRC32C();
        crc.update(bytes, offset, HALF);
        return (int) crc.getValue();
    }

    private static int crc(byte[] half) {
        return crc(half, 0);
    }

    private static void swap(int[] rows, long[][] combo, int a, int b) {
        int t = rows[a];
        rows[a] = rows[b];
        rows[b] = t;
        long[] c = combo[a];
        combo[a] = combo[b];
        combo[b] = c;
    }
}
