package io.samepage.image;

import io.samepage.hashing.Pages;
import io.samepage.testing.AllocationFaultLoader;
import io.samepage.testing.ArmedScenario;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * An index file opened and parsed against its image ({@link ImageIndex#open(Path, Path)}: the checks of
 * {@link IndexParser}, then the image's identity), with the k-th allocation failing; for
 * {@link ImageAllocationFaultTest}, which loads this class through an {@link AllocationFaultLoader}.
 * Whatever fails, the open either returns an index that answers as the file says, or fails with the
 * {@link OutOfMemoryError}, and then no mapping of the index file is left in this process
 * ({@code /proc/self/maps}): the open mapped it, and nothing else would ever unmap it. The next open goes
 * well.
 *
 * <p>{@link #apply} returns the findings of one run, one line each ("" for none); {@link #getAsLong} the
 * allocations the last run passed. Not thread safe.
 */
final class IndexOpenAllocationScenario extends ArmedScenario {

    private static final int PAGE = Pages.PAGE_SIZE;

    private final Path image;
    private final Path indexFile;
    private final String rootDigest;

    IndexOpenAllocationScenario(Path dir) throws IOException {
        Path directory = Files.createDirectory(dir.resolve("image"));
        Files.write(directory.resolve("a.bin"), ImageIndexTest.randomBytes(5 * PAGE + 10, 3));
        Files.write(directory.resolve("b.bin"), new byte[2 * PAGE]);
        this.image = directory;
        this.indexFile = dir.resolve("image.idx");
        try (ImageIndex index = ImageIndex.build(image)) {
            index.writeTo(indexFile);
            rootDigest = index.rootDigestHex();
        }
    }

    @Override
    protected String run(long failAt) throws IOException {
        Throwable thrown = armed(() -> {
            try (ImageIndex index = ImageIndex.open(indexFile, image)) {
                if (!index.rootDigestHex().equals(rootDigest) || index.blockCount() != 8) {
                    throw new AssertionError("the index opened answers otherwise than the file: "
                            + index.blockCount() + " blocks, root " + index.rootDigestHex());
                }
            }
        });
        if (thrown instanceof AssertionError) {
            return where() + ": " + thrown.getMessage();
        }
        String otherwise = thrownOtherwise(thrown, where());
        if (otherwise != null) {
            return otherwise;
        }
        long mappings = mappingsOf(indexFile);
        if (mappings != 0) {
            return where() + ": " + (thrown == null ? "opened and closed" : "failed")
                    + ", and " + mappings + " mapping(s) of the index file are left";
        }
        try (ImageIndex again = ImageIndex.open(indexFile, image)) {
            return again.rootDigestHex().equals(rootDigest) ? "" : where() + ": the next open answers otherwise";
        }
    }

    /** The lines of {@code /proc/self/maps} that map {@code file}. */
    static long mappingsOf(Path file) throws IOException {
        String name = file.toAbsolutePath().toString();
        try (var lines = Files.lines(Path.of("/proc/self/maps"))) {
            return lines.filter(line -> line.endsWith(" " + name)).count();
        }
    }
}
