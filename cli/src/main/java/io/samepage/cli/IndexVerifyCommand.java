package io.samepage.cli;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.samepage.hashing.Pages;
import io.samepage.image.ImageIndex;
import io.samepage.image.ImageIndexException;
import io.samepage.image.ImageLayout;
import io.samepage.image.Verification;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code samepage index verify FILE SOURCE}: re-reads SOURCE, hashes every block again and compares
 * the result with the index ({@link ImageIndex#verify}): the image's identity and every block digest.
 * A difference is a check that failed (exit 1), reported on stdout; an index or source that cannot be
 * used is bad input (exit 2).
 */
@Command(
        name = "verify",
        sortOptions = false,
        description = {
            "Re-reads SOURCE and compares it with the index FILE: its identity (kind, laid-out size, newest "
                    + "modification time, files and their sizes, each file's change time and inode) and the SHA-256 "
                    + "digest of every block. Prints what it found: whether the identity matches, how many blocks "
                    + "differ and where the first one is. Reads all of SOURCE, hashing on every core.",
            "",
        },
        footer = {
            "",
            "While it works, a progress bar in MiB of SOURCE is drawn on stderr if stderr is a terminal; "
                    + "otherwise nothing is printed there.",
            "",
            "Exit codes: 0 SOURCE is exactly what FILE describes; 1 it is not (its identity or any block "
                    + "differs: rebuild the index), or a failure while working; 2 bad usage or bad input (a "
                    + "missing, foreign, corrupt or wrong-version index, a missing, empty or unreadable "
                    + "SOURCE), with one line on stderr naming it.",
        })
final class IndexVerifyCommand implements Callable<Integer> {

    @CommandLine.Spec
    private CommandLine.Model.CommandSpec spec;

    @Mixin
    private HelpOption help;

    @Option(names = "--json", description = "Print one JSON object (snake_case keys) instead of a table.")
    private boolean json;

    @Parameters(index = "0", paramLabel = "FILE", description = "An index file written by 'samepage index build'.")
    private String file;

    @Parameters(index = "1", paramLabel = "SOURCE", description = "The image the index was built from: a file "
            + "or a directory tree.")
    private String source;

    @Override
    public Integer call() {
        Path indexFile = IndexFiles.path(file);
        Path image = IndexFiles.path(source);
        ObjectNode found;
        try (ImageIndex index = ImageIndex.open(indexFile)) {
            Verification verification;
            try (StderrProgress progress = StderrProgress.start("Verifying")) {
                verification = index.verify(image, progress);
            }
            found = report(indexFile, image, index, verification);
        } catch (ImageIndexException e) {
            throw IndexFiles.toCommandException(e);
        } catch (UncheckedIOException e) {
            throw IndexFiles.unreadable(e);
        }
        spec.commandLine().getOut().print(json ? CounterReport.render(found) : table(found));
        return found.get("matches").asBoolean() ? 0 : SamepageCommand.EXIT_FAILURE;
    }

    /**
     * What the verification found. When the image's number of blocks changed, no block was compared,
     * and the mismatch counts are null (Verification then reports the larger block count as mismatched).
     */
    private static ObjectNode report(Path indexFile, Path image, ImageIndex index, Verification v) {
        ObjectNode node = CounterReport.newObject();
        node.put("index", indexFile.toString());
        node.put("source", image.toString());
        node.put("matches", v.matches());
        node.put("identity_difference", v.layoutDifference());
        node.put("blocks_compared", v.blocksCompared());
        boolean compared = v.blocksCompared() > 0;
        if (compared) {
            node.put("mismatched_blocks", v.mismatchedBlocks());
        } else {
            node.putNull("mismatched_blocks");
        }
        if (compared && v.mismatchedBlocks() > 0) {
            ImageLayout layout = index.layout();
            ImageLayout.Extent extent = layout.extents().get(layout.extentOfBlock(v.firstMismatchedBlock()));
            node.put("first_mismatched_block", v.firstMismatchedBlock());
            node.put("first_mismatched_file", layout.kind() == ImageLayout.Kind.FILE ? image.toString()
                    : image.resolve(extent.path()).toString());
            node.put("first_mismatched_file_offset",
                    (v.firstMismatchedBlock() << Pages.PAGE_SHIFT) - extent.imageOffset());
        } else {
            node.putNull("first_mismatched_block");
            node.putNull("first_mismatched_file");
            node.putNull("first_mismatched_file_offset");
        }
        return node;
    }

    private static String table(ObjectNode found) {
        TextTable table = new TextTable("check", "found");
        table.row("index", found.get("index").asText());
        table.row("source", found.get("source").asText());
        table.row("identity", found.get("identity_difference").isNull()
                ? "matches: same kind, laid-out size, modification time, files, change times and inodes"
                : "differs: " + found.get("identity_difference").asText());
        long compared = found.get("blocks_compared").asLong();
        String blocks;
        if (compared == 0) {
            blocks = "not compared: the image has a different number of blocks now";
        } else if (found.get("mismatched_blocks").asLong() == 0) {
            blocks = "all " + compared + " block digests match";
        } else {
            blocks = found.get("mismatched_blocks").asLong() + " of " + compared + " differ; the first is block "
                    + found.get("first_mismatched_block").asLong() + " (" + found.get("first_mismatched_file").asText()
                    + ", byte " + found.get("first_mismatched_file_offset").asLong() + ")";
        }
        table.row("blocks", blocks);
        table.row("result", found.get("matches").asBoolean() ? "the image is exactly what the index describes"
                : "the index does not describe the image any more: rebuild it with 'samepage index build'");
        return table.render();
    }
}
