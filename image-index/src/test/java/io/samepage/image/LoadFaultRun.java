package io.samepage.image;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.samepage.core.DedupEngine;
import io.samepage.core.DedupException;
import io.samepage.core.EngineContext;
import io.samepage.core.EngineInvariants;
import io.samepage.core.FaultyHost;
import io.samepage.core.Guest;
import io.samepage.core.MergeDomain;
import io.samepage.core.ScannerThread;
import io.samepage.core.StepLog;
import io.samepage.hashing.Pages;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;

/**
 * One seed of {@link ImageLoaderFaultTest}: image loads on one to three threads into a small engine on
 * a host that fails at random (dedup-core's {@link FaultyHost}: remaps, mapping creation, frame releases
 * and populates), with a pool too small for some loads, from an image of one to three files whose
 * blocks repeat, are zero or are unique, and whose bytes on disk are sometimes changed after the index
 * was built. Some steps run two loads at once, each on its own thread with its own loader, racing to
 * install and register the same blocks. Between loads, guests are written, destroyed and scanned, in
 * two domains.
 *
 * <p>A load that completes must leave its guest reading the image. A load stopped by a refusal
 * ({@link DedupException} {@code POOL_EXHAUSTED} or {@code HOST_REFUSED}) or by a changed block
 * ({@link ImageIndexException} {@code BLOCK_MISMATCH}) must leave the image's blocks before some block
 * and nothing after it: the guest never reads bytes the index does not name. After every step every
 * guest is read back whole, no staging guest is left, and dedup-core's {@link EngineInvariants} checks
 * the engine (frames in use, the resident registry, the indexes and counters). With a concurrent
 * scanner a second thread scans all the while and is held for the invariant check after each step.
 */
final class LoadFaultRun {

    private static final int PAGE = Pages.PAGE_SIZE;
    private static final int CONTENTS = 6;
    private static final int MAX_GUESTS = 4;
    private static final Set<DedupException.Kind> REFUSALS =
            EnumSet.of(DedupException.Kind.POOL_EXHAUSTED, DedupException.Kind.HOST_REFUSED);

    private final StepLog log;
    private final boolean concurrent;
    private final SplittableRandom rnd;
    private final FaultyHost host;
    private final EngineContext context;
    private final DedupEngine engine;
    private final ImageIndex index;
    /** The image as the index names it: every file's blocks, each file padded to whole blocks. */
    private final byte[] image;
    private final List<Model> models = new ArrayList<>();
    private final List<MergeDomain> domains = new ArrayList<>();
    /** A byte of the image changed on disk, and where; -1 if none is. */
    private long changedAt = -1;
    private int created;
    private int loadsWhole;
    private int loadsStopped;

    private record Model(Guest guest, byte[] bytes) {
    }

    LoadFaultRun(long seed, boolean concurrentScanner, Path dir) throws IOException {
        this.log = new StepLog(seed);
        this.concurrent = concurrentScanner;
        this.rnd = new SplittableRandom(seed);
        byte[][] contents = new byte[CONTENTS][PAGE];
        for (byte[] content : contents) {
            rnd.nextBytes(content);
        }
        int files = 1 + rnd.nextInt(3);
        for (int f = 0; f < files; f++) {
            int blocks = 8 + rnd.nextInt(120);
            byte[] file = new byte[blocks * PAGE];
            for (int b = 0; b < blocks; b++) {
                int kind = f == 0 && b == 0 ? 9 : rnd.nextInt(10);     // never an image of zeros only
                if (kind >= 5) {
                    System.arraycopy(contents[rnd.nextInt(CONTENTS)], 0, file, b * PAGE, PAGE);
                } else if (kind >= 1) {
                    byte[] unique = new byte[PAGE];
                    rnd.nextBytes(unique);
                    System.arraycopy(unique, 0, file, b * PAGE, PAGE);
                }
            }
            int length = rnd.nextInt(3) == 0 ? file.length - 1 - rnd.nextInt(PAGE - 1) : file.length;
            Files.write(dir.resolve("part-" + f + ".img"), Arrays.copyOf(file, length));
        }
        this.index = ImageIndex.build(dir);
        ImageLayout layout = index.layout();
        this.image = new byte[Math.toIntExact(layout.blockCount() * PAGE)];
        for (ImageLayout.Extent extent : layout.extents()) {
            byte[] bytes = Files.readAllBytes(layout.pathOf(extent));
            System.arraycopy(bytes, 0, image, (int) extent.imageOffset(), bytes.length);
        }
        // A load into a mapped guest makes a mapping call per block: two to four refusals expected in each.
        this.host = new FaultyHost(seed * 31 + 11, (int) Math.max(4, layout.blockCount() / (2 + rnd.nextInt(3))));
        // Room for one or two mapped guests' runs (each as large as the guest: DedupEngine.createGuest;
        // later ones fit where frames freed back to the system leave a run), then from too few frames
        // for one domain's first load to enough for both domains' and the writes.
        List<Integer> firsts = firstOccurrences(image);
        int distinct = firsts.size();
        long frames = (1 + rnd.nextInt(2)) * (layout.blockCount() + 4) + distinct * 3 / 4 + rnd.nextInt(2 * distinct) + 16;
        this.context = new EngineContext().poolBytes(frames * PAGE).hashSeed(seed)
                .warmFrames(rnd.nextInt(3) * 4).frameBacking(host.backing());
        context.knobs().maxPageSharing(rnd.nextBoolean() ? 2 + rnd.nextInt(3) : 256);    // low: loads map fewer, read more
        context.conclude();
        this.engine = DedupEngine.create(context);
        // A block whose content no earlier block holds changed on disk: the first load reads it and
        // stops there (unless the byte is in a file's padding, not on disk), until a step puts it back.
        changedAt = (long) firsts.get(rnd.nextInt(firsts.size())) * PAGE + rnd.nextInt(PAGE / 2);
        rewrite(changedAt, (byte) (image[(int) changedAt] ^ 0x5a));
    }

    /** The non-zero blocks whose content no earlier block holds. */
    private static List<Integer> firstOccurrences(byte[] image) {
        Set<ByteBuffer> seen = new HashSet<>();
        List<Integer> firsts = new ArrayList<>();
        for (int at = 0; at < image.length; at += PAGE) {
            if (Arrays.mismatch(image, at, at + PAGE, new byte[PAGE], 0, PAGE) >= 0
                    && seen.add(ByteBuffer.wrap(image, at, PAGE).slice())) {
                firsts.add(at / PAGE);
            }
        }
        return firsts;
    }

    void execute(int steps) {
        try (engine; index) {
            domains.add(engine.createDomain("d0"));
            domains.add(engine.createDomain("d1"));
            ScannerThread scanner = ScannerThread.startIf(concurrent, engine, 16);
            try (scanner) {
                for (int step = 1; step <= steps && scanner.failure() == null; step++) {
                    log.at(step);
                    doStep();
                    checkReads();
                    scanner.whileHeld(() -> {
                        assertEquals(models.size(), engine.guests().size(), where() + ": a staging guest was left: "
                                + engine.guests().stream().map(Guest::name).toList());
                        EngineInvariants.assertConsistentWithHasherOf(context, engine, where());
                    });
                }
            }
            if (scanner.failure() != null) {
                throw new AssertionError(where() + ": the concurrent scanner failed", scanner.failure());
            }
            assertTrue(loadsWhole > 0 && loadsStopped > 0, where() + ": " + loadsWhole + " loads completed and "
                    + loadsStopped + " stopped, so this proved less than it should");
        } catch (Throwable t) {
            throw log.failed(t);
        }
    }

    private void doStep() throws IOException, InterruptedException {
        int r = rnd.nextInt(100);
        if (r < 30) {
            load();
        } else if (r < 40) {
            loadTwoAtOnce();
        } else if (r < 46 && changedAt < 0) {
            changeABlockOnDisk();
        } else if (r < 75 && !models.isEmpty()) {
            writePage(models.get(rnd.nextInt(models.size())));
        } else if (r < 82 && !models.isEmpty()) {
            destroyAny();
        } else if (!concurrent) {
            note("scanFullPass");
            try {
                engine.scanner().scanFullPass();
            } catch (DedupException e) {
                assertEquals(DedupException.Kind.HOST_REFUSED, e.kind(), where() + ": the scan failed: " + e.getMessage());
            }
        }
    }

    /** Destroys a guest; the failing host may refuse to take a mapped one's mapping down, and then it stays. */
    private void destroyAny() {
        Model m = models.get(rnd.nextInt(models.size()));
        note("destroy " + m.guest.name());
        try {
            m.guest.destroy();
            models.remove(m);
        } catch (DedupException e) {
            assertEquals(DedupException.Kind.HOST_REFUSED, e.kind(), where() + ": the destroy failed: " + e.getMessage());
            assertFalse(m.guest.isDestroyed(), where() + ": a refused destroy leaves the guest live");
            note("destroy refused: " + e.getMessage());
        }
    }

    /** A load to run: a new guest, where the image goes in it, and the loader's threads. */
    private record Load(Model model, long at, int threads) {
    }

    /** Loads the whole image into a new guest (mapped or not), at a page offset, on one to three threads. */
    private void load() throws IOException {
        if (models.size() >= MAX_GUESTS) {
            destroyAny();
        }
        Load load = newLoad();
        if (load != null) {
            settle(load, attempt(load));
            restoreMaybe();
        }
    }

    /**
     * Two loads at once, into two new guests (of one domain or of both), each on its own thread with a
     * loader of its own: they race to read, install and register the same blocks.
     */
    private void loadTwoAtOnce() throws IOException, InterruptedException {
        while (models.size() > MAX_GUESTS - 2) {
            destroyAny();
        }
        Load first = newLoad();
        Load second = newLoad();
        Throwable[] stopped = new Throwable[2];
        Thread other = second == null ? null : Thread.ofPlatform().start(() -> stopped[1] = attempt(second));
        if (first != null) {
            stopped[0] = attempt(first);
        }
        if (other != null) {
            other.join();
        }
        if (first != null) {
            settle(first, stopped[0]);
        }
        if (second != null) {
            settle(second, stopped[1]);
        }
        restoreMaybe();
    }

    /** Creates the guest of a load; null if the engine refused it. */
    private Load newLoad() {
        boolean mapped = created == 0 || rnd.nextBoolean();   // the first fits the pool: its loads can be refused by the host
        int threads = 1 + rnd.nextInt(3);
        long at = (long) rnd.nextInt(4) * PAGE;
        MergeDomain domain = domains.get(rnd.nextInt(domains.size()));
        String name = "g" + created++ + (mapped ? "m" : "s");
        note("load into " + name + " of " + domain.name() + " at " + at + " on " + threads + " threads"
                + (changedAt >= 0 ? ", image changed at byte " + changedAt : ""));
        Guest guest;
        try {
            guest = mapped ? engine.createGuest(domain, name, at + image.length, host.mapping())
                    : engine.createGuest(domain, name, at + image.length);
        } catch (DedupException e) {
            assertTrue(REFUSALS.contains(e.kind()), where() + ": guest creation refused with kind " + e.kind());
            note(name + " refused: " + e.getMessage());
            return null;
        }
        Model m = new Model(guest, new byte[(int) (at + image.length)]);
        models.add(m);
        return new Load(m, at, threads);
    }

    /** Runs {@code load} on this thread; what stopped it, or null if it completed. */
    private Throwable attempt(Load load) {
        try (ImageLoader loader = new ImageLoader(index, engine, load.threads)) {
            loader.loadAll(load.model.guest, load.at);
            return null;
        } catch (Throwable t) {
            return t;
        }
    }

    /** Checks a load's outcome and takes it into the model. */
    private void settle(Load load, Throwable stopped) {
        Model m = load.model;
        String name = m.guest.name();
        if (stopped == null) {
            System.arraycopy(image, 0, m.bytes, (int) load.at, image.length);
            loadsWhole++;
            note(name + " loaded whole");
            return;
        }
        boolean expected = stopped instanceof DedupException refused ? REFUSALS.contains(refused.kind())
                : stopped instanceof ImageIndexException changed && changed.kind() == ImageIndexException.Kind.BLOCK_MISMATCH
                && changedAt >= 0;
        if (!expected) {
            throw new AssertionError(where() + ": the load into " + name + " failed", stopped);
        }
        loadsStopped++;
        int loaded = blocksLoaded(m, (int) load.at);
        note(name + " stopped after " + loaded + " blocks");
        System.arraycopy(image, 0, m.bytes, (int) load.at, loaded * PAGE);
    }

    /** After a load stopped, puts the changed byte back half the time, so later loads can complete. */
    private void restoreMaybe() throws IOException {
        if (changedAt >= 0 && loadsStopped > 0 && rnd.nextBoolean()) {
            restoreTheChangedBlock();
        }
    }

    /**
     * The blocks a stopped load left in {@code m}: the image's up to some block, and nothing (zeros, the
     * guest being new) from there on.
     */
    private int blocksLoaded(Model m, int at) {
        byte[] read = new byte[image.length];
        m.guest.read(at, read, 0, read.length);
        int first = Arrays.mismatch(read, image);
        int loaded = first < 0 ? image.length / PAGE : first / PAGE;
        for (int i = loaded * PAGE; i < read.length; i++) {
            if (read[i] != 0) {
                fail(where() + ": the stopped load left byte " + i + " of the image, in block " + i / PAGE
                        + ", after block " + loaded + " where it stopped: it reads " + read[i] + ", the image holds " + image[i]);
            }
        }
        return loaded;
    }

    /** Changes one byte of a non-zero block on disk, keeping the file's length: the index still names the old bytes. */
    private void changeABlockOnDisk() throws IOException {
        long at = rnd.nextInt(image.length);
        if (index.isZero(at / PAGE)) {
            return;
        }
        note("change byte " + at + " of the image on disk");
        rewrite(at, (byte) (image[(int) at] ^ 0x5a));
        changedAt = at;
    }

    private void restoreTheChangedBlock() throws IOException {
        note("restore byte " + changedAt + " of the image on disk");
        rewrite(changedAt, image[(int) changedAt]);
        changedAt = -1;
    }

    private void rewrite(long imageByte, byte value) throws IOException {
        ImageLayout layout = index.layout();
        ImageLayout.Extent extent = layout.extents().get(layout.extentOfBlock(imageByte / PAGE));
        long offset = imageByte - extent.imageOffset();
        if (offset >= extent.length()) {
            return;     // the padding after a file's end: not on disk
        }
        try (RandomAccessFile file = new RandomAccessFile(layout.pathOf(extent).toFile(), "rw")) {
            file.seek(offset);
            file.write(value);
        }
    }

    private void writePage(Model m) {
        int page = rnd.nextInt(m.bytes.length / PAGE);
        byte[] bytes = new byte[PAGE];
        if (rnd.nextBoolean()) {
            System.arraycopy(image, rnd.nextInt(image.length / PAGE) * PAGE, bytes, 0, PAGE);
        } else {
            rnd.nextBytes(bytes);
        }
        note("write page " + page + " of " + m.guest.name());
        try {
            m.guest.write((long) page * PAGE, bytes, 0, PAGE);
        } catch (DedupException e) {
            assertTrue(REFUSALS.contains(e.kind()), where() + ": the write was refused with kind " + e.kind());
            return;
        }
        System.arraycopy(bytes, 0, m.bytes, page * PAGE, PAGE);
    }

    private void checkReads() {
        for (Model m : models) {
            byte[] read = new byte[m.bytes.length];
            m.guest.read(0, read, 0, read.length);
            int at = Arrays.mismatch(read, m.bytes);
            if (at >= 0) {
                fail(where() + ": " + m.guest.name() + " reads " + read[at] + " at byte " + at + " (page " + at / PAGE
                        + "), expected " + m.bytes[at]);
            }
        }
    }

    private void note(String what) {
        log.note(what);
    }

    private String where() {
        return log.where();
    }
}
