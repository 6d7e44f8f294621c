package io.samepage.image;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.samepage.core.DedupEngine;
import io.samepage.core.DedupException;
import io.samepage.core.EngineContext;
import io.samepage.core.EngineInvariants;
import io.samepage.core.Guest;
import io.samepage.core.MergeDomain;
import io.samepage.core.PageMapping;
import io.samepage.hashing.Pages;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Seeded random corruption of every region of an index file: each damaged file is either refused
 * with one {@link ImageIndexException} of kind FOREIGN, VERSION or CORRUPT, naming the file, or (if
 * the damage is undone by chance) opens with exactly the original content. No other exception, no
 * crash, no read outside the file. Replay a run with {@code -Dsamepage.seed=N}.
 */
class IndexCorruptionTest {

    private static final long SEED = Long.getLong("samepage.seed", System.nanoTime());
    private static final int TRIALS = 1500;
    private static final Set<ImageIndexException.Kind> REFUSALS =
            EnumSet.of(ImageIndexException.Kind.FOREIGN, ImageIndexException.Kind.VERSION, ImageIndexException.Kind.CORRUPT);

    @TempDir
    Path temp;

    @Test
    void everyDamagedIndexIsRefusedWithOneClearErrorOrReadsAsTheOriginal() throws IOException {
        Path root = Files.createDirectories(temp.resolve("tree"));
        Files.write(root.resolve("a.bin"), ImageIndexTest.randomBytes(5 * Pages.PAGE_SIZE + 17, 1));
        Files.createDirectories(root.resolve("b"));
        Files.write(root.resolve("b/c.bin"), new byte[0]);
        Files.createDirectories(root.resolve("d"));
        Files.write(root.resolve("d/e.bin"), new byte[3 * Pages.PAGE_SIZE]);
        Path good = temp.resolve("good.idx");
        String rootDigest;
        try (ImageIndex index = ImageIndex.build(root)) {
            index.writeTo(good);
            rootDigest = index.rootDigestHex();
        }
        byte[] original = Files.readAllBytes(good);
        SplittableRandom random = new SplittableRandom(SEED);
        Path damaged = temp.resolve("damaged.idx");
        int refused = 0;
        for (int trial = 0; trial < TRIALS; trial++) {
            byte[] bytes = damage(original, random, trial);
            Files.write(damaged, bytes);
            try (ImageIndex opened = ImageIndex.open(damaged)) {
                assertEquals(rootDigest, opened.rootDigestHex(), "trial " + trial + " seed " + SEED);
                assertTrue(java.util.Arrays.equals(original, bytes),
                        "a changed file opened as valid: trial " + trial + " (replay with -Dsamepage.seed=" + SEED + ")");
            } catch (ImageIndexException e) {
                refused++;
                assertTrue(REFUSALS.contains(e.kind()), "trial " + trial + ": " + e.kind() + " " + e.getMessage());
                assertTrue(e.getMessage().startsWith(damaged.toString()), e.getMessage());
                assertEquals(-1, e.getMessage().indexOf('\n'), "one line: " + e.getMessage());
            } catch (RuntimeException e) {
                fail("trial " + trial + " (replay with -Dsamepage.seed=" + SEED + ") threw " + e, e);
            }
        }
        assertTrue(refused > TRIALS * 9 / 10, "only " + refused + " of " + TRIALS + " damaged files were refused");
    }

    @Test
    void aFileThatIsNotAnIndexIsCalledForeign() throws IOException {
        Path text = Files.writeString(temp.resolve("notes.txt"), "hello, this is not an index\n");
        try (ImageIndex ignored = ImageIndex.open(text)) {
            fail("a text file opened as an index");
        } catch (ImageIndexException e) {
            assertEquals(ImageIndexException.Kind.FOREIGN, e.kind());
        }
        Path empty = Files.write(temp.resolve("empty.idx"), new byte[0]);
        try (ImageIndex ignored = ImageIndex.open(empty)) {
            fail("an empty file opened as an index");
        } catch (ImageIndexException e) {
            assertEquals(ImageIndexException.Kind.FOREIGN, e.kind());
        }
    }

    /**
     * Found by {@link IndexFileFuzzTest}: a layout whose file name holds a newline and a terminal escape,
     * with consistent checksums but an extent outside the image, was refused with the raw name in the
     * message, which then spanned several lines and could drive the operator's terminal.
     */
    @Test
    void aCorruptLayoutIsReportedOnOneLineWhateverItsFileNames() throws IOException {
        Path root = Files.createDirectories(temp.resolve("tree"));
        String name = "line one\nline two\033[2J.bin";
        Files.write(root.resolve(name), new byte[] {1});
        Path index = temp.resolve("named.idx");
        try (ImageIndex built = ImageIndex.build(root)) {
            built.writeTo(index);
        }
        byte[] bytes = Files.readAllBytes(index);
        java.nio.ByteBuffer.wrap(bytes).order(java.nio.ByteOrder.LITTLE_ENDIAN)
                .putLong(IndexFile.HEADER_LENGTH + 4 + 8, 2 * Pages.PAGE_SIZE);
        Files.write(index, IndexFileFuzzTest.withChecksumsFixed(bytes));
        try (ImageIndex ignored = ImageIndex.open(index)) {
            fail("an extent longer than the image opened");
        } catch (ImageIndexException e) {
            assertEquals(ImageIndexException.Kind.CORRUPT, e.kind());
            assertTrue(e.getMessage().contains("lies outside the image"), e.getMessage());
            assertFalse(java.util.regex.Pattern.compile("\\R|\\p{Cntrl}").matcher(e.getMessage()).find(),
                    "one printable line: " + e.getMessage());
        }
    }

    /** The stamp flags are checked like every other field: one this version does not know is refused. */
    @Test
    void unknownStampFlagsOrAChangeStampTheHeaderSaysIsNotThereAreRefusedAsCorrupt() throws IOException {
        Path image = Files.write(temp.resolve("disk.img"), ImageIndexTest.randomBytes(2 * Pages.PAGE_SIZE, 3));
        Path index = temp.resolve("disk.idx");
        try (ImageIndex built = ImageIndex.build(image)) {
            built.writeTo(index);
        }
        byte[] original = Files.readAllBytes(index);
        for (int flags : new int[] {2, 0}) {
            byte[] bytes = original.clone();
            java.nio.ByteBuffer.wrap(bytes).order(java.nio.ByteOrder.LITTLE_ENDIAN)
                    .putInt((int) IndexFile.O_STAMP_FLAGS, flags);
            Files.write(index, IndexFileFuzzTest.withChecksumsFixed(bytes));
            ImageIndexException e = assertThrows(ImageIndexException.class, () -> ImageIndex.open(index).close());
            assertEquals(ImageIndexException.Kind.CORRUPT, e.kind());
            assertEquals(index + ": corrupt index: " + (flags == 2 ? "the stamp flags 2 are unknown"
                    : "file 0 of the layout (disk.img) has a change stamp though the header says none was recorded")
                    + "; rebuild it with 'samepage index build'", e.getMessage());
        }
    }

    /**
     * A file name read from an index is shown with its controls, line separators and bidirectional
     * overrides and isolates escaped: a right-to-left override (U+202E) would otherwise make the terminal
     * show the rest of the message reversed. Letters of any script stay as they are.
     */
    @Test
    void aFileNameIsPrintedWithItsControlsAndBidirectionalOverridesEscaped() {
        assertEquals("a\\u202eb\\u2066c\\u2069\\u0009\\u2028d\u00e9\u05d0",
                IndexFile.printable("a\u202eb\u2066c\u2069\t\u2028d\u00e9\u05d0"));
        assertEquals("plain.bin", IndexFile.printable("plain.bin"));
    }

    /**
     * An index file cut short after it was opened (and mapped): the next load met a fault reading the
     * mapped bytes and threw the JVM's InternalError, which named nothing.
     */
    @Test
    void anIndexCutShortWhileInUseFailsTheLoadNamingItAndLeavesTheEngineConsistent() throws IOException {
        Path image = Files.write(temp.resolve("disk.img"), ImageIndexTest.randomBytes(400 * Pages.PAGE_SIZE, 7));
        Path indexFile = temp.resolve("disk.idx");
        for (int threads : new int[] {1, 2}) {
            long length;
            try (ImageIndex built = ImageIndex.build(image)) {
                built.writeTo(indexFile);
                length = built.sizeBytes();
            }
            EngineContext context = new EngineContext().poolBytes(64L << 20).hashSeed(1).conclude();
            try (DedupEngine engine = DedupEngine.create(context);
                    ImageIndex index = ImageIndex.open(indexFile, image);
                    ImageLoader loader = new ImageLoader(index, engine, threads)) {
                // A whole load first: the loader's table of duplicates is made, so that after the cut the
                // first record past the end is met where the blocks are resolved (on a worker, with two).
                loader.loadAll(engine.createGuest(engine.createDomain("before"), "before", 400L * Pages.PAGE_SIZE), 0);
                Guest guest = engine.createGuest(engine.createDomain("tenant"), "g", 400L * Pages.PAGE_SIZE);
                try (RandomAccessFile file = new RandomAccessFile(indexFile.toFile(), "rw")) {
                    file.setLength(8192);
                }
                ImageIndexException changed = assertThrows(ImageIndexException.class, () -> loader.loadAll(guest, 0),
                        "threads " + threads);
                assertEquals(ImageIndexException.Kind.CORRUPT, changed.kind());
                assertEquals(indexFile + ": the index file changed while in use: it is now 8192 bytes, " + length
                        + " when it was opened; rebuild the index (--rebuild)", changed.getMessage());
                EngineInvariants.assertConsistentWithHasherOf(context, engine, "threads " + threads);
                assertEquals(List.of("before", "g"), engine.guests().stream().map(Guest::name).toList(),
                        "no staging guest left");
            }
        }
    }

    /**
     * A load that meets an index file cut short keeps none of its range: before, the blocks it loaded
     * ahead of the fault stayed (and with a fault the JVM reports only after the read, one of them could
     * have been mapped under another block's digest), and so did the pages it never reached; now every page
     * of the range reads zeros, those outside it keep their bytes. On one thread and on two, with the
     * blocks resident (mapped on the loading thread) and not (read by the resolver or a worker).
     */
    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aLoadThatMeetsAnIndexCutShortLeavesItsWholeRangeReadingZeros() throws IOException {
        int blocks = 400;
        Path image = Files.write(temp.resolve("disk.img"), ImageIndexTest.randomBytes(blocks * Pages.PAGE_SIZE, 7));
        Path indexFile = temp.resolve("disk.idx");
        for (int threads : new int[] {1, 2}) {
            for (boolean resident : new boolean[] {true, false}) {
                String where = "threads " + threads + (resident ? ", blocks resident" : ", blocks read");
                try (ImageIndex built = ImageIndex.build(image)) {
                    built.writeTo(indexFile);
                }
                EngineContext context = new EngineContext().poolBytes(64L << 20).hashSeed(1).conclude();
                try (DedupEngine engine = DedupEngine.create(context);
                        ImageIndex index = ImageIndex.open(indexFile, image);
                        ImageLoader loader = new ImageLoader(index, engine, threads)) {
                    MergeDomain tenant = engine.createDomain("tenant");
                    loader.loadAll(engine.createGuest(resident ? tenant : engine.createDomain("other"), "before",
                            (long) blocks * Pages.PAGE_SIZE), 0);
                    Guest guest = engine.createGuest(tenant, "g", (blocks + 2L) * Pages.PAGE_SIZE);
                    guest.fill(0, guest.sizeBytes(), (byte) 0x5a);
                    try (RandomAccessFile file = new RandomAccessFile(indexFile.toFile(), "rw")) {
                        file.setLength(8192);
                    }
                    ImageIndexException changed = assertThrows(ImageIndexException.class,
                            () -> loader.load(guest, Pages.PAGE_SIZE, 0, blocks), where);
                    assertEquals(ImageIndexException.Kind.CORRUPT, changed.kind(), where);
                    assertEquals(0, changed.getSuppressed().length, where);
                    byte[] pattern = new byte[Pages.PAGE_SIZE];
                    java.util.Arrays.fill(pattern, (byte) 0x5a);
                    byte[] page = new byte[Pages.PAGE_SIZE];
                    for (int p = 0; p < blocks + 2; p++) {
                        guest.read((long) p * Pages.PAGE_SIZE, page, 0, Pages.PAGE_SIZE);
                        boolean inRange = p >= 1 && p <= blocks;
                        assertArrayEquals(inRange ? new byte[Pages.PAGE_SIZE] : pattern, page,
                                where + ": page " + p + (inRange ? " of the range reads zeros" : " outside the range is kept"));
                    }
                    EngineInvariants.assertConsistentWithHasherOf(context, engine, where);
                }
            }
        }
    }

    /**
     * A fault reading the mapped index can surface after the batch whose read met it completed: the load
     * that met it returned as if all was well, with blocks it may have mapped under a wrong digest, and
     * the next load reported CORRUPT. Now a load looks at the file's size as it ends and fails as one that
     * meets the cut does. Here the cut leaves the records of the load's blocks whole, so no read faults
     * at all and only that look finds the cut: before, the load returned. On one thread and on two.
     */
    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aLoadThatEndsWithItsIndexFileCutShortFailsAndLeavesItsRangeReadingZeros() throws IOException {
        int blocks = 400;
        int loaded = 8;
        Path image = Files.write(temp.resolve("disk.img"), ImageIndexTest.randomBytes(blocks * Pages.PAGE_SIZE, 7));
        Path indexFile = temp.resolve("disk.idx");
        for (int threads : new int[] {1, 2}) {
            String where = "threads " + threads;
            long length;
            try (ImageIndex built = ImageIndex.build(image)) {
                built.writeTo(indexFile);
                length = built.sizeBytes();
            }
            // The file ends with the blocks' records, in block order: cut it at the page after the last
            // record the load reads.
            long cut = (length - (long) (blocks - loaded) * IndexFile.RECORD_LENGTH + Pages.PAGE_SIZE - 1)
                    & -Pages.PAGE_SIZE;
            assertTrue(cut < length, where + ": the cut leaves " + cut + " of " + length + " bytes");
            EngineContext context = new EngineContext().poolBytes(64L << 20).hashSeed(1).conclude();
            try (DedupEngine engine = DedupEngine.create(context);
                    ImageIndex index = ImageIndex.open(indexFile, image);
                    ImageLoader loader = new ImageLoader(index, engine, threads)) {
                // A whole load first, in another domain: the table of duplicates is made, and the blocks
                // are read again below (by the resolver or a worker), not found resident.
                loader.loadAll(engine.createGuest(engine.createDomain("other"), "before", (long) blocks * Pages.PAGE_SIZE), 0);
                Guest guest = engine.createGuest(engine.createDomain("tenant"), "g", (loaded + 2L) * Pages.PAGE_SIZE);
                guest.fill(0, guest.sizeBytes(), (byte) 0x5a);
                try (RandomAccessFile file = new RandomAccessFile(indexFile.toFile(), "rw")) {
                    file.setLength(cut);
                }
                ImageIndexException changed = assertThrows(ImageIndexException.class,
                        () -> loader.load(guest, Pages.PAGE_SIZE, 0, loaded), where);
                assertEquals(ImageIndexException.Kind.CORRUPT, changed.kind(), where);
                assertEquals(indexFile + ": the index file changed while in use: it is now " + cut + " bytes, " + length
                        + " when it was opened; rebuild the index (--rebuild)", changed.getMessage(), where);
                byte[] pattern = new byte[Pages.PAGE_SIZE];
                java.util.Arrays.fill(pattern, (byte) 0x5a);
                byte[] page = new byte[Pages.PAGE_SIZE];
                for (int p = 0; p < loaded + 2; p++) {
                    guest.read((long) p * Pages.PAGE_SIZE, page, 0, Pages.PAGE_SIZE);
                    boolean inRange = p >= 1 && p <= loaded;
                    assertArrayEquals(inRange ? new byte[Pages.PAGE_SIZE] : pattern, page,
                            where + ": page " + p + (inRange ? " of the range reads zeros" : " outside the range is kept"));
                }
                EngineInvariants.assertConsistentWithHasherOf(context, engine, where);
                assertEquals(List.of("before", "g"), engine.guests().stream().map(Guest::name).toList(),
                        where + ": no staging guest left");
            }
        }
    }

    /**
     * A load judges the index file's size only while its path still names the file opened: another index
     * renamed over it (an index rebuilt while a loader has the old one open) or its deletion leaves the
     * mapped file whole, and loads go on reading the image, though what the path names is shorter or gone.
     */
    @Test
    void anIndexFileReplacedOrDeletedWhileInUseLeavesLoadsAlone() throws IOException {
        int blocks = 400;
        byte[] bytes = ImageIndexTest.randomBytes(blocks * Pages.PAGE_SIZE, 7);
        Path image = Files.write(temp.resolve("disk.img"), bytes);
        Path small = Files.write(temp.resolve("small.img"), ImageIndexTest.randomBytes(Pages.PAGE_SIZE, 8));
        Path indexFile = temp.resolve("disk.idx");
        for (int threads : new int[] {1, 2}) {
            String where = "threads " + threads;
            try (ImageIndex built = ImageIndex.build(image)) {
                built.writeTo(indexFile);
            }
            EngineContext context = new EngineContext().poolBytes(64L << 20).hashSeed(1).conclude();
            try (DedupEngine engine = DedupEngine.create(context);
                    ImageIndex index = ImageIndex.open(indexFile, image);
                    ImageLoader loader = new ImageLoader(index, engine, threads)) {
                try (ImageIndex other = ImageIndex.build(small)) {
                    other.writeTo(indexFile);    // a temporary file renamed over the path
                }
                assertTrue(Files.size(indexFile) < index.sizeBytes(), where);
                byte[] loaded = new byte[bytes.length];
                Guest replaced = engine.createGuest(engine.createDomain("replaced"), "replaced", bytes.length);
                loader.loadAll(replaced, 0);
                replaced.read(0, loaded, 0, loaded.length);
                assertArrayEquals(bytes, loaded, where + ": loaded with the index file replaced");
                Files.delete(indexFile);
                Guest deleted = engine.createGuest(engine.createDomain("deleted"), "deleted", bytes.length);
                loader.loadAll(deleted, 0);
                deleted.read(0, loaded, 0, loaded.length);
                assertArrayEquals(bytes, loaded, where + ": loaded with the index file deleted");
                EngineInvariants.assertConsistentWithHasherOf(context, engine, where);
            }
        }
    }

    /**
     * A mapped guest's page that maps a resident frame takes a zeroed frame of its own to read zeros; a
     * host that refuses that remap leaves the range part emptied, and the error, still CORRUPT, says so.
     */
    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aCutShortLoadWhoseRangeTheHostRefusesToEmptySaysSo() throws IOException {
        int blocks = 400;
        Path image = Files.write(temp.resolve("disk.img"), ImageIndexTest.randomBytes(blocks * Pages.PAGE_SIZE, 7));
        Path indexFile = temp.resolve("disk.idx");
        try (ImageIndex built = ImageIndex.build(image)) {
            built.writeTo(indexFile);
        }
        AtomicBoolean refuseBreaks = new AtomicBoolean();
        EngineContext context = new EngineContext().poolBytes(64L << 20).hashSeed(1).conclude();
        try (DedupEngine engine = DedupEngine.create(context);
                ImageIndex index = ImageIndex.open(indexFile, image);
                ImageLoader loader = new ImageLoader(index, engine, 1)) {
            MergeDomain tenant = engine.createDomain("tenant");
            loader.loadAll(engine.createGuest(tenant, "before", (long) blocks * Pages.PAGE_SIZE), 0);
            Guest guest = engine.createGuest(tenant, "g", (long) blocks * Pages.PAGE_SIZE,
                    (first, pages) -> refusingWritableMapsWhile(refuseBreaks));
            guest.fill(0, guest.sizeBytes(), (byte) 0x5a);
            try (RandomAccessFile file = new RandomAccessFile(indexFile.toFile(), "rw")) {
                file.setLength(8192);
            }
            refuseBreaks.set(true);
            ImageIndexException changed = assertThrows(ImageIndexException.class, () -> loader.loadAll(guest, 0));
            refuseBreaks.set(false);
            assertEquals(ImageIndexException.Kind.CORRUPT, changed.kind());
            assertTrue(changed.getMessage().startsWith(indexFile + ": the index file changed while in use"), changed.getMessage());
            assertEquals(1, changed.getSuppressed().length, "the refused emptying is attached");
            DedupException refused = assertInstanceOf(DedupException.class, changed.getSuppressed()[0]);
            assertEquals(DedupException.Kind.HOST_REFUSED, refused.kind());
            assertTrue(refused.getMessage().startsWith("guest g: the host refused to remap page 0"), refused.getMessage());
            EngineInvariants.assertConsistentWithHasherOf(context, engine, "after the refused emptying");
        }
    }

    /** A host mapping that mirrors nothing and, while {@code refuse} is set, refuses every writable map (a break). */
    private static PageMapping refusingWritableMapsWhile(AtomicBoolean refuse) {
        return new PageMapping() {
            @Override
            public void map(int page, int frame, boolean writable) {
                if (writable && refuse.get()) {
                    throw new IllegalStateException("mmap: Cannot allocate memory (injected)");
                }
            }

            @Override
            public boolean writeProtect(int page) {
                return true;
            }

            @Override
            public void unprotect(int page) {
            }

            @Override
            public boolean pagesWritten(long[] bitmap) {
                return true;
            }

            @Override
            public void unmapAll() {
            }
        };
    }

    /** One of: flip bits in a region, overwrite a field with a random or extreme value, truncate, extend. */
    private static byte[] damage(byte[] original, SplittableRandom random, int trial) {
        byte[] bytes = original.clone();
        int header = IndexFile.HEADER_LENGTH;
        int blocks = (int) IndexFile.blocksOffset(0);
        switch (trial % 6) {
            case 0 -> flip(bytes, random, 0, header);
            case 1 -> flip(bytes, random, header, blocks);
            case 2 -> flip(bytes, random, blocks, bytes.length);
            case 3 -> {
                int field = random.nextInt(header / 4) * 4;
                int value = random.nextBoolean() ? random.nextInt() : (random.nextBoolean() ? -1 : Integer.MAX_VALUE);
                java.nio.ByteBuffer.wrap(bytes).order(java.nio.ByteOrder.LITTLE_ENDIAN).putInt(field, value);
            }
            case 4 -> bytes = java.util.Arrays.copyOf(bytes, random.nextInt(bytes.length));
            default -> bytes = java.util.Arrays.copyOf(bytes, bytes.length + 1 + random.nextInt(8192));
        }
        return bytes;
    }

    private static void flip(byte[] bytes, SplittableRandom random, int from, int to) {
        int flips = 1 + random.nextInt(4);
        for (int i = 0; i < flips; i++) {
            int at = from + random.nextInt(to - from);
            bytes[at] ^= (byte) (1 << random.nextInt(8));
        }
    }
}
