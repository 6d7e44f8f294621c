package io.samepage.image;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.samepage.core.DedupEngine;
import io.samepage.core.DedupException;
import io.samepage.core.EngineContext;
import io.samepage.core.EngineCounters;
import io.samepage.core.Guest;
import io.samepage.core.MergeDomain;
import io.samepage.hashing.Pages;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A loader with worker threads loads exactly what a loader with one thread does, fails exactly where
 * and how it does, and leaves no thread behind.
 */
class ImageLoaderThreadsTest {

    private static final int PAGE = Pages.PAGE_SIZE;
    private static final int WORKERS = 4;

    @TempDir
    Path temp;

    /**
     * A directory of three files, 700 blocks: many batches, so the workers run ahead of the loading
     * thread. {@code a}: 400 random blocks with zero blocks among them; {@code b}: 250 blocks, every
     * third a copy of a block of {@code a} or of {@code b} itself, the rest random; {@code c}: 50 blocks
     * and a tail.
     */
    private Path image() throws IOException {
        Path dir = Files.createDirectories(temp.resolve("image"));
        byte[] a = ImageIndexTest.randomBytes(400 * PAGE, 21);
        for (int z = 17; z < 400; z += 41) {
            java.util.Arrays.fill(a, z * PAGE, (z + 1) * PAGE, (byte) 0);
        }
        byte[] b = ImageIndexTest.randomBytes(250 * PAGE, 22);
        for (int i = 3; i < 250; i += 3) {
            byte[] from = i % 2 == 0 ? a : b;
            System.arraycopy(from, (i % 2 == 0 ? (i * 7) % 400 : i / 3) * PAGE, b, i * PAGE, PAGE);
        }
        Files.write(dir.resolve("a"), a);
        Files.write(dir.resolve("b"), b);
        Files.write(dir.resolve("c"), ImageIndexTest.randomBytes(50 * PAGE + 123, 23));
        return dir;
    }

    /** What one load left behind: its stats or its error, every page of the guest, and the counters. */
    private record Outcome(String result, byte[] memory, EngineCounters counters, long residentFrames,
            List<String> guests) {

        /** The counters that say where pages and frames are; metadata bytes are left out (table sizes). */
        String pages() {
            return List.of(counters.pagesShared(), counters.pagesSharing(), counters.pagesUnshared(),
                    counters.pagesVolatile(), counters.ksmZeroPages(), counters.pagesTotal(), counters.framesInUse(),
                    residentFrames).toString();
        }
    }

    private static Outcome load(ImageIndex index, int threads) {
        try (DedupEngine engine = DedupEngine.create(new EngineContext().poolBytes(16L << 20).hashSeed(1).conclude());
                ImageLoader loader = new ImageLoader(index, engine, threads)) {
            MergeDomain domain = engine.createDomain("tenant");
            Guest guest = engine.createGuest(domain, "g", index.blockCount() * PAGE);
            String result;
            try {
                LoadStats s = loader.loadAll(guest, 0);
                result = List.of(s.blocksRead(), s.blocksMapped(), s.zeroBlocks(), s.bytesNotRead()).toString();
            } catch (ImageIndexException e) {
                result = e.kind() + ": " + e.getMessage();
            }
            byte[] memory = new byte[(int) index.blockCount() * PAGE];
            guest.read(0, memory, 0, memory.length);
            return new Outcome(result, memory, engine.counters(), domain.residentFrames(),
                    engine.guests().stream().map(Guest::name).toList());
        }
    }

    private static void assertSameOutcome(Outcome one, Outcome workers) {
        assertEquals(one.result(), workers.result());
        assertArrayEquals(one.memory(), workers.memory(), "the guest holds the same bytes");
        assertEquals(one.pages(), workers.pages(), "the same pages shared and frames in use");
        assertEquals(List.of("g"), workers.guests(), "the staging guest is gone");
    }

    @Test
    void workersLoadTheSameBlocksIntoTheSameFramesAsOneThread() throws IOException {
        Path image = image();
        try (ImageIndex index = ImageIndex.build(image)) {
            Outcome one = load(index, 1);
            Outcome workers = load(index, WORKERS);
            assertSameOutcome(one, workers);
            assertEquals(index.blockCount() - index.zeroBlocks() - DistinctBlocks.count(index),
                    Long.parseLong(one.result().split(", ")[1]), "every duplicate block mapped, none read twice");
        }
    }

    @Test
    void aLaterGuestLoadedByWorkersReadsNothing() throws IOException {
        Path image = image();
        try (ImageIndex index = ImageIndex.build(image);
                DedupEngine engine = DedupEngine.create(new EngineContext().poolBytes(16L << 20).hashSeed(1).conclude());
                ImageLoader loader = new ImageLoader(index, engine, WORKERS)) {
            MergeDomain domain = engine.createDomain("tenant");
            loader.loadAll(engine.createGuest(domain, "first", index.blockCount() * PAGE), 0);
            long frames = engine.framesInUse();
            Guest later = engine.createGuest(domain, "later", index.blockCount() * PAGE);
            LoadStats stats = loader.loadAll(later, 0);
            assertEquals(0, stats.blocksRead());
            assertEquals(index.blockCount(), stats.blocks());
            assertEquals(frames, engine.framesInUse());
        }
    }

    /** Flips one bit of {@code block} of {@code file}, keeping its modification time (a bit-rotted image). */
    private static void flipBitOfBlock(Path file, int block) throws IOException {
        FileTime mtime = Files.getLastModifiedTime(file);
        byte[] bytes = Files.readAllBytes(file);
        bytes[block * PAGE + 5] ^= 1;
        Files.write(file, bytes);
        Files.setLastModifiedTime(file, mtime);
    }

    /**
     * The workers' CPU time is there to count: the density suite's (c) counted the loading thread's alone
     * while the workers read and hashed every block, so its pages per CPU-second came out several-fold high.
     */
    @Test
    void theWorkersCpuTimeIsCountedAndOneThreadHasNone() throws IOException {
        Path image = image();
        try (ImageIndex index = ImageIndex.build(image);
                DedupEngine engine = DedupEngine.create(new EngineContext().poolBytes(16L << 20).hashSeed(1).conclude());
                ImageLoader workers = new ImageLoader(index, engine, WORKERS);
                ImageLoader alone = new ImageLoader(index, engine, 1)) {
            MergeDomain domain = engine.createDomain("tenant");
            assertEquals(0, alone.workerCpuNanos(), "one thread: the loading thread's own time counts it");
            long before = workers.workerCpuNanos();
            workers.loadAll(engine.createGuest(domain, "first", index.blockCount() * PAGE), 0);
            assertTrue(workers.workerCpuNanos() > before, "the workers read and hashed: " + workers.workerCpuNanos());
        }
    }

    @Test
    void aMismatchFoundOnAWorkerEndsTheLoadAtThatBlockAsOnOneThread() throws IOException {
        Path image = image();
        try (ImageIndex index = ImageIndex.build(image)) {
            flipBitOfBlock(image.resolve("a"), 300);
            Outcome one = load(index, 1);
            Outcome workers = load(index, WORKERS);
            assertTrue(one.result().startsWith("BLOCK_MISMATCH: " + image.resolve("a") + ": block 300 "), one.result());
            assertSameOutcome(one, workers);
            byte[] zeros = new byte[PAGE];
            for (int b = 300; b < index.blockCount(); b++) {
                assertArrayEquals(zeros, java.util.Arrays.copyOfRange(workers.memory(), b * PAGE, (b + 1) * PAGE),
                        "block " + b + " at or after the mismatch was not loaded");
            }
            assertFalse(java.util.Arrays.equals(zeros, java.util.Arrays.copyOfRange(workers.memory(), 299 * PAGE,
                    300 * PAGE)), "the block before it was");
        }
    }

    @Test
    void aFileCutShortFailsOnAWorkerAtTheSameBlockAsOnOneThread() throws IOException {
        Path image = image();
        try (ImageIndex index = ImageIndex.build(image)) {
            Path b = image.resolve("b");
            byte[] bytes = Files.readAllBytes(b);
            Files.write(b, java.util.Arrays.copyOf(bytes, 100 * PAGE));
            Outcome one = load(index, 1);
            Outcome workers = load(index, WORKERS);
            assertTrue(one.result().startsWith("BLOCK_MISMATCH: " + b + ": the file is shorter than the index says "
                    + "(block 500)"), one.result());
            assertSameOutcome(one, workers);
        }
    }

    @Test
    void aPoolExhaustedOnAWorkerNamesTheLoadedGuestItsAddressAndTheBlock() throws IOException {
        Path image = Files.write(temp.resolve("disk.img"), ImageIndexTest.randomBytes(200 * PAGE, 4));
        long base = 0x100000;
        try (ImageIndex index = ImageIndex.build(image);
                DedupEngine engine = DedupEngine.create(new EngineContext().poolBytes(100L * PAGE).hashSeed(1).conclude());
                ImageLoader loader = new ImageLoader(index, engine, 2)) {
            Guest guest = engine.createGuest(engine.createDomain("tenant"), "vm1", 1000L * PAGE);
            DedupException exhausted = assertThrows(DedupException.class, () -> loader.loadAll(guest, base));
            assertEquals(DedupException.Kind.POOL_EXHAUSTED, exhausted.kind());
            Matcher m = Pattern.compile("host frame pool exhausted: no frame to load guest vm1's page at 0x([0-9a-f]+)"
                    + " \\(block (\\d+)\\)").matcher(exhausted.getMessage());
            assertTrue(m.matches(), exhausted.getMessage());
            long block = Long.parseLong(m.group(2));
            assertEquals(base + block * PAGE, Long.parseLong(m.group(1), 16), exhausted.getMessage());
            DedupException staged = assertInstanceOf(DedupException.class, exhausted.getCause(), "the worker's own error");
            assertEquals(DedupException.Kind.POOL_EXHAUSTED, staged.kind());
            byte[] bytes = Files.readAllBytes(image);
            byte[] page = new byte[PAGE];
            guest.read(base + (block - 1) * PAGE, page, 0, PAGE);
            assertArrayEquals(java.util.Arrays.copyOfRange(bytes, (int) (block - 1) * PAGE, (int) block * PAGE), page,
                    "the block before it was loaded");
            guest.read(base + block * PAGE, page, 0, PAGE);
            assertArrayEquals(new byte[PAGE], page, "the block it names was not");
            assertEquals(List.of("vm1"), engine.guests().stream().map(Guest::name).toList(), "the staging guest is gone");
        }
    }

    private static List<Thread> workerThreads() {
        return Thread.getAllStackTraces().keySet().stream()
                .filter(t -> t.getName().startsWith(LoadWorkers.THREAD_NAME + "-") && t.isAlive()).toList();
    }

    @Test
    void closeEndsEveryWorkerThread() throws IOException {
        Path image = image();
        List<Thread> before = workerThreads();
        try (ImageIndex index = ImageIndex.build(image);
                DedupEngine engine = DedupEngine.create(new EngineContext().poolBytes(16L << 20).hashSeed(1).conclude())) {
            List<Thread> started;
            try (ImageLoader loader = new ImageLoader(index, engine, 3)) {
                loader.loadAll(engine.createGuest(engine.createDomain("tenant"), "g", index.blockCount() * PAGE), 0);
                started = workerThreads().stream().filter(t -> !before.contains(t)).toList();
                assertEquals(3, started.size(), "the loader's own workers");
            }
            for (Thread thread : started) {
                assertFalse(thread.isAlive(), thread.getName() + " still runs after close");
            }
            try (ImageLoader single = new ImageLoader(index, engine, 1)) {
                assertEquals(1, single.threads());
                assertEquals(before.size(), workerThreads().size(), "one thread: no worker");
            }
        }
    }

    @Test
    void aClosedLoaderRefusesToLoadInsteadOfWaitingForItsStoppedWorkers() throws IOException {
        Path image = image();
        try (ImageIndex index = ImageIndex.build(image);
                DedupEngine engine = DedupEngine.create(new EngineContext().poolBytes(16L << 20).hashSeed(1).conclude())) {
            ImageLoader loader = new ImageLoader(index, engine, WORKERS);
            loader.close();
            Guest guest = engine.createGuest(engine.createDomain("tenant"), "g", index.blockCount() * PAGE);
            IllegalStateException refused = assertThrows(IllegalStateException.class, () -> loader.loadAll(guest, 0));
            assertTrue(refused.getMessage().contains("is closed"), refused.getMessage());
        }
    }

    @Test
    void aThreadCountOutsideOneToTheMaximumIsRefused() throws IOException {
        Path image = image();
        try (ImageIndex index = ImageIndex.build(image);
                DedupEngine engine = DedupEngine.create(new EngineContext().poolBytes(16L << 20).hashSeed(1).conclude())) {
            for (int threads : new int[] {0, -1, ImageLoader.MAX_THREADS + 1}) {
                IllegalArgumentException refused = assertThrows(IllegalArgumentException.class,
                        () -> new ImageLoader(index, engine, threads));
                assertTrue(refused.getMessage().startsWith("threads must be 1"), refused.getMessage());
                assertTrue(refused.getMessage().endsWith("not " + threads), refused.getMessage());
            }
        }
    }
}
