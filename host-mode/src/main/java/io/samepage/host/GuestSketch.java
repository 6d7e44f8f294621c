package io.samepage.host;

import io.samepage.hashing.PageDigest;
import io.samepage.hashing.Pages;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A guest's memory in {@value #K} numbers: the bottom-k sketch (KMV, "k minimum values") of its
 * non-zero page contents, for deciding where to place guests so that they share pages. Two sketches
 * estimate how many distinct page contents two guests have in common ({@link #sharedPages}) without
 * either guest's memory, so a scheduler can compare guests on different hosts.
 *
 * <p>Each non-zero page is hashed with {@link PageDigest#sketchHash} (NH under a fixed public seed: the
 * same page gives the same number on every host and in every run, which a per-engine secret key would
 * prevent; {@value #HASH} names it, and sketches of different hashes are not compared), the hash is
 * mixed once more (a bijection, so distinct hashes stay distinct), and the sketch keeps the {@value #K}
 * smallest distinct values. A page seen twice adds nothing. Zero pages are left out: every host shares
 * them anyway, so they say nothing about placement. The estimate is an estimate: unkeyed hashes can be
 * made to collide on purpose, which only skews the numbers of the guest that crafts them; nothing
 * merges on a sketch.
 *
 * <p>Guests loaded from files ({@link #addPage}) and guests read live by {@link PageDigestEstimator}
 * (which hashes each page once for its digest and once for the sketch, and calls {@link #addHash}) get
 * the same values for the same pages, so either may be compared with the other.
 *
 * <p>At most {@value #K} longs (2 KiB) per guest, plus a count. Adding a page allocates nothing. Not
 * thread safe.
 */
public final class GuestSketch {

    /** Values kept: the relative error of the distinct-count estimate is about 1/sqrt(K - 2), 6%. */
    public static final int K = 256;

    /** The page hash of every sketch made here, as {@code hash} in its {@link #fields}. */
    public static final String HASH = PageDigest.SKETCH_HASH;

    /** The hash of a sketch whose JSON names none: unkeyed XXH3-64, which {@code scan} used first. */
    public static final String FIRST_HASH = "xxh3-64";

    private final long[] mins = new long[K];
    private String hash = HASH;
    private int size;
    private long pages;

    /** Adds page {@code offset} of {@code memory} (4 KiB); a zero page is counted but not sketched. */
    public void addPage(MemorySegment memory, long offset) {
        if (Pages.isZeroPage(memory, offset)) {
            pages++;
            return;
        }
        addHash(PageDigest.sketchHash(memory, offset));
    }

    /** Counts {@code count} zero pages read, which are not sketched. */
    public void addZeroPages(long count) {
        pages += count;
    }

    /** Adds a non-zero page by its {@link PageDigest#sketchHash} (what {@link #addPage} computes). */
    public void addHash(long pageHash) {
        pages++;
        insert(mix(pageHash));
    }

    /** Pages added, zero pages included. */
    public long pages() {
        return pages;
    }

    /** The kept values, ascending: at most {@value #K}, fewer when the guest has fewer distinct pages. */
    public long[] values() {
        return Arrays.copyOf(mins, size);
    }

    /** A sketch read back from its {@link #values()} and {@link #pages()}, e.g. from another host's JSON. */
    public static GuestSketch of(long[] values, long pages) {
        if (values.length > K) {
            throw new IllegalArgumentException("a sketch holds at most " + K + " values, not " + values.length);
        }
        GuestSketch sketch = new GuestSketch();
        for (long v : values) {
            sketch.insert(v);
        }
        if (sketch.size != values.length) {
            throw new IllegalArgumentException("a sketch's values are distinct; these repeat some");
        }
        sketch.pages = pages;
        return sketch;
    }

    /**
     * The sketch as {@code samepage scan --json} prints it: {@code hash} ({@link #hash}), {@code k},
     * {@code pages}, {@code distinct_pages} and {@code values}, the kept values in hex, ascending.
     */
    public Map<String, Object> fields() {
        Map<String, Object> fields = new LinkedHashMap<>();
        fields.put("hash", hash);
        fields.put("k", K);
        fields.put("pages", pages);
        fields.put("distinct_pages", distinctPages());
        List<String> hex = new ArrayList<>(size);
        for (int i = 0; i < size; i++) {
            hex.add(Long.toHexString(mins[i]));
        }
        fields.put("values", hex);
        return fields;
    }

    /**
     * A sketch read back from its {@link #fields} (as parsed from JSON: {@code values} a list of hex
     * strings, {@code pages} a number); a sketch without {@code hash} is of {@value #FIRST_HASH}.
     *
     * @throws IllegalArgumentException naming what is wrong: a value that is not hex of at most 64 bits,
     *                                  or as {@link #of}
     */
    public static GuestSketch fromFields(Map<?, ?> fields) {
        Object pagesField = fields.containsKey("pages") ? fields.get("pages") : 0;
        if (!(fields.get("values") instanceof List<?> hex) || !(pagesField instanceof Number pages)) {
            throw new IllegalArgumentException("a sketch needs a list of values and a number of pages");
        }
        long[] values = new long[hex.size()];
        for (int i = 0; i < values.length; i++) {
            try {
                values[i] = Long.parseUnsignedLong(String.valueOf(hex.get(i)), 16);
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("sketch value " + i + " '" + hex.get(i) + "' is not 64-bit hex");
            }
        }
        GuestSketch sketch = of(values, pages.longValue());
        sketch.hash = fields.containsKey("hash") ? String.valueOf(fields.get("hash")) : FIRST_HASH;
        return sketch;
    }

    /** The page hash the values were made with: {@value #HASH} for a sketch made here. */
    public String hash() {
        return hash;
    }

    /**
     * Checks that {@code b} may be compared with {@code a}: both hashed pages alike.
     *
     * @throws IllegalArgumentException if their page hashes differ
     */
    public static void requireSameHash(GuestSketch a, GuestSketch b) {
        if (!a.hash.equals(b.hash)) {
            throw new IllegalArgumentException("a sketch of page hash " + b.hash + " does not compare with one of "
                    + a.hash + " (scan every guest with one samepage version)");
        }
    }

    /**
     * The sketch of the guests of {@code sketches} together, as one host running them all would hold
     * their pages: the bottom {@value #K} of their values (the bottom k of a union is the bottom k of the
     * members' bottom k), their pages summed. A host's sketch for placement, 2 KiB however many guests
     * it runs.
     *
     * @throws IllegalArgumentException if their page hashes differ
     * @throws java.util.NoSuchElementException if {@code sketches} is empty
     */
    public static GuestSketch union(List<GuestSketch> sketches) {
        GuestSketch union = new GuestSketch();
        union.hash = sketches.getFirst().hash;
        for (GuestSketch s : sketches) {
            requireSameHash(union, s);
            for (int i = 0; i < s.size; i++) {
                union.insert(s.mins[i]);
            }
            union.pages += s.pages;
        }
        return union;
    }

    /** Estimated distinct non-zero page contents: exact below {@value #K}, else (K - 1) / (K-th value). */
    public double distinctPages() {
        return distinct(mins, size);
    }

    /**
     * Estimated distinct non-zero page contents that {@code a} and {@code b} both hold: the pages a host
     * running both would keep once instead of twice. The Jaccard index of the two sets, estimated from
     * the bottom k of their union, times the union's estimated size.
     *
     * @throws IllegalArgumentException if their page hashes differ ({@link #requireSameHash})
     */
    public static double sharedPages(GuestSketch a, GuestSketch b) {
        requireSameHash(a, b);
        long[] union = new long[K];
        int n = 0;
        int both = 0;
        int i = 0;
        int j = 0;
        while (n < K && (i < a.size || j < b.size)) {
            long x = i < a.size ? a.mins[i] : 0;
            long y = j < b.size ? b.mins[j] : 0;
            // An exhausted side compares greater than anything left on the other.
            int c = i == a.size ? 1 : j == b.size ? -1 : Long.compareUnsigned(x, y);
            if (c == 0) {
                both++;
                i++;
                j++;
                union[n++] = x;
            } else if (c < 0) {
                i++;
                union[n++] = x;
            } else {
                j++;
                union[n++] = y;
            }
        }
        if (n == 0) {
            return 0;
        }
        // The union's bottom k is the bottom k of A and B together, and a value among them that one guest
        // holds is in that guest's own bottom k, so "in both sketches" is exact for these values.
        return (double) both / n * distinct(union, n);
    }

    private static double distinct(long[] sorted, int n) {
        if (n < K) {
            return n;
        }
        return (K - 1) / unsignedFraction(sorted[K - 1]);
    }

    /** {@code v} as a fraction of 2^64, in (0, 1]. */
    private static double unsignedFraction(long v) {
        double d = (double) (v >>> 1) * 2.0 + (v & 1);
        return (d + 1) / 18446744073709551616.0;
    }

    /** Keeps {@code v} if it is among the K smallest seen (unsigned), once. */
    private void insert(long v) {
        if (size == K && Long.compareUnsigned(v, mins[K - 1]) >= 0) {
            return;
        }
        int lo = 0;
        int hi = size;
        while (lo < hi) {
            int mid = (lo + hi) >>> 1;
            int c = Long.compareUnsigned(mins[mid], v);
            if (c == 0) {
                return;
            }
            if (c < 0) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        int end = size == K ? K - 1 : size;
        System.arraycopy(mins, lo, mins, lo + 1, end - lo);
        mins[lo] = v;
        if (size < K) {
            size++;
        }
    }

    /** Murmur3's finalizer: a bijection on 64 bits that spreads any input hash uniformly. */
    static long mix(long h) {
        h ^= h >>> 33;
        h *= 0xff51afd7ed558ccdL;
        h ^= h >>> 33;
        h *= 0xc4ceb93fe53a87cdL;
        h ^= h >>> 33;
        return h;
    }
}
