package io.samepage.image;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.samepage.core.DedupEngine;
import io.samepage.core.EngineContext;
import io.samepage.core.Guest;
import io.samepage.core.MergeDomain;
import io.samepage.hashing.Pages;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Guests load an image: the first reads it, the others map it; wrong bytes are never installed. */
class ImageLoaderTest {

    private static final int PAGE = Pages.PAGE_SIZE;

    @TempDir
    Path temp;

    private final DedupEngine engine = DedupEngine.create(new EngineContext().poolBytes(64L << 20).hashSeed(1).conclude());

    @AfterEach
    void close() {
        engine.close();
    }

    /** 32 blocks: 20 random, 4 repeats of block 0, 8 zeros. */
    private Path image() throws IOException {
        byte[] bytes = new byte[32 * PAGE];
        System.arraycopy(ImageIndexTest.randomBytes(20 * PAGE, 11), 0, bytes, 0, 20 * PAGE);
        for (int i = 20; i < 24; i++) {
            System.arraycopy(bytes, 0, bytes, i * PAGE, PAGE);
        }
        return Files.write(temp.resolve("disk.img"), bytes);
    }

    @Test
    void laterGuestsMapEveryBlockTheFirstGuestRead() throws IOException {
        Path image = image();
        byte[] expected = Files.readAllBytes(image);
        MergeDomain domain = engine.createDomain("tenant");
        try (ImageIndex index = ImageIndex.build(image); ImageLoader loader = new ImageLoader(index, engine)) {
            long framesBefore = engine.framesInUse();
            Guest first = engine.createGuest(domain, "first", 32 * PAGE);
            LoadStats cold = loader.loadAll(first, 0);
            assertEquals(new LoadStats(20, 4, 8, 12L * PAGE, cold.loadNanos()), cold);
            for (int g = 0; g < 3; g++) {
                Guest guest = engine.createGuest(domain, "later" + g, 32 * PAGE);
                LoadStats warm = loader.loadAll(guest, 0);
                assertEquals(new LoadStats(0, 24, 8, 32L * PAGE, warm.loadNanos()), warm);
                byte[] read = new byte[expected.length];
                guest.read(0, read, 0, read.length);
                assertArrayEquals(expected, read);
            }
            assertEquals(framesBefore + 20, engine.framesInUse(), "one frame per distinct non-zero block, for 4 guests");
            assertEquals(20, domain.residentFrames());
            byte[] read = new byte[expected.length];
            first.read(0, read, 0, read.length);
            assertArrayEquals(expected, read);
        }
    }

    @Test
    void aGuestWriteAfterLoadingStaysInThatGuest() throws IOException {
        Path image = image();
        MergeDomain domain = engine.createDomain("tenant");
        try (ImageIndex index = ImageIndex.build(image); ImageLoader loader = new ImageLoader(index, engine)) {
            Guest a = engine.createGuest(domain, "a", 32 * PAGE);
            Guest b = engine.createGuest(domain, "b", 32 * PAGE);
            loader.loadAll(a, 0);
            loader.loadAll(b, 0);
            byte before = b.readByte(5);
            a.write(5, new byte[] {(byte) (before + 1)}, 0, 1);
            assertEquals(before, b.readByte(5));
            Guest c = engine.createGuest(domain, "c", 32 * PAGE);
            LoadStats stats = loader.loadAll(c, 0);
            assertEquals(0, stats.blocksRead(), "b still holds block 0, so it is still resident");
            assertEquals(before, c.readByte(5));
        }
    }

    /**
     * A change after the index was opened (checked against the image's identity) is past that check:
     * the block the loader reads still is not installed.
     */
    @Test
    void aBlockThatChangedOnDiskAfterTheIndexWasOpenedIsNeverInstalled() throws IOException {
        Path image = image();
        Path indexFile = temp.resolve("disk.idx");
        try (ImageIndex built = ImageIndex.build(image)) {
            built.writeTo(indexFile);
        }
        try (ImageIndex index = ImageIndex.open(indexFile, image); ImageLoader loader = new ImageLoader(index, engine)) {
            FileTime mtime = Files.getLastModifiedTime(image);
            byte[] bytes = Files.readAllBytes(image);
            bytes[7 * PAGE + 3] ^= 1;
            Files.write(image, bytes);
            Files.setLastModifiedTime(image, mtime);
            Guest guest = engine.createGuest(engine.createDomain("tenant"), "g", 32 * PAGE);
            ImageIndexException mismatch = assertThrows(ImageIndexException.class, () -> loader.loadAll(guest, 0));
            assertEquals(ImageIndexException.Kind.BLOCK_MISMATCH, mismatch.kind());
            assertTrue(mismatch.getMessage().startsWith(image + ": block 7 "), mismatch.getMessage());
            assertEquals(0, guest.readByte(7L * PAGE + 3), "the changed block was not installed");
            assertEquals(bytes[6 * PAGE], guest.readByte(6L * PAGE), "the blocks before it were");
            Verification verification = index.verify(image, BuildProgress.NONE);
            assertTrue(verification.layoutDifference().contains("its change time moved"), verification.toString());
            assertEquals(1, verification.mismatchedBlocks());
            assertEquals(7, verification.firstMismatchedBlock());
        }
    }

    @Test
    void anInterruptedLoadSaysSoAndTheNextLoadThroughTheSameLoaderReadsTheImage() throws IOException {
        Path image = image();
        MergeDomain domain = engine.createDomain("tenant");
        try (ImageIndex index = ImageIndex.build(image); ImageLoader loader = new ImageLoader(index, engine, 1)) {
            Guest interrupted = engine.createGuest(domain, "interrupted", 32 * PAGE);
            Thread.currentThread().interrupt();
            ImageIndexException stopped;
            try {
                stopped = assertThrows(ImageIndexException.class, () -> loader.loadAll(interrupted, 0));
            } finally {
                assertTrue(Thread.interrupted(), "the interrupt is still the caller's to see");
            }
            assertEquals(ImageIndexException.Kind.IO, stopped.kind());
            assertEquals("interrupted while reading block 0 of " + image, stopped.getMessage());
            Guest next = engine.createGuest(domain, "next", 32 * PAGE);
            assertEquals(20, loader.loadAll(next, 0).blocksRead(), "the file is opened again, not left closed");
            byte[] read = new byte[32 * PAGE];
            next.read(0, read, 0, read.length);
            assertArrayEquals(Files.readAllBytes(image), read);
        }
    }

    /**
     * Loads the image ({@code blocks} blocks) into a fresh guest on a thread of its own; if that load still runs after 10 s (blocked
     * opening a FIFO), opens the FIFO for writing so that it ends, and fails.
     */
    private Throwable loadWithin10Seconds(ImageLoader loader, long blocks, Path fifo) throws Exception {
        String name = "fifo-load-" + engine.guests().size();
        Guest guest = engine.createGuest(engine.createDomain(name), name, blocks * PAGE);
        Throwable[] outcome = new Throwable[1];
        Thread load = new Thread(() -> {
            try {
                loader.loadAll(guest, 0);
            } catch (Throwable t) {
                outcome[0] = t;
            }
        }, "fifo-load");
        load.setDaemon(true);
        load.start();
        load.join(10_000);
        if (load.isAlive()) {
            new java.io.FileOutputStream(fifo.toFile()).close();    // the blocked open returns, the load ends
            load.join(10_000);
            throw new AssertionError("the load blocked opening " + fifo + " (threads " + loader.threads() + ")");
        }
        return outcome[0];
    }

    @Test
    void aFileOfTheImageThatIsNoLongerARegularFileIsRefusedInsteadOfBlockingTheLoad() throws Exception {
        Path single = image();
        Path tree = Files.createDirectories(temp.resolve("tree"));
        Files.write(tree.resolve("a"), Files.readAllBytes(single));
        Files.write(tree.resolve("b"), ImageIndexTest.randomBytes(8 * PAGE, 12));     // not resident after a
        try (ImageIndex ofFile = ImageIndex.build(single); ImageIndex ofTree = ImageIndex.build(tree)) {
            Files.delete(single);
            Files.delete(tree.resolve("b"));
            for (Path fifo : List.of(single, tree.resolve("b"))) {
                assertEquals(0, new ProcessBuilder("mkfifo", fifo.toString()).inheritIO().start().waitFor());
            }
            for (int threads : new int[] {1, 2}) {
                for (ImageIndex index : List.of(ofFile, ofTree)) {
                    Path fifo = index == ofFile ? single : tree.resolve("b");
                    try (ImageLoader loader = new ImageLoader(index, engine, threads)) {
                        Throwable refused = loadWithin10Seconds(loader, index.blockCount(), fifo);
                        String what = fifo + ", threads " + threads + ": " + refused;
                        ImageIndexException e = assertInstanceOf(ImageIndexException.class, refused, what);
                        assertEquals(ImageIndexException.Kind.STALE, e.kind(), what);
                        assertEquals(fifo + ": no longer a regular file (now a FIFO, socket or device); the image"
                                + " changed since the index was built: rebuild the index (--rebuild)", e.getMessage());
                    }
                }
            }
        }
    }

    @Test
    void aFileOfADirectoryImageReplacedByALinkIsRefusedButAFileImageNamedByALinkLoads() throws Exception {
        Path single = image();
        Path link = Files.createSymbolicLink(temp.resolve("link.img"), single);
        Path tree = Files.createDirectories(temp.resolve("tree"));
        Files.write(tree.resolve("a"), Files.readAllBytes(single));
        try (ImageIndex viaLink = ImageIndex.build(link); ImageIndex ofTree = ImageIndex.build(tree);
                ImageLoader fileLoader = new ImageLoader(viaLink, engine, 1);
                ImageLoader treeLoader = new ImageLoader(ofTree, engine, 1)) {
            MergeDomain domain = engine.createDomain("tenant");
            assertEquals(20, fileLoader.loadAll(engine.createGuest(domain, "g", 32 * PAGE), 0).blocksRead(),
                    "the image was named by a link when the index was built: the link is followed");
            Path copy = Files.move(tree.resolve("a"), temp.resolve("a"));
            Files.createSymbolicLink(tree.resolve("a"), copy);
            ImageIndexException refused = assertThrows(ImageIndexException.class,
                    () -> treeLoader.loadAll(engine.createGuest(engine.createDomain("other"), "h", 32 * PAGE), 0));
            assertEquals(tree.resolve("a") + ": no longer a regular file (now a symbolic link); the image changed"
                    + " since the index was built: rebuild the index (--rebuild)", refused.getMessage());
        }
    }

    @Test
    void loadingWithoutTheIndexReadsEveryBlock() throws IOException {
        Path image = image();
        Guest guest = engine.createGuest(engine.createDomain("tenant"), "g", 32 * PAGE);
        LoadStats stats = ImageLoader.loadWithoutIndex(ImageLayout.of(image), guest, 0);
        assertEquals(32, stats.blocksRead());
        byte[] read = new byte[32 * PAGE];
        guest.read(0, read, 0, read.length);
        assertArrayEquals(Files.readAllBytes(image), read);
    }

    @Test
    void anIndexNotBoundToItsImageCannotLoad() throws IOException {
        Path image = image();
        Path indexFile = temp.resolve("disk.idx");
        try (ImageIndex built = ImageIndex.build(image)) {
            built.writeTo(indexFile);
        }
        try (ImageIndex unbound = ImageIndex.open(indexFile)) {
            assertThrows(IllegalArgumentException.class, () -> new ImageLoader(unbound, engine));
        }
    }
}
