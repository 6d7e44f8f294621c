package io.samepage.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.samepage.hashing.PageHasher;
import io.samepage.hashing.Pages;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * One seed's run of {@link ModelBasedTest}: an engine, a {@link GuestModel} per guest, and a loop of
 * random steps, each applied to the engine and to the model and then checked.
 *
 * <p>Steps: writes (page-sized copies of a few shared contents, near-duplicates of them, zero pages,
 * random ranges across page boundaries), fills (whole-page zero fills among them), reads, copies
 * between guests and within one guest (overlapping, some longer than a copy chunk), full scans and
 * partial batches, {@code use_zero_pages} and {@code smart_scan} changes, {@code max_page_sharing}
 * changes (refused while frames are shared), {@code run=2} then {@code run=1}, a settle check (two
 * quiet full scans, then every page with a twin in its domain is merged), guests created and
 * destroyed, domains created. Touched ranges are read back after every step; whole guests, the
 * counters and the {@link EngineInvariants} are checked every {@value #CHECK_EVERY} steps. Every
 * failure names the seed, the step and the last steps taken.
 */
final class ModelRun {

    private static final int PAGE = Pages.PAGE_SIZE;
    private static final int CHECK_EVERY = 50;
    private static final int MAX_GUESTS = 7;
    private static final int SHARED_CONTENTS = 5;
    /**
     * The least a big copy within a guest moves: the 1 MiB Guest.copy once went by; an overlapping copy
     * this long must go the right way over many pages, and reserve their frames all at once.
     */
    private static final long COPY_CHUNK = 1L << 20;
    /** A guest larger than {@link #COPY_CHUNK}. */
    private static final int BIG_GUEST_PAGES = 300;

    private final long seed;
    private final StepLog log;
    private final SplittableRandom rnd;
    private final DedupEngine engine;
    private final PageHasher hasher;
    private final boolean shareZeroFrame;
    private final List<MergeDomain> domains = new ArrayList<>();
    private final List<GuestModel> models = new ArrayList<>();
    private final byte[][] shared = new byte[SHARED_CONTENTS][PAGE];
    private int guestsCreated;

    ModelRun(long seed) {
        this(seed, null);
    }

    /**
     * A run whose scanner hashes with {@code weakHasher} (null: the engine's own): a hasher of a handful
     * of values puts most contents under one key, so the collision trees carry the run.
     */
    ModelRun(long seed, PageHasher weakHasher) {
        this.seed = seed;
        this.log = new StepLog(seed);
        this.rnd = new SplittableRandom(seed);
        this.shareZeroFrame = rnd.nextBoolean();
        EngineContext context = new EngineContext().poolBytes(32L << 20).hashSeed(seed)
                .shareZeroFrameAcrossDomains(shareZeroFrame).customHasher(weakHasher);
        context.knobs().useZeroPages(rnd.nextBoolean()).smartScan(rnd.nextBoolean())
                .maxPageSharing(rnd.nextInt(3) == 0 ? 2 + rnd.nextInt(2) : 256);
        this.engine = DedupEngine.create(context.conclude());
        this.hasher = context.newScannerHasher();
        for (int i = 0; i < SHARED_CONTENTS - 1; i++) {
            rnd.nextBytes(shared[i]);
        }
        shared[SHARED_CONTENTS - 1][PAGE - 1] = 1;
    }

    /** Shares each scanner batch among {@code threads} threads ({@code scan_threads}); 1 is the default. */
    ModelRun scanThreads(int threads) {
        engine.knobs().scanThreads(threads);
        return this;
    }

    void execute(int steps) {
        try (engine) {
            int domainCount = 2 + rnd.nextInt(2);
            for (int d = 0; d < domainCount; d++) {
                domains.add(engine.createDomain("domain-" + d));
            }
            for (int g = 3 + rnd.nextInt(3); g > 0; g--) {
                createGuest(seed % 3 == 0 && g == 1);
            }
            for (int step = 1; step <= steps; step++) {
                log.at(step);
                doStep();
                if (step % CHECK_EVERY == 0) {
                    checkEverything();
                }
            }
            log.at(steps);
            note("final check");
            checkEverything();
            assertTrue(engine.scanner().merges() > 0, where() + ": the run merged nothing, so it proved nothing");
        } catch (Throwable t) {
            throw log.failed(t);
        }
    }

    private void doStep() {
        int r = rnd.nextInt(1000);
        if (r < 260) {
            writeSharedPages();
        } else if (r < 330) {
            writeRange();
        } else if (r < 370) {
            writeNearDuplicate();
        } else if (r < 410) {
            writeZeroPage();
        } else if (r < 490) {
            fillRange();
        } else if (r < 570) {
            copyRange();
        } else if (r < 640) {
            GuestModel m = anyGuest();
            long address = rnd.nextLong(m.size());
            note("read " + m.name() + " @" + address);
            assertRange(m, address, 1 + rnd.nextLong(Math.min(3L * PAGE, m.size() - address)));
        } else if (r < 700) {
            note("scanFullPass");
            engine.scanner().scanFullPass();
            spotCheck();
        } else if (r < 830) {
            int budget = 1 + rnd.nextInt(64);
            note("scanBatch " + budget);
            engine.scanner().scanBatch(budget);
            spotCheck();
        } else if (r < 860) {
            toggleKnob();
        } else if (r < 885) {
            changeMaxPageSharing();
        } else if (r < 900) {
            unmergeAllThenRun();
        } else if (r < 920) {
            settleAndCheckMerging();
        } else if (r < 945) {
            destroyGuest();
        } else if (r < 975) {
            createGuest(rnd.nextInt(20) == 0);
        } else if (r < 980 && domains.size() < 4) {
            note("createDomain");
            domains.add(engine.createDomain("domain-" + domains.size()));
        } else {
            note("check everything");
            checkEverything();
        }
    }

    // ---- mutations: engine first, then the model, then read the touched range back ----

    private void writeSharedPages() {
        GuestModel m = anyGuest();
        int pages = 1 + rnd.nextInt(Math.min(3, m.pages()));
        int first = rnd.nextInt(m.pages() - pages + 1);
        byte[] bytes = new byte[pages * PAGE];
        for (int i = 0; i < pages; i++) {
            if (rnd.nextInt(8) != 0) {
                System.arraycopy(shared[rnd.nextInt(SHARED_CONTENTS)], 0, bytes, i * PAGE, PAGE);
            }
        }
        write(m, (long) first * PAGE, bytes, "shared pages");
    }

    private void writeRange() {
        GuestModel m = anyGuest();
        long address = rnd.nextLong(m.size());
        int length = 1 + rnd.nextInt((int) Math.min(3L * PAGE, m.size() - address));
        byte[] bytes = new byte[length];
        if (rnd.nextBoolean()) {
            rnd.nextBytes(bytes);
        } else {
            byte[] content = shared[rnd.nextInt(SHARED_CONTENTS)];
            for (int i = 0; i < length; i++) {
                bytes[i] = content[(int) ((address + i) & (PAGE - 1))];
            }
        }
        write(m, address, bytes, "range");
    }

    private void writeNearDuplicate() {
        GuestModel m = anyGuest();
        byte[] bytes = shared[rnd.nextInt(SHARED_CONTENTS)].clone();
        bytes[rnd.nextInt(PAGE)] ^= (byte) (1 + rnd.nextInt(255));
        write(m, (long) rnd.nextInt(m.pages()) * PAGE, bytes, "near-duplicate");
    }

    private void writeZeroPage() {
        GuestModel m = anyGuest();
        write(m, (long) rnd.nextInt(m.pages()) * PAGE, new byte[PAGE], "zero page");
    }

    private void write(GuestModel m, long address, byte[] bytes, String what) {
        note("write " + what + " " + m.name() + " @" + address + " +" + bytes.length);
        m.guest.write(address, bytes, 0, bytes.length);
        System.arraycopy(bytes, 0, m.bytes, (int) address, bytes.length);
        m.markWritten(address, bytes.length, false);
        assertRange(m, address, bytes.length);
    }

    private void fillRange() {
        GuestModel m = anyGuest();
        long address;
        long length;
        if (rnd.nextBoolean()) {
            int pages = 1 + rnd.nextInt(Math.min(3, m.pages()));
            address = (long) rnd.nextInt(m.pages() - pages + 1) * PAGE;
            length = (long) pages * PAGE;
        } else {
            address = rnd.nextLong(m.size());
            length = rnd.nextLong(Math.min(3L * PAGE, m.size() - address) + 1);
        }
        byte value = rnd.nextInt(3) != 0 ? 0 : (byte) rnd.nextInt(256);
        note("fill " + m.name() + " @" + address + " +" + length + " with " + value);
        m.guest.fill(address, length, value);
        Arrays.fill(m.bytes, (int) address, (int) (address + length), value);
        m.markWritten(address, length, value == 0);
        long from = Math.max(0, address - PAGE);
        assertRange(m, from, Math.min(m.size(), address + length + PAGE) - from);
    }

    private void copyRange() {
        GuestModel src = anyGuest();
        boolean big = src.pages() >= BIG_GUEST_PAGES && rnd.nextInt(3) == 0;
        GuestModel dst = big || rnd.nextInt(3) == 0 ? src : anyGuest();
        long length;
        long from;
        long to;
        if (src == dst) {
            length = big ? COPY_CHUNK + rnd.nextLong(src.size() - COPY_CHUNK - 2L * PAGE)
                    : 1 + rnd.nextLong(Math.min(src.size(), 3L * PAGE));
            from = rnd.nextLong(src.size() - length + 1);
            long delta = rnd.nextLong(-Math.min(length, 2L * PAGE), Math.min(length, 2L * PAGE) + 1);
            to = Math.clamp(from + delta, 0, src.size() - length);
        } else if (rnd.nextBoolean()) {
            int pages = 1 + rnd.nextInt(Math.min(4, Math.min(src.pages(), dst.pages())));
            length = (long) pages * PAGE;
            from = (long) rnd.nextInt(src.pages() - pages + 1) * PAGE;
            to = (long) rnd.nextInt(dst.pages() - pages + 1) * PAGE;
        } else {
            length = rnd.nextLong(Math.min(3L * PAGE, Math.min(src.size(), dst.size())) + 1);
            from = rnd.nextLong(src.size() - length + 1);
            to = rnd.nextLong(dst.size() - length + 1);
        }
        note("copy " + src.name() + " @" + from + " -> " + dst.name() + " @" + to + " +" + length);
        src.guest.copy(from, dst.guest, to, length);
        System.arraycopy(src.bytes, (int) from, dst.bytes, (int) to, (int) length);
        dst.markWritten(to, length, false);
        assertRange(dst, to, length);
        assertRange(src, from, length);
    }

    // ---- knobs, run=2, guests and domains ----

    private void toggleKnob() {
        ScanKnobs knobs = engine.knobs();
        if (rnd.nextBoolean()) {
            note("use_zero_pages " + !knobs.useZeroPages());
            knobs.useZeroPages(!knobs.useZeroPages());
        } else {
            note("smart_scan " + !knobs.smartScan());
            knobs.smartScan(!knobs.smartScan());
        }
    }

    private void changeMaxPageSharing() {
        ScanKnobs knobs = engine.knobs();
        int old = knobs.maxPageSharing();
        int value = rnd.nextInt(10) == 0 ? rnd.nextInt(2) : 2 + rnd.nextInt(3);
        long shared = engine.counters().pagesShared();
        note("max_page_sharing " + old + " -> " + value + " with pages_shared " + shared);
        if (value < 2 || (value != old && shared > 0)) {
            DedupException refused = assertThrows(DedupException.class, () -> knobs.maxPageSharing(value),
                    where() + ": max_page_sharing " + value + " must be refused");
            assertTrue(refused.getMessage().contains(value < 2 ? "at least 2" : "unmerge first"),
                    where() + ": " + refused.getMessage());
            assertEquals(old, knobs.maxPageSharing(), where() + ": a refused value changes nothing");
        } else {
            knobs.maxPageSharing(value);
            assertEquals(value, knobs.maxPageSharing(), where());
        }
    }

    private void unmergeAllThenRun() {
        note("run=2 then run=1");
        engine.knobs().run(ScanKnobs.RUN_UNMERGE);
        engine.scanner().doWork();
        assertEquals(ScanKnobs.RUN_STOP, engine.knobs().run(), where() + ": run=2 ends at run=0");
        EngineCounters c = engine.counters();
        assertEquals(0, c.pagesShared() + c.pagesSharing() + c.ksmZeroPages(),
                where() + ": merged pages left: " + c);
        assertEquals(zeroFrames() + backedPages(), engine.framesInUse(),
                where() + ": after run=2 every written page holds its own frame again, as without merging");
        checkEverything();
        engine.knobs().run(ScanKnobs.RUN_MERGE);
    }

    /**
     * Two quiet full scans without smart_scan: KSM's liveness. Every written page with an equal
     * written twin in its domain (or all zeros, under use_zero_pages) is merged, every other
     * written page is in the unstable index, and no tracked page is volatile. Zero-merged pages are
     * in no index, so they are nobody's twin.
     */
    private void settleAndCheckMerging() {
        note("settle");
        boolean smart = engine.knobs().smartScan();
        engine.knobs().smartScan(false);
        for (int i = 0; i < 3; i++) {
            engine.scanner().scanFullPass();
        }
        if (engine.knobs().scanThreads() > 1) {
            // A page that read the stable filter while another scanner thread filed its twin's frame waits
            // a visit more: several threads settle, one needs three scans. (A page whose candidate was busy
            // in another thread is retried within its batch: ScanWorkers.retryBusy.)
            engine.scanner().scanUntilStable(Scanner.DEFAULT_MAX_FULL_SCANS_TO_SETTLE);
        }
        engine.knobs().smartScan(smart);
        Map<Integer, Map<ByteBuffer, Integer>> copies = new HashMap<>();
        for (GuestModel m : models) {
            for (int p = 0; p < m.pages(); p++) {
                if (m.backed[p] && !zeroMerged(m, p)) {
                    copies.computeIfAbsent(m.domain, d -> new HashMap<>()).merge(m.page(p), 1, Integer::sum);
                }
            }
        }
        // KSM's rule: a page merges into an equal frame with room, or pairs with an equal unmerged page to
        // start a new frame, so at most one page per content stays unmerged, and only while every frame
        // of that content maps max_page_sharing pages.
        long unmerged = 0;
        int maxSharing = engine.knobs().maxPageSharing();
        Map<Integer, Map<ByteBuffer, Integer>> leftovers = new HashMap<>();
        for (GuestModel m : models) {
            for (int p = 0; p < m.pages(); p++) {
                if (!m.backed[p]) {
                    continue;
                }
                boolean twin = !zeroMerged(m, p) && copies.get(m.domain).get(m.page(p)) > 1;
                boolean zero = engine.knobs().useZeroPages() && m.page(p).equals(ByteBuffer.wrap(new byte[PAGE]));
                if (zero && !m.guest.isMerged(p)) {
                    fail(where() + ": " + describe(m, p) + " is all zeros but is not merged");
                }
                if (twin && !m.guest.isMerged(p)) {
                    int left = leftovers.computeIfAbsent(m.domain, d -> new HashMap<>()).merge(m.page(p), 1, Integer::sum);
                    if (left > 1 || !everyFrameOfContentIsFull(m.domain, m.page(p), maxSharing)) {
                        fail(where() + ": " + describe(m, p) + " has a twin in its domain but is not merged; its twins: "
                                + twinsOf(m, p));
                    }
                }
                unmerged += m.guest.isMerged(p) ? 0 : 1;
            }
        }
        EngineCounters c = engine.counters();
        assertEquals(0, c.pagesVolatile(), where() + ": volatile pages after two quiet scans: " + c);
        assertEquals(unmerged, c.pagesUnshared(), where() + ": unique pages against pages_unshared: " + c);
    }

    /** True if every stable frame of domain {@code domain} holding {@code content} maps {@code max} pages. */
    private boolean everyFrameOfContentIsFull(int domain, ByteBuffer content, int max) {
        for (GuestModel m : models) {
            for (int p = 0; p < m.pages(); p++) {
                if (m.domain == domain && (m.guest.stateAt(p) & PageTable.STABLE) != 0 && m.page(p).equals(content)
                        && engine.pool().table().refCount(m.guest.frameAt(p)) < max) {
                    return false;
                }
            }
        }
        return true;
    }

    /** A zero-merged page maps the zero frame, which is in no index: it is no merge candidate for a twin. */
    private static boolean zeroMerged(GuestModel m, int page) {
        return (m.guest.stateAt(page) & PageTable.ZERO_MERGED) != 0;
    }

    private String twinsOf(GuestModel m, int page) {
        StringBuilder twins = new StringBuilder();
        for (GuestModel other : models) {
            for (int p = 0; p < other.pages(); p++) {
                boolean self = other == m && p == page;
                if (!self && other.domain == m.domain && other.backed[p] && !zeroMerged(other, p)
                        && other.page(p).equals(m.page(page))) {
                    twins.append(describe(other, p)).append("; ");
                }
            }
        }
        return twins.toString();
    }

    private String describe(GuestModel m, int page) {
        int frame = m.guest.frameAt(page);
        return m.name() + " page " + page + " (frame " + frame + ", refcount " + engine.pool().table().refCount(frame)
                + ", state 0x" + Integer.toHexString(m.guest.stateAt(page)) + ")";
    }

    private void destroyGuest() {
        if (models.size() <= 2) {
            return;
        }
        GuestModel m = models.remove(rnd.nextInt(models.size()));
        note("destroy " + m.name());
        m.guest.destroy();
        assertTrue(m.guest.isDestroyed(), where());
        assertThrows(DedupException.class, () -> m.guest.readByte(0),
                where() + ": a destroyed guest refuses reads");
        checkCounters();
    }

    private void createGuest(boolean big) {
        if (models.size() >= MAX_GUESTS) {
            return;
        }
        int domain = rnd.nextInt(domains.size());
        int pages = big ? BIG_GUEST_PAGES + rnd.nextInt(20) : 1 + rnd.nextInt(24);
        String name = "g" + guestsCreated++;
        note("create " + name + " of " + pages + " pages in domain " + domain);
        GuestModel m = new GuestModel(engine.createGuest(domains.get(domain), name, (long) pages * PAGE), domain);
        models.add(m);
        assertRange(m, 0, m.size());
    }

    // ---- checks ----

    private void spotCheck() {
        for (int i = 0; i < 3; i++) {
            GuestModel m = anyGuest();
            assertRange(m, (long) rnd.nextInt(m.pages()) * PAGE, PAGE);
        }
    }

    private void checkEverything() {
        for (GuestModel m : models) {
            assertRange(m, 0, m.size());
        }
        checkCounters();
        EngineInvariants.assertConsistent(engine, hasher, where());
    }

    private void checkCounters() {
        EngineCounters c = engine.counters();
        long backed = backedPages();
        long merging = 0;
        long zero = 0;
        long total = 0;
        for (GuestModel m : models) {
            GuestCounters g = m.guest.counters();
            merging += g.mergingPages();
            zero += g.zeroPages();
            total += m.pages();
        }
        String at = where() + ": " + c;
        assertTrue(c.pagesShared() <= c.pagesShared() + c.pagesSharing(), at);
        assertTrue(c.pagesShared() + c.pagesSharing() + c.ksmZeroPages() <= backed,
                at + " against " + backed + " written pages");
        assertTrue(c.ksmZeroPages() >= 0 && c.pagesVolatile() >= 0 && c.pagesUnshared() >= 0, at);
        assertEquals(c.pagesShared() + c.pagesSharing(), merging, at + ": sum of guests' merging_pages");
        assertEquals(c.ksmZeroPages(), zero, at + ": sum of guests' zero_pages");
        assertEquals(total, c.pagesTotal(), at);
        assertEquals(zeroFrames() + backed - c.pagesSharing() - c.ksmZeroPages(), engine.framesInUse(),
                at + ": framesInUse is the frames used without merging minus what merging saves");
    }

    private void assertRange(GuestModel m, long address, long length) {
        byte[] read = new byte[(int) length];
        m.guest.read(address, read, 0, read.length);
        int at = Arrays.mismatch(read, 0, read.length, m.bytes, (int) address, (int) (address + length));
        if (at >= 0) {
            long bad = address + at;
            fail(where() + ": " + m.name() + " (domain " + m.domain + ") reads " + read[at] + " at 0x"
                    + Long.toHexString(bad) + " (page " + (bad / PAGE) + "), last written " + m.bytes[(int) bad]);
        }
    }

    private long backedPages() {
        long backed = 0;
        for (GuestModel m : models) {
            for (boolean b : m.backed) {
                backed += b ? 1 : 0;
            }
        }
        return backed;
    }

    private long zeroFrames() {
        return shareZeroFrame ? 1 : domains.size();
    }

    private GuestModel anyGuest() {
        if (models.isEmpty()) {
            createGuest(false);
        }
        return models.get(rnd.nextInt(models.size()));
    }

    private void note(String what) {
        log.note(what);
    }

    private String where() {
        return log.where();
    }
}
