package io.samepage.image;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.samepage.core.DedupEngine;
import io.samepage.core.EngineContext;
import io.samepage.core.Guest;
import io.samepage.hashing.Pages;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.FileSystem;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.FileTime;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.api.io.TempDir;

/**
 * An index is refused for an image that changed, whatever the change kept: a rewrite with the same size
 * and modification time ({@code cp -p}, {@code rsync -t}, {@code touch -d}), another file renamed into
 * its place, a change while the index was being built. An unchanged image is still accepted.
 */
class ImageIdentityTest {

    private static final int PAGE = Pages.PAGE_SIZE;

    @TempDir
    Path temp;

    private Path image(String name, long seed) throws IOException {
        return Files.write(temp.resolve(name), ImageIndexTest.randomBytes(16 * PAGE, seed));
    }

    private static Path indexOf(Path image, Path file) {
        try (ImageIndex built = ImageIndex.build(image)) {
            built.writeTo(file);
        }
        return file;
    }

    /** Writes {@code bytes} over {@code file} in place and sets its modification time back. */
    private static void rewriteKeepingTimes(Path file, byte[] bytes) throws IOException {
        FileTime mtime = Files.getLastModifiedTime(file);
        Files.write(file, bytes);
        Files.setLastModifiedTime(file, mtime);
    }

    /**
     * Progress that rewrites {@code file} with {@code bytes} (times kept) once every block was read, on the
     * building thread, before the build ends; {@code done[0]} says it did.
     */
    private static BuildProgress rewriteWhenRead(Path file, byte[] bytes, boolean[] done) {
        return (blocks, total) -> {
            if (blocks == total && !done[0]) {
                done[0] = true;
                try {
                    rewriteKeepingTimes(file, bytes);
                } catch (IOException e) {
                    throw new java.io.UncheckedIOException(e);
                }
            }
        };
    }

    private static ImageIndexException assertStale(Executable open) {
        ImageIndexException stale = assertThrows(ImageIndexException.class, open);
        assertEquals(ImageIndexException.Kind.STALE, stale.kind(), stale.getMessage());
        assertTrue(stale.getMessage().endsWith("; rebuild the index (--rebuild)"), stale.getMessage());
        return stale;
    }

    @Test
    void aFileRewrittenWithItsSizeAndModificationTimeKeptIsRefusedAsStale() throws IOException {
        Path image = image("disk.img", 1);
        Path file = indexOf(image, temp.resolve("disk.idx"));
        try (ImageIndex inMemory = ImageIndex.build(image)) {
            rewriteKeepingTimes(image, ImageIndexTest.randomBytes(16 * PAGE, 2));
            ImageIndexException stale = assertStale(() -> ImageIndex.open(file, image).close());
            assertEquals(file + " does not describe " + image + " any more: it was changed: its change time moved "
                    + "(a write, rename, touch, chmod or link); rebuild the index (--rebuild)", stale.getMessage());
            try (ImageIndex opened = ImageIndex.open(file)) {
                assertStale(() -> opened.checkSource(image));
            }
            assertStale(() -> inMemory.checkSource(image));
        }
    }

    @Test
    void aFileOfADirectoryImageRewrittenWithItsSizeAndModificationTimeKeptIsRefusedNamingIt() throws IOException {
        Path tree = Files.createDirectories(temp.resolve("tree/sub"));
        Files.write(tree.resolve("a.bin"), ImageIndexTest.randomBytes(3 * PAGE, 3));
        Path changed = Files.write(tree.resolve("b.bin"), ImageIndexTest.randomBytes(2 * PAGE + 5, 4));
        Path root = tree.getParent();
        Path file = indexOf(root, temp.resolve("tree.idx"));
        rewriteKeepingTimes(changed, ImageIndexTest.randomBytes(2 * PAGE + 5, 5));
        ImageIndexException stale = assertStale(() -> ImageIndex.open(file, root).close());
        assertTrue(stale.getMessage().contains(": sub/b.bin was changed: its change time moved"), stale.getMessage());
    }

    @Test
    void anotherFileOfTheSameSizeAndModificationTimeRenamedOverTheImageIsRefusedAsStale() throws IOException {
        Path image = image("disk.img", 6);
        Path file = indexOf(image, temp.resolve("disk.idx"));
        Path other = image("other.img", 7);
        Files.setLastModifiedTime(other, Files.getLastModifiedTime(image));
        Files.move(other, image, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        ImageIndexException stale = assertStale(() -> ImageIndex.open(file, image).close());
        assertTrue(stale.getMessage().contains("any more: it is another file now (inode "), stale.getMessage());
    }

    /** A false alarm, and a safe one: the content is the same, but nothing short of reading it shows that. */
    @Test
    void aChmodOfTheImageMakesItsIndexStaleUntilItIsRebuilt() throws IOException {
        Path image = image("disk.img", 8);
        Path file = indexOf(image, temp.resolve("disk.idx"));
        Files.setPosixFilePermissions(image, PosixFilePermissions.fromString("r--------"));
        assertStale(() -> ImageIndex.open(file, image).close());
        indexOf(image, file);
        ImageIndex.open(file, image).close();
    }

    @Test
    void anImageThatChangesWhileItsIndexIsBuiltIsRefusedAndNoIndexIsWritten() throws IOException {
        Path image = Files.write(temp.resolve("disk.img"), ImageIndexTest.randomBytes(64 * PAGE, 9));
        Path tree = Files.createDirectories(temp.resolve("tree"));
        Files.write(tree.resolve("a.bin"), ImageIndexTest.randomBytes(32 * PAGE, 10));
        Path treeFile = Files.write(tree.resolve("b.bin"), ImageIndexTest.randomBytes(32 * PAGE, 11));
        Path out = Files.createDirectories(temp.resolve("out"));
        for (Path source : List.of(image, tree)) {
            Path changed = source == image ? image : treeFile;
            byte[] other = ImageIndexTest.randomBytes((int) Files.size(changed), 12);
            // Progress is reported on the building thread once every block is read, before the build ends:
            // the change falls between the last read and the end (a change during the reads is caught the
            // same way, or by the reader as a file cut short).
            boolean[] done = {false};
            BuildProgress rewriteOnce = rewriteWhenRead(changed, other, done);
            Path file = out.resolve("image.idx");
            ImageIndexException refused = assertThrows(ImageIndexException.class, () -> {
                try (ImageIndex index = ImageIndex.build(source, rewriteOnce)) {
                    index.writeTo(file);
                }
            }, source.toString());
            assertTrue(done[0]);
            assertEquals(ImageIndexException.Kind.BLOCK_MISMATCH, refused.kind(), refused.getMessage());
            assertTrue(refused.getMessage().startsWith(source + " changed while its index was being built: "),
                    refused.getMessage());
            try (var left = Files.list(out)) {
                assertEquals(List.of(), left.toList(), "neither the index nor a temporary file was written");
            }
        }
    }

    /**
     * Before Linux 6.13 (no multigrain timestamps) a change time moves once per timer tick: a write in
     * the tick of the build's first look, after it, leaves the change time as it was. The build waits
     * until the newest change time is older than a tick (whole seconds: two seconds), so any later write
     * moves it. (This host's kernel gives fine-grained change times, so the race itself does not occur
     * here; the wait it computes is what is checked.)
     */
    @Test
    void aChangeTimeWithinAClockStepOfNowIsWaitedOutAndAnOlderOneIsNot() {
        long now = 1_700_000_000_123_456_789L;
        long step = ImageLayout.SETTLE_NANOS;
        assertEquals(step - 5_000_000, stamped(now - 5_000_000).unsettledNanos(now), "changed 5 ms ago");
        assertEquals(0, stamped(now - step).unsettledNanos(now));
        assertEquals(0, stamped(now - 60_000_000_000L).unsettledNanos(now));
        assertEquals(step, stamped(now + 3_600_000_000_000L).unsettledNanos(now),
                "a change time an hour ahead (a skewed clock) costs one step, not an hour");
        long wholeSecond = now - now % 1_000_000_000L;
        assertEquals(ImageLayout.SETTLE_WHOLE_SECONDS_NANOS - (now - wholeSecond),
                stamped(wholeSecond).unsettledNanos(now), "a file system that keeps whole seconds");
        ImageLayout unstamped = new ImageLayout(ImageLayout.Kind.FILE, null,
                List.of(new ImageLayout.Extent("disk.img", 0, PAGE, 0, 0)), PAGE, now, false);
        assertEquals(0, unstamped.unsettledNanos(now), "nothing to wait for without change times");
    }

    /** A change while verify reads the image is told as a verification's, not as a build's. */
    @Test
    void anImageThatChangesWhileItIsVerifiedIsRefusedAsAVerification() throws IOException {
        Path image = image("disk.img", 13);
        Path file = indexOf(image, temp.resolve("disk.idx"));
        byte[] other = ImageIndexTest.randomBytes((int) Files.size(image), 14);
        BuildProgress rewriteOnce = rewriteWhenRead(image, other, new boolean[1]);
        try (ImageIndex index = ImageIndex.open(file, image)) {
            ImageIndexException refused = assertThrows(ImageIndexException.class, () -> index.verify(image, rewriteOnce));
            assertEquals(ImageIndexException.Kind.BLOCK_MISMATCH, refused.kind());
            assertTrue(refused.getMessage().startsWith(image + " changed while it was read to verify the index: "),
                    refused.getMessage());
            assertTrue(refused.getMessage().endsWith("; nothing was verified: verify again once nothing writes to the "
                    + "image"), refused.getMessage());
        }
    }

    /**
     * A change time ahead of the clock (a skew, another host's clock) stays ahead however long the build
     * waits: one step with nothing moved ends the wait. It waited its three rounds, as for an image still
     * being written (on a file system of whole seconds, 6 s at every build and verify).
     */
    @Test
    void aChangeTimeAheadOfTheClockIsWaitedForOneStepOnly() throws Exception {
        Path image = Files.write(temp.resolve("ahead.img"), new byte[PAGE]);
        long[] clock = {System.currentTimeMillis() * 1_000_000L - 3_600_000_000_000L};     // an hour behind the file's
        List<Long> waits = new java.util.ArrayList<>();
        ImageLayout layout = ImageLayout.settled(image, () -> clock[0], nanos -> {
            waits.add(nanos);
            clock[0] += nanos;
        });
        assertEquals(List.of(ImageLayout.SETTLE_NANOS), waits);
        assertEquals(null, layout.differenceFrom(ImageLayout.of(image)));
    }

    private static ImageLayout stamped(long ctimeNanos) {
        return new ImageLayout(ImageLayout.Kind.DIRECTORY, null, List.of(
                new ImageLayout.Extent("a", 0, PAGE, ctimeNanos - 7_000_000_000L, 1),
                new ImageLayout.Extent("b", PAGE, PAGE, ctimeNanos, 2)), 2 * PAGE, ctimeNanos, true);
    }

    @Test
    void aFreshIndexOfAnUnchangedImageIsAcceptedAndLoadsTheImage() throws IOException {
        Path image = image("disk.img", 13);
        Path file = indexOf(image, temp.resolve("disk.idx"));
        byte[] expected = Files.readAllBytes(image);
        try (DedupEngine engine = DedupEngine.create(new EngineContext().poolBytes(16L << 20).hashSeed(1).conclude());
                ImageIndex index = ImageIndex.open(file, image);
                ImageLoader loader = new ImageLoader(index, engine, 2)) {
            Guest guest = engine.createGuest(engine.createDomain("tenant"), "g", 16 * PAGE);
            assertEquals(16, loader.loadAll(guest, 0).blocks());
            byte[] loaded = new byte[16 * PAGE];
            guest.read(0, loaded, 0, loaded.length);
            assertArrayEquals(expected, loaded);
        }
    }

    /**
     * A file system without change times (here a zip file system; on Linux every one has them) gives an
     * index without change stamps, checked on size, modification time and files alone; an index whose
     * stamps were recorded is refused for an image whose stamps cannot be read now, and the other way round.
     */
    @Test
    void whereTheFileSystemHasNoChangeTimesTheIndexRecordsNoneAndSaysSoWhenMovedAcross() throws IOException {
        Path indexFile = temp.resolve("zipped.idx");
        ImageLayout unstamped;
        try (FileSystem zip = FileSystems.newFileSystem(temp.resolve("image.zip"), Map.of("create", "true"))) {
            Path image = Files.write(zip.getPath("/disk.img"), ImageIndexTest.randomBytes(4 * PAGE, 14));
            unstamped = ImageLayout.of(image);
            assertFalse(unstamped.changeStamps());
            assertEquals(List.of(new ImageLayout.Extent("disk.img", 0, 4 * PAGE, 0, 0)), unstamped.extents());
            indexOf(image, indexFile);
            try (ImageIndex opened = ImageIndex.open(indexFile, image)) {
                assertFalse(opened.layout().changeStamps());
            }
        }
        Path image = image("disk.img", 14);
        ImageLayout stamped = ImageLayout.of(image);
        assertTrue(stamped.changeStamps());
        assertTrue(stamped.extents().getFirst().ctimeNanos() != 0 && stamped.extents().getFirst().inode() != 0);
        ImageLayout moved = new ImageLayout(ImageLayout.Kind.FILE, image, unstamped.extents(), stamped.sizeBytes(),
                stamped.mtimeNanos(), false);
        assertEquals("its files' change times were recorded and cannot be read now", stamped.differenceFrom(moved));
        assertEquals("its files' change times were not recorded (the file system had none)",
                moved.differenceFrom(stamped));
        assertEquals(null, moved.differenceFrom(moved.withRoot(null)));
    }

    /** Version 1 recorded no change stamps: read as fresh, it would keep the check this version closes. */
    @Test
    void anIndexOfFormatVersion1IsRefusedWithOneLineSayingRebuild() throws IOException {
        Path old = temp.resolve("old.idx");
        try (InputStream in = ImageIdentityTest.class.getResourceAsStream("ImageIdentityTest/version-1.idx")) {
            Files.copy(in, old);
        }
        ImageIndexException refused = assertThrows(ImageIndexException.class, () -> ImageIndex.open(old).close());
        assertEquals(ImageIndexException.Kind.VERSION, refused.kind());
        assertEquals(old + ": index format version 1, this build reads version 2; rebuild it with "
                + "'samepage index build'", refused.getMessage());
        assertFalse(refused.getMessage().contains("\n"));
    }
}
