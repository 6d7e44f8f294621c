package io.samepage.core;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.samepage.hashing.ContentDigest;
import io.samepage.hashing.PageHasher;
import io.samepage.hashing.Pages;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;

/**
 * One seed of {@link FaultInjectionTest}: a small engine on a host that fails at random
 * ({@link FaultyHost}: every call of a mapped guest's {@link PageMapping}, frame releases and
 * populates), with a tiny pool, software and mapped guests in two domains, writes of a few bytes, of a
 * page and of runs of pages large enough to take their frames ahead, image installs and resident
 * mappings through {@link PageInstaller}, write faults as a VMM handles them, scans, {@code run=2},
 * knob changes and guests created and destroyed. Every step is applied to the engine and to
 * byte-array models; a step the engine refuses must throw a {@link DedupException} of an expected kind
 * and change nothing the guests can read. After every step every guest is read back whole,
 * {@link EngineInvariants} checks the structure and recounts the counters, and the host's view of
 * each mapped guest must agree with the engine's ({@link RecordingMapping#assertAgreesWith}).
 * Failures name the seed, the step and the last steps.
 *
 * <p>With a concurrent scanner, a second thread scans batches all the while (refused merges allowed,
 * any other failure fails the run); guests are still read back after every step, while the scanner
 * merges, and every {@value #QUIET_EVERY} steps the scanner is held between batches for the invariant
 * and host-view checks, which need a quiescent engine.
 */
final class FaultModelRun {

    private static final int PAGE = Pages.PAGE_SIZE;
    private static final int CONTENTS = 4;
    private static final int QUIET_EVERY = 20;
    private static final Set<DedupException.Kind> REFUSALS =
            EnumSet.of(DedupException.Kind.POOL_EXHAUSTED, DedupException.Kind.HOST_REFUSED);

    private final StepLog log;
    private final SplittableRandom rnd;
    private final FaultyHost host;
    private final DedupEngine engine;
    private final PageHasher checkHasher;
    private final PageInstaller installer;
    private final List<MergeDomain> domains = new ArrayList<>();
    private final List<GuestModel> models = new ArrayList<>();
    /** The host's view of each mapped guest ({@link FaultyHost#lastMapping}). */
    private final java.util.Map<Guest, RecordingMapping> hostMappings = new java.util.HashMap<>();
    private final byte[][] contents = new byte[CONTENTS][PAGE];
    private final byte[][] digests = new byte[CONTENTS][];
    private int created;
    private long refused;
    private final boolean concurrent;

    FaultModelRun(long seed) {
        this(seed, false);
    }

    FaultModelRun(long seed, boolean concurrentScanner) {
        this.concurrent = concurrentScanner;
        this.log = new StepLog(seed);
        this.rnd = new SplittableRandom(seed);
        this.host = new FaultyHost(seed * 31 + 7, 4 + rnd.nextInt(12));
        boolean weak = rnd.nextBoolean();
        EngineContext context = new EngineContext().poolBytes((96L + rnd.nextInt(160)) * PAGE).hashSeed(seed)
                .warmFrames(rnd.nextInt(3) * 4).frameBacking(host.backing())
                .customHasher(weak ? new WeakHashers.Few(3) : null);
        context.knobs().useZeroPages(rnd.nextBoolean()).smartScan(false)
                .maxPageSharing(rnd.nextBoolean() ? 2 + rnd.nextInt(2) : 256);
        this.engine = DedupEngine.create(context.conclude());
        this.checkHasher = weak ? null : context.newScannerHasher();   // installs file under the engine's own hash
        this.installer = engine.newPageInstaller();
        for (int c = 0; c < CONTENTS; c++) {
            rnd.nextBytes(contents[c]);
            contents[c][0] = (byte) c;
            digests[c] = new ContentDigest().digest(MemorySegment.ofArray(contents[c]), 0);
        }
    }

    /** Shares each scanner batch among {@code threads} threads ({@code scan_threads}); 1 is the default. */
    FaultModelRun scanThreads(int threads) {
        engine.knobs().scanThreads(threads);
        return this;
    }

    void execute(int steps) {
        try (engine) {
            domains.add(engine.createDomain("d0"));
            domains.add(engine.createDomain("d1"));
            for (int g = 0; g < 3; g++) {
                createGuest();
            }
            ScannerThread scanner = ScannerThread.startIf(concurrent, engine, 16);
            try (scanner) {
                for (int step = 1; step <= steps && scanner.failure() == null; step++) {
                    log.at(step);
                    doStep();
                    checkReads();
                    if (!concurrent || step % QUIET_EVERY == 0) {
                        scanner.whileHeld(() -> {
                            EngineInvariants.assertConsistent(engine, checkHasher, where());
                            checkHostMappings();
                        });
                    }
                }
            }
            if (scanner.failure() != null) {
                throw new AssertionError(where() + ": the concurrent scanner failed", scanner.failure());
            }
            assertTrue(host.refusals() > 0 && refused > 0, where() + ": the host never failed, so this proved nothing");
            assertTrue(engine.scanner().merges() > 0, where() + ": nothing merged, so this proved nothing");
        } catch (Throwable t) {
            throw log.failed(t);
        }
    }

    private void doStep() {
        int r = rnd.nextInt(100);
        if (concurrent && r >= 56 && r < 87) {
            r = rnd.nextInt(56);         // the scanner thread scans; run=2 needs it too: guest steps instead
        }
        if (r < 25) {
            GuestModel m = anyGuest();
            if (m.pages() >= FramePool.POPULATE_MIN_FRAMES && rnd.nextInt(4) == 0) {
                writeRun(m);
                return;
            }
            int page = rnd.nextInt(m.pages());
            byte[] bytes = rnd.nextInt(4) == 0 ? randomPage() : contents[rnd.nextInt(CONTENTS)];
            attempt("write page " + page + " of " + m.name(), () -> m.guest.write((long) page * PAGE, bytes, 0, PAGE),
                    () -> System.arraycopy(bytes, 0, m.bytes, page * PAGE, PAGE));
        } else if (r < 29 && hostMappings.containsKey(anyGuest().guest)) {
            writeFault();
        } else if (r < 33) {
            GuestModel m = anyGuest();
            int page = rnd.nextInt(m.pages());
            int at = page * PAGE + rnd.nextInt(PAGE - 8);
            byte[] bytes = {(byte) rnd.nextInt(), (byte) rnd.nextInt(), 0, 1};
            attempt("write 4 bytes at " + at + " of " + m.name(), () -> m.guest.write(at, bytes, 0, bytes.length),
                    () -> System.arraycopy(bytes, 0, m.bytes, at, bytes.length));
        } else if (r < 40) {
            GuestModel m = anyGuest();
            int page = rnd.nextInt(m.pages());
            attempt("fill page " + page + " of " + m.name() + " with zeros", () -> m.guest.fill((long) page * PAGE, PAGE, (byte) 0),
                    () -> Arrays.fill(m.bytes, page * PAGE, (page + 1) * PAGE, (byte) 0));
        } else if (r < 48) {
            GuestModel m = anyGuest();
            if (rnd.nextInt(4) == 0) {
                installRun(m);
            } else {
                install(m, rnd.nextInt(m.pages()));
            }
        } else if (r < 56) {
            GuestModel m = anyGuest();
            int page = rnd.nextInt(m.pages());
            int c = rnd.nextInt(CONTENTS);
            boolean[] mapped = new boolean[1];
            attempt("map resident content " + c + " at page " + page + " of " + m.name(),
                    () -> mapped[0] = installer.mapResident(m.guest, (long) page * PAGE, digests[c], 0),
                    () -> {
                        if (mapped[0]) {
                            System.arraycopy(contents[c], 0, m.bytes, page * PAGE, PAGE);
                        }
                    });
        } else if (r < 76) {
            int budget = 1 + rnd.nextInt(48);
            attempt("scanBatch " + budget, () -> engine.scanner().scanBatch(budget), () -> { });
        } else if (r < 84) {
            attempt("scanFullPass", () -> engine.scanner().scanFullPass(), () -> { });
        } else if (r < 87) {
            engine.knobs().run(ScanKnobs.RUN_UNMERGE);
            attempt("run=2", () -> engine.scanner().doWork(), () -> { });
            assertTrue(engine.knobs().run() == ScanKnobs.RUN_STOP, where() + ": run returns to 0, done or refused");
            engine.knobs().run(ScanKnobs.RUN_MERGE);
        } else if (r < 90) {
            note("use_zero_pages toggled");
            engine.knobs().useZeroPages(!engine.knobs().useZeroPages());
        } else if (r < 92) {
            int value = 2 + rnd.nextInt(3);
            note("max_page_sharing " + value);
            try {
                engine.knobs().maxPageSharing(value);
            } catch (DedupException e) {
                assertTrue(e.kind() == DedupException.Kind.KNOB_REFUSED && engine.counters().pagesShared() > 0, where());
            }
        } else if (r < 96 && models.size() > 1) {
            GuestModel m = models.get(rnd.nextInt(models.size()));
            attempt("destroy " + m.name(), m.guest::destroy, () -> models.remove(m));   // refused: still live
        } else if (models.size() < 5) {
            createGuest();
        }
    }

    /** Installs one of the contents at {@code page} of {@code m}, an attempt of its own. */
    private void install(GuestModel m, int page) {
        int c = rnd.nextInt(CONTENTS);
        attempt("install content " + c + " at page " + page + " of " + m.name(), () -> {
            if (!installer.install(m.guest, (long) page * PAGE, into -> MemorySegment.copy(
                    MemorySegment.ofArray(contents[c]), 0, into, 0, PAGE), digests[c], 0)) {
                fail("the verified content did not install");
            }
        }, () -> System.arraycopy(contents[c], 0, m.bytes, page * PAGE, PAGE));
    }

    /**
     * Takes frames ahead for 16 to 24 installs, as a loader's batch does ({@link PageInstaller#takeFramesAhead};
     * a pool that cannot spare them takes none), installs into half of that to all of it, pages of
     * {@code m} in a row (wrapping), each install refused or not on its own, then gives back what the
     * installs did not use: the invariants after the step see every frame mapped or back in the pool.
     */
    private void installRun(GuestModel m) {
        int count = FramePool.POPULATE_MIN_FRAMES + rnd.nextInt(9);
        int installs = count - rnd.nextInt(count / 2 + 1);
        int first = rnd.nextInt(m.pages());
        note("take frames ahead for " + count + " installs, then " + installs);
        installer.takeFramesAhead(count);
        try {
            for (int i = 0; i < installs; i++) {
                install(m, (first + i) % m.pages());
            }
        } finally {
            installer.returnFramesAhead();
        }
    }

    /**
     * Writes a run of at least {@link FramePool#POPULATE_MIN_FRAMES} pages of {@code m} in one call, maybe
     * starting and ending inside a page: a write large enough to take its frames ahead
     * ({@link GuestWrites}). Refused by the pool, it changes nothing. Refused by the host's remap of
     * some page, it stops there, as {@link Guest#write} says: the guest must read the new bytes
     * before that page and the old bytes from it on, and the model takes what was written.
     */
    private void writeRun(GuestModel m) {
        int pages = FramePool.POPULATE_MIN_FRAMES + rnd.nextInt(m.pages() - FramePool.POPULATE_MIN_FRAMES + 1);
        int first = rnd.nextInt(m.pages() - pages + 1);
        int head = rnd.nextBoolean() ? 0 : rnd.nextInt(PAGE);
        int tail = rnd.nextBoolean() ? 0 : rnd.nextInt(PAGE);
        byte[] bytes = new byte[pages * PAGE];
        for (int p = 0; p < pages; p++) {
            byte[] content = rnd.nextInt(4) == 0 ? randomPage() : contents[rnd.nextInt(CONTENTS)];
            System.arraycopy(content, 0, bytes, p * PAGE, PAGE);
        }
        int at = first * PAGE + head;
        int length = pages * PAGE - head - tail;
        note("write " + length + " bytes at " + at + " of " + m.name() + " (" + pages + " pages)");
        try {
            m.guest.write(at, bytes, head, length);
        } catch (DedupException e) {
            if (e.kind() == DedupException.Kind.POOL_EXHAUSTED) {
                refused++;
                return;
            }
            if (e.kind() != DedupException.Kind.HOST_REFUSED) {
                throw new AssertionError(where() + ": refused with kind " + e.kind(), e);
            }
            refused++;
            System.arraycopy(bytes, head, m.bytes, at, writtenBeforeRefusal(m, at, bytes, head, length));
            return;
        }
        System.arraycopy(bytes, head, m.bytes, at, length);
    }

    /**
     * Bytes of a refused write that reached {@code m}: the write stops at the page the host refused, so
     * the guest reads the new bytes up to some page boundary and the model's old bytes after it.
     */
    private int writtenBeforeRefusal(GuestModel m, int at, byte[] bytes, int from, int length) {
        byte[] read = new byte[length];
        m.guest.read(at, read, 0, length);
        int written = Arrays.mismatch(read, 0, length, bytes, from, from + length);
        if (written < 0) {
            return length;      // the pages it did not write held those bytes already
        }
        written = Math.max(0, (at + written) / PAGE * PAGE - at);  // back to the start of the page it stopped at
        if (Arrays.mismatch(read, written, length, m.bytes, at + written, at + length) >= 0) {
            fail(where() + ": the refused write changed bytes past the page at " + (at + written) + ", where it stopped");
        }
        return written;
    }

    /** Runs an engine step; if it is refused it must say so with its kind and change nothing. */
    private void attempt(String what, Runnable engineStep, Runnable modelStep) {
        note(what);
        try {
            engineStep.run();
        } catch (DedupException e) {
            if (!REFUSALS.contains(e.kind())) {
                throw new AssertionError(where() + ": refused with kind " + e.kind(), e);
            }
            refused++;
            return;
        }
        modelStep.run();
    }

    private void createGuest() {
        boolean mapped = created == 0 || rnd.nextBoolean();    // one mapped guest at least: its mappings can be refused
        int pages = mapped && rnd.nextInt(3) == 0 ? FramePool.POPULATE_MIN_FRAMES + rnd.nextInt(17)   // large writes
                : 4 + rnd.nextInt(mapped ? 12 : 24);
        int domain = rnd.nextInt(domains.size());
        String name = "g" + created++ + (mapped ? "m" : "s");
        note("create " + name + " (" + pages + " pages)");
        try {
            Guest guest = mapped ? engine.createGuest(domains.get(domain), name, (long) pages * PAGE, host.mapping())
                    : engine.createGuest(domains.get(domain), name, (long) pages * PAGE);
            models.add(new GuestModel(guest, domain));
            if (mapped) {
                hostMappings.put(guest, host.lastMapping());
            }
        } catch (DedupException e) {
            if (!REFUSALS.contains(e.kind())) {
                throw new AssertionError(where() + ": guest creation refused with kind " + e.kind(), e);
            }
            refused++;
        }
    }

    /**
     * A KVM guest's write that faulted on a page of a mapped guest, as a VMM handles it: {@link
     * Guest#breakSharing}, then the store is retried, so the page must be writable on the host after it
     * (else the vCPU would fault on it forever). It changes no byte. With the scanner running, it may
     * have merged the page again, or be comparing it (read-only, under the page's stripe, which this
     * takes to look).
     */
    private void writeFault() {
        List<GuestModel> mapped = models.stream().filter(m -> hostMappings.containsKey(m.guest)).toList();
        GuestModel m = mapped.get(rnd.nextInt(mapped.size()));
        int page = rnd.nextInt(m.pages());
        RecordingMapping host = hostMappings.get(m.guest);
        attempt("write fault on page " + page + " of " + m.name(), () -> m.guest.breakSharing((long) page * PAGE), () -> {
            java.util.concurrent.locks.StampedLock stripe = m.guest.stripeOf(page);
            long stamp = stripe.readLock();
            try {
                boolean writable;
                synchronized (host) {
                    writable = host.writable[page] || concurrent && (m.guest.isMerged(page) || host.leftReadOnly[page]);
                }
                if (!writable) {
                    fail(where() + ": " + m.name() + " page " + page + " is still read-only after its write fault");
                }
            } finally {
                stripe.unlockRead(stamp);
            }
        });
    }

    /** What the host maps agrees with the engine for every mapped guest ({@link RecordingMapping#assertAgreesWith}). */
    private void checkHostMappings() {
        for (GuestModel m : models) {
            RecordingMapping host = hostMappings.get(m.guest);
            if (host != null) {
                host.assertAgreesWith(m.guest, where());
            }
        }
    }

    private void checkReads() {
        for (GuestModel m : models) {
            byte[] read = new byte[(int) m.size()];
            m.guest.read(0, read, 0, read.length);
            int at = Arrays.mismatch(read, m.bytes);
            if (at >= 0) {
                fail(where() + ": " + m.name() + " reads " + read[at] + " at byte " + at + " (page " + at / PAGE
                        + "), last written " + m.bytes[at]);
            }
        }
    }

    private GuestModel anyGuest() {
        if (models.isEmpty()) {
            createGuest();
        }
        return models.isEmpty() ? anyGuest() : models.get(rnd.nextInt(models.size()));
    }

    private byte[] randomPage() {
        byte[] page = new byte[PAGE];
        rnd.nextBytes(page);
        return page;
    }

    private void note(String what) {
        log.note(what);
    }

    private String where() {
        return log.where();
    }
}
