package io.samepage.core;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.samepage.hashing.PageHasher;
import io.samepage.hashing.Pages;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

/**
 * One seed of {@link AccessPathModelTest}: guests read and written through {@link GuestAccess} (every
 * width, any alignment, bulk, within and across pages) and through {@link Guest}, against byte-array
 * models, while a scanner thread merges all the while. The guests hold few distinct page contents and
 * the steps often write a page back to one of them, so pages merge, break and merge again under cached
 * translations. The host may fail at random ({@link FaultyHost}: remaps, protections, mapping creation,
 * frame releases) and the pool is tiny: a refused step must throw {@code POOL_EXHAUSTED} or
 * {@code HOST_REFUSED} and change nothing readable.
 *
 * <p>Every read through an access is checked against the model at once, while the scanner runs. After
 * every step every guest is read back whole through its access (scanner running), then the scanner is
 * held between batches and {@link EngineInvariants} checks the structure and recounts the counters.
 */
final class AccessModelRun {

    private static final int PAGE = Pages.PAGE_SIZE;
    private static final int CONTENTS = 3;
    private static final int[] WIDTHS = {1, 2, 4, 8};

    private final StepLog log;
    private final SplittableRandom rnd;
    private final FaultyHost host;
    private final DedupEngine engine;
    private final PageHasher checkHasher;
    private final List<MergeDomain> domains = new ArrayList<>();
    private final List<GuestModel> models = new ArrayList<>();
    /** The host's view of each mapped guest ({@link FaultyHost#lastMapping}). */
    private final java.util.Map<Guest, RecordingMapping> hostMappings = new java.util.LinkedHashMap<>();
    private final List<GuestAccess> accesses = new ArrayList<>();
    private final byte[][] contents = new byte[CONTENTS][PAGE];
    private long refused;
    private long fastReads;

    AccessModelRun(long seed, boolean failingHost) {
        this.log = new StepLog(seed);
        this.rnd = new SplittableRandom(seed);
        this.host = new FaultyHost(seed * 17 + 3, failingHost ? 6 + rnd.nextInt(12) : 0);
        EngineContext context = new EngineContext().poolBytes((64L + rnd.nextInt(64)) * PAGE).hashSeed(seed)
                .warmFrames(rnd.nextInt(3) * 4).frameBacking(host.backing());
        context.knobs().useZeroPages(rnd.nextBoolean()).smartScan(false)
                .maxPageSharing(rnd.nextBoolean() ? 2 + rnd.nextInt(2) : 256);
        this.engine = DedupEngine.create(context.conclude());
        this.checkHasher = context.newScannerHasher();
        for (byte[] content : contents) {
            rnd.nextBytes(content);
        }
    }

    /** Shares each scanner batch among {@code threads} threads ({@code scan_threads}); 1 is the default. */
    AccessModelRun scanThreads(int threads) {
        engine.knobs().scanThreads(threads);
        return this;
    }

    void execute(int steps) {
        try (engine) {
            domains.add(engine.createDomain("d0"));
            domains.add(engine.createDomain("d1"));
            for (int g = 0; g < 4; g++) {
                createGuest(g);
            }
            ScannerThread scanner = ScannerThread.startIf(true, engine, 8);
            try (scanner) {
                for (int step = 1; step <= steps && scanner.failure() == null; step++) {
                    log.at(step);
                    doStep();
                    checkReads();
                    scanner.whileHeld(() -> {
                        EngineInvariants.assertConsistent(engine, checkHasher, where());
                        hostMappings.forEach((guest, host) -> host.assertAgreesWith(guest, where()));
                    });
                }
            }
            if (scanner.failure() != null) {
                throw new AssertionError(where() + ": the scanner failed", scanner.failure());
            }
            assertTrue(engine.scanner().merges() > 0, where() + ": nothing merged, so this proved nothing");
            assertTrue(fastReads > 0, where() + ": no read went through the access path");
        } catch (Throwable t) {
            throw log.failed(t);
        }
    }

    private void createGuest(int g) {
        boolean mapped = rnd.nextInt(3) == 0;
        int pages = 2 + rnd.nextInt(6);
        int domain = g % 2;
        String name = "g" + g + (mapped ? "m" : "s");
        note("create " + name + " (" + pages + " pages)");
        Guest guest = mapped ? engine.createGuest(domains.get(domain), name, (long) pages * PAGE, healthyMapping())
                : engine.createGuest(domains.get(domain), name, (long) pages * PAGE);
        models.add(new GuestModel(guest, domain));
        accesses.add(guest.access());
        if (mapped) {
            hostMappings.put(guest, host.lastMapping());
        }
    }

    /** Creating the guests must not fail: the run needs them. Later remaps still may. */
    private PageMapping.Factory healthyMapping() {
        PageMapping.Factory failing = host.mapping();
        return (first, pages) -> {
            for (int attempt = 0; ; attempt++) {
                try {
                    return failing.create(first, pages);
                } catch (IllegalStateException injected) {
                    if (attempt > 100) {
                        throw injected;
                    }
                }
            }
        };
    }

    private void doStep() {
        int g = rnd.nextInt(models.size());
        GuestModel m = models.get(g);
        GuestAccess access = accesses.get(g);
        int r = rnd.nextInt(100);
        if (r < 25) {
            int page = rnd.nextInt(m.pages());
            byte[] bytes = contents[rnd.nextInt(CONTENTS)];
            attempt("access write of content at page " + page + " of " + m.name(),
                    () -> access.write((long) page * PAGE, bytes, 0, PAGE), m, (long) page * PAGE, bytes);
        } else if (r < 50) {
            int width = WIDTHS[rnd.nextInt(WIDTHS.length)];
            long at = rnd.nextLong(m.size() - width + 1);
            long value = rnd.nextInt(3) == 0 ? rnd.nextLong() : modelValue(m, at, width);   // often rewrites what is there
            byte[] bytes = littleEndian(value, width);
            attempt("access write of " + width + " bytes at " + at + " of " + m.name(), () -> {
                switch (width) {
                    case 1 -> access.writeByte(at, (byte) value);
                    case 2 -> access.writeShort(at, (short) value);
                    case 4 -> access.writeInt(at, (int) value);
                    default -> access.writeLong(at, value);
                }
            }, m, at, bytes);
        } else if (r < 60) {
            int length = 1 + rnd.nextInt(2 * PAGE);
            long at = rnd.nextLong(Math.max(1, m.size() - length + 1));
            int len = (int) Math.min(length, m.size() - at);
            byte[] bytes = new byte[len];
            for (int i = 0; i < len; i++) {
                bytes[i] = contents[(int) ((at + i) / PAGE % CONTENTS)][(int) ((at + i) % PAGE)];
            }
            attempt("access bulk write of " + len + " bytes at " + at + " of " + m.name(),
                    () -> access.write(at, bytes, 0, len), m, at, bytes);
        } else if (r < 70) {
            int page = rnd.nextInt(m.pages());
            byte[] bytes = contents[rnd.nextInt(CONTENTS)];
            attempt("guest write of content at page " + page + " of " + m.name(),
                    () -> m.guest.write((long) page * PAGE, bytes, 0, PAGE), m, (long) page * PAGE, bytes);
        } else if (r < 76) {
            int page = rnd.nextInt(m.pages());
            attempt("guest fill of page " + page + " of " + m.name() + " with zeros",
                    () -> m.guest.fill((long) page * PAGE, PAGE, (byte) 0), m, (long) page * PAGE, new byte[PAGE]);
        } else if (r < 80) {
            note("flush " + m.name());
            access.flush();
        } else {
            for (int i = 0; i < 16; i++) {
                int width = WIDTHS[rnd.nextInt(WIDTHS.length)];
                long at = rnd.nextLong(m.size() - width + 1);
                checkRead(m, access, at, width);
            }
        }
    }

    /** Runs an engine step that writes {@code bytes} at {@code at}; refused, it must say why and change nothing. */
    private void attempt(String what, Runnable engineStep, GuestModel m, long at, byte[] bytes) {
        note(what);
        try {
            engineStep.run();
        } catch (DedupException e) {
            if (e.kind() != DedupException.Kind.POOL_EXHAUSTED && e.kind() != DedupException.Kind.HOST_REFUSED) {
                throw new AssertionError(where() + ": refused with kind " + e.kind(), e);
            }
            refused++;
            if (e.kind() == DedupException.Kind.HOST_REFUSED && m.guest.isMapped()
                    && at / PAGE != (at + bytes.length - 1) / PAGE) {
                adoptWrittenPrefix(m, at, bytes);
            }
            return;
        }
        System.arraycopy(bytes, 0, m.bytes, (int) at, bytes.length);
    }

    /**
     * A mapped guest's write across pages stops at the page whose remap the host refused
     * ({@link DedupException}): the pages before it hold the new bytes, that page and the rest the old.
     */
    private void adoptWrittenPrefix(GuestModel m, long at, byte[] bytes) {
        boolean stopped = false;
        long end = at + bytes.length;
        for (long from = at; from < end; from = (from / PAGE + 1) * PAGE) {
            int chunk = (int) (Math.min(end, (from / PAGE + 1) * PAGE) - from);
            byte[] read = new byte[chunk];
            m.guest.read(from, read, 0, chunk);
            boolean isNew = Arrays.equals(read, 0, chunk, bytes, (int) (from - at), (int) (from - at) + chunk);
            boolean isOld = Arrays.equals(read, 0, chunk, m.bytes, (int) from, (int) from + chunk);
            if (!isOld && (!isNew || stopped)) {
                fail(where() + ": " + m.name() + "'s refused write left page " + from / PAGE + " neither old nor new"
                        + (stopped ? " after a page it did not write" : ""));
            }
            if (isNew && !stopped) {
                System.arraycopy(read, 0, m.bytes, (int) from, chunk);
            } else {
                stopped = true;
            }
        }
    }

    private void checkRead(GuestModel m, GuestAccess access, long at, int width) {
        long read = switch (width) {
            case 1 -> access.readByte(at) & 0xFFL;
            case 2 -> access.readShort(at) & 0xFFFFL;
            case 4 -> access.readInt(at) & 0xFFFF_FFFFL;
            default -> access.readLong(at);
        };
        fastReads++;
        long expected = modelValue(m, at, width);
        if (read != expected) {
            fail(where() + ": " + m.name() + " reads 0x" + Long.toHexString(read) + " (" + width + " bytes at " + at
                    + ", page " + at / PAGE + ") through its access, last written 0x" + Long.toHexString(expected));
        }
    }

    private void checkReads() {
        for (int g = 0; g < models.size(); g++) {
            GuestModel m = models.get(g);
            byte[] read = new byte[(int) m.size()];
            accesses.get(g).read(0, read, 0, read.length);
            int at = Arrays.mismatch(read, m.bytes);
            if (at >= 0) {
                fail(where() + ": " + m.name() + " reads " + read[at] + " at byte " + at + " (page " + at / PAGE
                        + ") through its access, last written " + m.bytes[at]);
            }
            for (int page = 0; page < m.pages(); page++) {
                checkRead(m, accesses.get(g), (long) page * PAGE + rnd.nextInt(PAGE - 8), WIDTHS[rnd.nextInt(WIDTHS.length)]);
            }
        }
    }

    private static long modelValue(GuestModel m, long at, int width) {
        long value = 0;
        for (int i = width - 1; i >= 0; i--) {
            value = value << 8 | (m.bytes[(int) at + i] & 0xFF);
        }
        return value;
    }

    private static byte[] littleEndian(long value, int width) {
        byte[] bytes = new byte[width];
        for (int i = 0; i < width; i++) {
            bytes[i] = (byte) (value >>> (8 * i));
        }
        return bytes;
    }

    private void note(String what) {
        log.note(what);
    }

    private String where() {
        return log.where();
    }

    long refused() {
        return refused;
    }
}
