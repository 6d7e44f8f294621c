package io.samepage.host;

import io.samepage.hashing.PageDigest;
import io.samepage.hashing.Pages;
import java.lang.foreign.MemorySegment;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What KSM would merge among pages read once and kept as digests only: the streaming estimate of
 * {@code samepage scan --pid} and {@code --qemu}. Guests are read one after another
 * ({@link #beginGuest}, then their pages through {@link #accept}); each page is tested for all zeros
 * (a full compare) or else digested ({@link PageDigest}, 128 bits, keyed with a random seed per
 * estimator) into a {@link DigestTable}, and into its guest's placement {@link GuestSketch} by the
 * public {@link PageDigest#sketchHash}, and dropped. {@link #estimate} then derives KSM's counters at
 * steady state ({@link KsmTotals}), per guest and between guests, and gives each guest's sketch.
 *
 * <h2>What is counted</h2>
 * <ul>
 *   <li>Zero pages: with {@code use_zero_pages} each is a {@code ksm_zero_pages}; without, they are one
 *       content like any other.</li>
 *   <li>Every other content held by {@code n} pages needs {@code ceil(n / max_page_sharing)} frames
 *       ({@link KsmTotals}).</li>
 *   <li>Per guest: pages read, zero pages, and {@code merging_pages}, its pages whose content is held
 *       by at least one other page (KSM's {@code ksm_merging_pages}; it may count one page too many
 *       for a content of {@code k x max_page_sharing + 1} pages, where KSM leaves one page alone).</li>
 *   <li>Between two guests: {@code shared_contents}, the distinct non-zero contents both hold, the
 *       frames placing them on one host saves (zero pages need no partner and are left out).</li>
 *   <li>Per guest, its sketch: what {@link GuestSketch#addPage} makes of the same pages, so it compares
 *       with the sketch of a guest loaded from a file, or read on another host, where exact pairs are
 *       out of reach.</li>
 * </ul>
 *
 * <p>Cost: the sketch hash is a second loop over the page just digested, read from the cache, not a
 * third sum in the digest's loop, which C2 would not vectorize (docs/perf/sketch.md).
 *
 * <p>Trust: two pages count as one content when their 128-bit digests agree, with probability of a
 * false match at most 2^-64 per pair ({@link PageDigest}). Good enough for an estimate; never for a
 * merge, which compares in full.
 *
 * <p>Memory: the table's 30 bytes per expected page ({@link DigestTable}), per guest a few longs and a
 * sketch (2 KiB), per guest set two ints ({@link GuestSets}); no page is kept. The hot loop allocates nothing per page.
 * Not thread safe: a single writer.
 */
public final class PageDigestEstimator {

    /** Guests beyond which no pairwise figures are kept (the pair matrix grows with their square). */
    public static final int MAX_PAIRWISE_GUESTS = 256;

    private static final int PAGE = Pages.PAGE_SIZE;

    private final DigestTable table;
    private final GuestSets sets = new GuestSets();
    private final PageDigest digest;
    private final long[] out = new long[2];
    private final List<String> names = new ArrayList<>();
    private final List<GuestSketch> sketches = new ArrayList<>();
    private final boolean sketching;
    private GuestSketch sketch;
    private long[] pagesRead = new long[8];
    private long[] zeroPages = new long[8];
    private long[] mergingPages = new long[8];
    private int guest = -1;

    /** An estimator sized for about {@code expectedPages} resident pages, keyed with a random seed, making sketches. */
    public PageDigestEstimator(long expectedPages) {
        this(expectedPages, true);
    }

    /**
     * The same; with {@code sketches} false no placement sketch is made ({@link GuestEstimate#sketch()} is
     * null), which spares the second hash of every page where nobody reads the sketches.
     */
    public PageDigestEstimator(long expectedPages, boolean sketches) {
        this(expectedPages, new SecureRandom().nextLong(), sketches);
    }

    PageDigestEstimator(long expectedPages, long seed) {
        this(expectedPages, seed, true);
    }

    PageDigestEstimator(long expectedPages, long seed, boolean sketches) {
        this.table = new DigestTable(expectedPages);
        this.digest = new PageDigest(seed);
        this.sketching = sketches;
    }

    /** Starts the next guest; its pages follow through {@link #accept}. Returns its index. */
    public int beginGuest(String name) {
        guest++;
        sets.begin(guest);
        names.add(name);
        sketch = sketching ? new GuestSketch() : null;
        sketches.add(sketch);
        if (guest == pagesRead.length) {
            pagesRead = Arrays.copyOf(pagesRead, guest * 2);
            zeroPages = Arrays.copyOf(zeroPages, guest * 2);
            mergingPages = Arrays.copyOf(mergingPages, guest * 2);
        }
        return guest;
    }

    /** Counts the whole pages of {@code pages} (its size a multiple of 4096) for the current guest. */
    public void accept(MemorySegment pages) {
        if (guest < 0) {
            throw new IllegalStateException("beginGuest first");
        }
        long count = pages.byteSize() / PAGE;
        for (long i = 0; i < count; i++) {
            long offset = i * PAGE;
            if (Pages.isZeroPage(pages, offset)) {
                pagesRead[guest]++;
                zeroPages[guest]++;
                if (sketching) {
                    sketch.addZeroPages(1);
                }
                continue;
            }
            digest.digest(pages, offset, out);
            add(out[0], out[1], sketching ? PageDigest.sketchHash(pages, offset) : 0);
        }
    }

    /** Counts one non-zero page of digest {@code (high, low)} and sketch hash {@code sketchHash} for the current guest. */
    void add(long high, long low, long sketchHash) {
        int g = guest;
        if (sketching) {
            sketch.addHash(sketchHash);
        }
        pagesRead[g]++;
        int slot = table.slotOf(high, low);
        long count = table.count(slot);
        int set;
        if (count == 0) {
            set = sets.withCurrent(0);
        } else {
            int before = table.guestSet(slot);
            if (count == 1) {
                int first = sets.newest(before);
                mergingPages[first >= 0 ? first : g]++;
            }
            mergingPages[g]++;
            set = sets.withCurrent(before);
        }
        table.set(slot, Math.min(DigestTable.MAX_COUNT, count + 1), set);
    }

    /** The bytes the digest table takes now (the estimator's per-page memory). */
    public long tableBytes() {
        return table.bytes();
    }

    /**
     * KSM's counters at steady state for the pages counted so far.
     *
     * @throws IllegalArgumentException if {@code maxPageSharing < 2} (KSM's own rule)
     */
    public Estimate estimate(int maxPageSharing, boolean useZeroPages) {
        if (maxPageSharing < 2) {
            throw new IllegalArgumentException("max_page_sharing must be at least 2, not " + maxPageSharing);
        }
        int guests = guest + 1;
        KsmTotals totals = new KsmTotals();
        long[] setContents = new long[sets.size()];
        long[] overflow = {0};
        table.forEach((count, set) -> {
            totals.content(count, maxPageSharing);
            if (set == GuestSets.OVERFLOW) {
                overflow[0]++;
            } else {
                setContents[set]++;
            }
        });
        long zero = 0;
        long read = 0;
        for (int g = 0; g < guests; g++) {
            zero += zeroPages[g];
            read += pagesRead[g];
        }
        if (!useZeroPages && zero > 0) {
            totals.content(zero, maxPageSharing);
        }
        List<GuestEstimate> perGuest = new ArrayList<>(guests);
        for (int g = 0; g < guests; g++) {
            long merging = mergingPages[g] + (!useZeroPages && zero >= 2 ? zeroPages[g] : 0);
            GuestSketch s = sketches.get(g);
            perGuest.add(new GuestEstimate(names.get(g), pagesRead[g], zeroPages[g], merging,
                    useZeroPages ? zeroPages[g] : 0, s == null ? null : GuestSketch.of(s.values(), s.pages())));
        }
        return new Estimate(maxPageSharing, useZeroPages, read, zero, table.size() + (zero > 0 ? 1 : 0),
                totals.pagesShared, totals.pagesSharing, totals.pagesUnshared, useZeroPages ? zero : 0,
                totals.stableNodeChains, totals.stableNodeDups, List.copyOf(perGuest),
                pairs(guests, setContents), overflow[0] == 0 && guests <= MAX_PAIRWISE_GUESTS, table.bytes());
    }

    private List<Pair> pairs(int guests, long[] setContents) {
        if (guests > MAX_PAIRWISE_GUESTS) {
            return List.of();
        }
        long[] shared = new long[guests * guests];
        int[] members = new int[guests];
        for (int s = 1; s < setContents.length; s++) {
            if (setContents[s] == 0) {
                continue;
            }
            int[] n = {0};
            sets.members(s, m -> members[n[0]++] = m);
            for (int i = 0; i < n[0]; i++) {
                for (int j = 0; j < n[0]; j++) {
                    if (members[i] < members[j]) {
                        shared[members[i] * guests + members[j]] += setContents[s];
                    }
                }
            }
        }
        List<Pair> pairs = new ArrayList<>();
        for (int a = 0; a < guests; a++) {
            for (int b = a + 1; b < guests; b++) {
                pairs.add(new Pair(a, b, shared[a * guests + b]));
            }
        }
        return List.copyOf(pairs);
    }

    /**
     * One guest's figures.
     *
     * @param name         as given to {@link #beginGuest}
     * @param pagesRead    resident pages read
     * @param zeroPages    of those, pages of zeros
     * @param mergingPages of those, pages KSM would map to a shared frame (zero pages included when
     *                     {@code use_zero_pages} is off)
     * @param ksmZeroPages pages KSM would map to the zero page ({@code use_zero_pages} on)
     * @param sketch       its placement sketch, of the pages read ({@code pages} is {@code pagesRead}); a
     *                     copy, which the estimator no longer changes; null if it makes no sketches
     */
    public record GuestEstimate(String name, long pagesRead, long zeroPages, long mergingPages, long ksmZeroPages,
                                GuestSketch sketch) {
    }

    /** Two guests (indexes, {@code a < b}) and the distinct non-zero contents both hold. */
    public record Pair(int a, int b, long sharedContents) {
    }

    /**
     * The estimate, in 4 KiB pages, under KSM's counter names where they mean the same.
     *
     * @param pairs            every pair of guests, in order; empty past {@link #MAX_PAIRWISE_GUESTS}
     * @param pairsComplete    false if the pairs are missing or undercount (too many guest sets)
     * @param tableBytes       the digest table's memory
     */
    public record Estimate(int maxPageSharing, boolean useZeroPages, long pagesRead, long zeroPages,
                           long distinctContents, long pagesShared, long pagesSharing, long pagesUnshared,
                           long ksmZeroPages, long stableNodeChains, long stableNodeDups,
                           List<GuestEstimate> guests, List<Pair> pairs, boolean pairsComplete, long tableBytes) {

        /** Pages that would need no frame of their own: {@code pages_sharing + ksm_zero_pages}. */
        public long savedPages() {
            return pagesSharing + ksmZeroPages;
        }

        /** KSM's counters under their sysfs names, in sysfs order, then the estimate's own figures. */
        public Map<String, Long> counters() {
            Map<String, Long> c = new LinkedHashMap<>();
            c.put("pages_shared", pagesShared);
            c.put("pages_sharing", pagesSharing);
            c.put("pages_unshared", pagesUnshared);
            c.put("ksm_zero_pages", ksmZeroPages);
            c.put("stable_node_chains", stableNodeChains);
            c.put("stable_node_dups", stableNodeDups);
            c.put("pages_read", pagesRead);
            c.put("pages_of_zeros", zeroPages);
            c.put("distinct_contents", distinctContents);
            c.put("digest_table_bytes", tableBytes);
            return c;
        }
    }
}
