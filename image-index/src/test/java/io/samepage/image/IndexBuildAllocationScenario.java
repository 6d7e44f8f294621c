package io.samepage.image;

import io.samepage.hashing.Pages;
import io.samepage.testing.AllocationFaultLoader;
import io.samepage.testing.ArmedScenario;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;

/**
 * An index built over a small image file and written over an older index at its path, with the k-th
 * allocation failing; for {@link ImageAllocationFaultTest}, which loads this class through an
 * {@link AllocationFaultLoader}. Whatever fails, the build and write either complete, and the path holds
 * the index the run that failed nothing wrote, which opens against the image; or fail with the
 * {@link OutOfMemoryError} (as it is, not wrapped), and the path holds the older index, byte for byte.
 * Either way the directory holds nothing else: no temporary file is left.
 *
 * <p>{@link #apply} returns the findings of one run, one line each ("" for none); {@link #getAsLong} the
 * allocations the last run passed. Not thread safe.
 */
final class IndexBuildAllocationScenario extends ArmedScenario {

    private static final int PAGE = Pages.PAGE_SIZE;

    private final Path dir;
    private final Path image;
    private final Path indexFile;
    private final byte[] older;
    /** What the run that failed nothing wrote at the index path. */
    private byte[] whole;

    IndexBuildAllocationScenario(Path dir) throws IOException {
        this.dir = dir;
        this.image = dir.resolve("disk.img");
        this.indexFile = dir.resolve("disk.idx");
        byte[] bytes = new byte[24 * PAGE + 100];
        for (int b = 0; b < 24; b++) {
            if (b % 5 != 3) {       // a zero block in five; the others unique or, every fourth, a repeat
                System.arraycopy(ImageIndexTest.randomBytes(PAGE, b % 4 == 0 ? 1 : 10 + b), 0, bytes, b * PAGE, PAGE);
            }
        }
        Path other = Files.write(dir.resolve("older.img"), ImageIndexTest.randomBytes(3 * PAGE, 99));
        try (ImageIndex index = ImageIndex.build(other)) {
            index.writeTo(indexFile);
        }
        Files.delete(other);
        this.older = Files.readAllBytes(indexFile);
        Files.write(image, bytes);
    }

    @Override
    protected String run(long failAt) throws IOException {
        Files.write(indexFile, older);
        Throwable thrown = armed(() -> {
            try (ImageIndex index = ImageIndex.build(image)) {
                index.writeTo(indexFile);
            }
        });
        return check(where(), failAt, thrown);
    }

    private String check(String where, long failAt, Throwable thrown) throws IOException {
        List<String> left;
        try (Stream<Path> files = Files.list(dir)) {
            left = files.map(p -> p.getFileName().toString()).sorted().toList();
        }
        if (!left.equals(List.of("disk.idx", "disk.img"))) {
            return where + ": the directory holds " + left + (thrown == null ? "" : " after " + thrown);
        }
        byte[] now = Files.readAllBytes(indexFile);
        if (thrown != null) {
            if (!injected(thrown)) {
                return where + ": threw " + thrown + (thrown.getCause() == null ? "" : " (cause " + thrown.getCause() + ")")
                        + " instead of the OutOfMemoryError";
            }
            return Arrays.equals(older, now) ? "" : where + ": failed, and the index path holds " + now.length
                    + " bytes that are not the older index";
        }
        if (failAt == 0 && whole == null) {
            whole = now;
        } else if (!Arrays.equals(whole, now)) {
            return where + ": completed, and the index path holds " + now.length + " bytes that are not the index";
        }
        try (ImageIndex opened = ImageIndex.open(indexFile, image)) {
            return opened.blockCount() == 25 ? "" : where + ": the index written has " + opened.blockCount() + " blocks";
        } catch (ImageIndexException e) {
            throw new UncheckedIOException(new IOException("the index written does not open: " + e.getMessage(), e));
        }
    }
}
