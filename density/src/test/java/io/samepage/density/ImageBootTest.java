package io.samepage.density;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.samepage.image.ImageIndex;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The demo's boot on a small directory image: what each guest reads and maps with and without the index,
 * how the index file is kept, and the kind of each refusal. The CLI's {@code DemoCommandTest} checks
 * the exit codes and the printed report.
 */
class ImageBootTest {

    private static final long HOST_BYTES = 1L << 30;

    @TempDir
    Path dir;

    @Test
    void laterGuestsMapWhatTheFirstReadAndTheHostHoldsOneCopy() throws IOException {
        Path image = TestImages.directory(dir);
        ImageBoot.Result boot = ImageBoot.run(new ImageBoot.Settings(image, null, false, 3, HOST_BYTES));
        assertEquals(ImageBoot.IndexOrigin.BUILT_IN_MEMORY, boot.origin());
        assertEquals(TestImages.DIRECTORY_BLOCKS, boot.layout().blockCount());
        assertEquals(3L * TestImages.DIRECTORY_BLOCKS + 1, boot.without().framesInUse(), "a copy each, and the zero frame");
        assertEquals(TestImages.DIRECTORY_DISTINCT_NONZERO_BLOCKS + 1, boot.with().framesInUse());
        assertEquals(TestImages.DIRECTORY_DISTINCT_NONZERO_BLOCKS, boot.with().residentFrames());
        assertEquals(0, boot.with().loads().get(2).stats().blocksRead());
        assertEquals(0.0, boot.with().laterReadFraction());
        assertEquals(2 * 3 * 2, boot.without().blocksVerified() + boot.with().blocksVerified(),
                "blocks 0 and 97 of 3 guests, in each part");
    }

    @Test
    void theJsonComparesTheFirstLoadWithTheIndexWithTheMedianLoadWithoutIt() throws IOException {
        Path image = TestImages.directory(dir);
        ImageBoot.Result boot = ImageBoot.run(new ImageBoot.Settings(image, null, false, 3, HOST_BYTES));
        java.util.Map<String, Object> fields = boot.fields();
        long first = boot.with().loads().getFirst().stats().loadNanos();
        long[] without = boot.without().loads().stream().mapToLong(l -> l.stats().loadNanos()).sorted().toArray();
        assertEquals(first, fields.get("first_load_with_index_nanos"));
        assertEquals(without[1], fields.get("median_load_without_index_nanos"), "the middle of 3");
        assertEquals((double) first / without[1], (double) fields.get("first_load_to_without_index_ratio"), 1e-9);
        assertEquals(io.samepage.image.ImageLoader.defaultThreads(), fields.get("loader_threads"));
        @SuppressWarnings("unchecked")
        java.util.Map<String, Object> warmUp = (java.util.Map<String, Object>) fields.get("warm_up");
        long coldWithout = boot.warmUp().without().stats().loadNanos();
        long coldWith = boot.warmUp().with().stats().loadNanos();
        assertTrue(coldWithout > 0 && coldWith > 0, "the cold loads happened and were timed");
        assertEquals(TestImages.DIRECTORY_BLOCKS, boot.warmUp().without().stats().blocksRead(), "a whole load without");
        assertEquals(TestImages.DIRECTORY_DISTINCT_NONZERO_BLOCKS, boot.warmUp().with().stats().blocksRead(),
                "a first load with the index, in an engine of its own: every distinct block read");
        assertEquals(coldWithout, warmUp.get("without_index_nanos"));
        assertEquals(coldWith, warmUp.get("with_index_nanos"));
        assertEquals((double) coldWith / coldWithout, (double) warmUp.get("with_to_without_index_ratio"), 1e-9);
        assertEquals(2, warmUp.get("rounds"), "one round left the first load with the index mid-compilation");
        assertEquals(TestImages.DIRECTORY_BLOCKS, boot.warmUp().againWithout().stats().blocksRead(),
                "the second round: a whole load without");
        assertEquals(TestImages.DIRECTORY_DISTINCT_NONZERO_BLOCKS, boot.warmUp().againWith().stats().blocksRead(),
                "the second round: a first load with the index again, in an engine of its own");
        @SuppressWarnings("unchecked")
        java.util.Map<String, Object> again = (java.util.Map<String, Object>) warmUp.get("second_round");
        assertEquals(boot.warmUp().againWithout().stats().loadNanos(), again.get("without_index_nanos"));
        assertEquals(boot.warmUp().againWith().stats().loadNanos(), again.get("with_index_nanos"));
        assertEquals(boot.warmUp().againWith().compileNanos(), again.get("with_index_jit_compile_nanos"));
        @SuppressWarnings("unchecked")
        java.util.List<java.util.Map<String, Object>> guests = (java.util.List<java.util.Map<String, Object>>)
                ((java.util.Map<String, Object>) fields.get("with_index")).get("guests");
        for (int g = 0; g < 3; g++) {
            long compile = boot.with().loads().get(g).compileNanos();
            assertTrue(compile >= 0 && compile % 1_000_000 == 0, "HotSpot measures its compilers, to the ms: " + compile);
            assertEquals(compile, guests.get(g).get("jit_compile_nanos"), "guest " + g);
        }
    }

    @Test
    void anIndexFileIsWrittenThenOpenedThenRefusedOnceTheImageChanged() throws IOException {
        Path image = TestImages.directory(dir);
        Path indexFile = dir.resolve("tree.idx");
        ImageBoot.Settings settings = new ImageBoot.Settings(image, indexFile, false, 2, HOST_BYTES);
        assertEquals(ImageBoot.IndexOrigin.BUILT_AND_WRITTEN, ImageBoot.run(settings).origin());
        assertEquals(ImageBoot.IndexOrigin.OPENED, ImageBoot.run(settings).origin());
        Files.write(image.resolve("d.bin"), new byte[] {1});
        DensityException stale = assertThrows(DensityException.class, () -> ImageBoot.run(settings));
        assertEquals(DensityException.Kind.BAD_INDEX, stale.kind());
        assertTrue(stale.getMessage().contains("--rebuild"), stale.getMessage());
        ImageBoot.Settings rebuild = new ImageBoot.Settings(image, indexFile, true, 2, HOST_BYTES);
        assertEquals(ImageBoot.IndexOrigin.BUILT_AND_WRITTEN, ImageBoot.run(rebuild).origin());
    }

    /** The same size and modification time do not hide a change: the index file is refused before any load. */
    @Test
    void aBlockChangedUnderItsIndexWithTheSizeAndModificationTimeKeptIsRefusedAsStale() throws IOException {
        Path image = TestImages.randomFile(dir, 8, 3);
        Path indexFile = dir.resolve("disk.idx");
        try (ImageIndex index = ImageIndex.build(image)) {
            index.writeTo(indexFile);
        }
        FileTime mtime = Files.getLastModifiedTime(image);
        byte[] bytes = Files.readAllBytes(image);
        bytes[5 * TestImages.PAGE] ^= 1;
        Files.write(image, bytes);
        Files.setLastModifiedTime(image, mtime);
        DensityException e = assertThrows(DensityException.class, () -> ImageBoot.run(
                new ImageBoot.Settings(image, indexFile, false, 2, HOST_BYTES)));
        assertEquals(DensityException.Kind.BAD_INDEX, e.kind());
        assertEquals(indexFile + " does not describe " + image + " any more: it was changed: its change time moved "
                + "(a write, rename, touch, chmod or link); rebuild the index (--rebuild)", e.getMessage());
    }

    @Test
    void refusalsSayWhoseFaultTheyAre() throws IOException {
        Path image = TestImages.randomFile(dir, 4, 4);
        DensityException missing = assertThrows(DensityException.class, () -> ImageBoot.run(
                new ImageBoot.Settings(dir.resolve("none"), null, false, 2, HOST_BYTES)));
        assertEquals(DensityException.Kind.BAD_IMAGE, missing.kind());
        Path nowhere = dir.resolve("no-such-dir/disk.idx");
        DensityException unwritable = assertThrows(DensityException.class, () -> ImageBoot.run(
                new ImageBoot.Settings(image, nowhere, false, 2, HOST_BYTES)));
        assertEquals(DensityException.Kind.BAD_INDEX, unwritable.kind());
        assertEquals(nowhere + ": the directory " + nowhere.getParent() + " does not exist", unwritable.getMessage());
        DensityException tooLarge = assertThrows(DensityException.class, () -> ImageBoot.run(
                new ImageBoot.Settings(image, null, false, 2, 4 * TestImages.PAGE)));
        assertEquals(DensityException.Kind.TOO_LARGE, tooLarge.kind());
        assertTrue(tooLarge.getMessage().endsWith("Use fewer guests or a smaller image"), tooLarge.getMessage());
    }
}
