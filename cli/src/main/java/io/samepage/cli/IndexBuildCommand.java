package io.samepage.cli;

import io.samepage.image.DistinctBlocks;
import io.samepage.image.ImageIndex;
import io.samepage.image.ImageIndexException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code samepage index build SOURCE -o FILE}: hashes every block of SOURCE on every core
 * ({@link ImageIndex#build}), writes the index atomically ({@link ImageIndex#writeTo}) and prints a
 * one-paragraph summary. The output is checked before any block is read ({@link ImageIndex#checkWritable}).
 */
@Command(
        name = "build",
        sortOptions = false,
        description = {
            "Builds the pre-load index of SOURCE and writes it to FILE atomically (a temporary file beside "
                    + "it, flushed, then renamed over it), then prints a summary: blocks, zero blocks, "
                    + "distinct non-zero blocks, size, root digest and the time it took.",
            "",
            "SOURCE is a raw disk image or any single file, or a directory tree. A directory is laid out "
                    + "as every regular file below it (symbolic links are not followed), in unsigned UTF-8 "
                    + "order of their relative paths, each starting on a 4 KiB boundary with its last block "
                    + "padded with zeros.",
            "",
        },
        footer = {
            "",
            "Blocks are hashed on every core. While it works, a progress bar in MiB of the image is drawn "
                    + "on stderr if stderr is a terminal; otherwise nothing is printed there.",
            "",
            "Exit codes: 0 success; 1 failure while working (SOURCE changed while it was read, "
                    + "FILE could not be written: a full disk); "
                    + "2 bad usage or bad input (a missing, empty or unreadable SOURCE, a FILE that cannot be "
                    + "written or lies inside SOURCE), with one line on stderr naming it.",
        })
final class IndexBuildCommand implements Callable<Integer> {

    @CommandLine.Spec
    private CommandLine.Model.CommandSpec spec;

    @Mixin
    private HelpOption help;

    @Option(names = {"-o", "--output"}, paramLabel = "FILE", required = true,
            description = "The index file to write; an existing file is replaced atomically and keeps its "
                    + "mode (a new one gets 0666 less the umask). Its directory must exist, and it may not lie "
                    + "inside SOURCE. Required.")
    private String output;

    @Parameters(paramLabel = "SOURCE", description = "The image: a raw disk image or any file, or a directory tree.")
    private String source;

    @Override
    public Integer call() {
        Path image = IndexFiles.path(source);
        Path file = IndexFiles.path(output);
        long start = System.nanoTime();
        String summary;
        try {
            ImageIndex.checkWritable(file, image);
            try (ImageIndex index = build(image)) {
                index.writeTo(file);
                summary = summary(index, image, file, System.nanoTime() - start);
            }
        } catch (ImageIndexException e) {
            throw IndexFiles.toCommandException(e);
        }
        spec.commandLine().getOut().print(summary);
        return 0;
    }

    /** Builds the index, with a progress bar that is gone before anything else is printed. */
    static ImageIndex build(Path image) {
        try (StderrProgress progress = StderrProgress.start("Indexing")) {
            return ImageIndex.build(image, progress);
        } catch (UncheckedIOException e) {
            throw IndexFiles.unreadable(e);
        }
    }

    private static String summary(ImageIndex index, Path image, Path file, long elapsedNanos) {
        long distinct = DistinctBlocks.count(index);
        String distinctText = distinct < 0 ? "distinct non-zero blocks not counted (more than "
                + DistinctBlocks.MAX_BLOCKS + " non-zero blocks, or more than " + Integer.MAX_VALUE + " blocks)"
                : distinct + " distinct non-zero";
        return String.format(Locale.ROOT, "Indexed %s, %s: %d blocks of 4 KiB (%s laid out), %d of them zero, "
                        + "%s.%nRoot digest %s.%nWrote %s (%s) in %.2f s.%n",
                image, IndexFiles.describe(index.layout()), index.blockCount(),
                IndexFiles.size(index.sourceSizeBytes()), index.zeroBlocks(), distinctText, index.rootDigestHex(), file, IndexFiles.size(index.sizeBytes()),
                elapsedNanos / 1e9);
    }
}
