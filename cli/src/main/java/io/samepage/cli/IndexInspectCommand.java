package io.samepage.cli;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.samepage.image.DistinctBlocks;
import io.samepage.image.ImageIndex;
import io.samepage.image.ImageIndexException;
import io.samepage.image.ImageLayout;
import java.nio.file.Path;
import java.time.Instant;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code samepage index inspect FILE}: opens an index ({@link ImageIndex#open(Path)}, which checks its
 * structure, checksums and root digest before trusting any of it) and prints its header. It does not
 * need the image.
 */
@Command(
        name = "inspect",
        sortOptions = false,
        description = {
            "Checks an index file (magic number, version, checksums, layout, root digest) and prints its "
                    + "header: format version, source kind (file or directory), the source's laid-out size and "
                    + "the bytes of its files, blocks, zero blocks, distinct non-zero blocks, files in the "
                    + "layout, the newest modification time (ISO-8601, UTC), whether each file's change time and "
                    + "inode were recorded (false where the file system had none: the staleness check then rests "
                    + "on size, modification time and files alone), the fast hash and its seed, the root digest "
                    + "(SHA-256 over the block digests, in block order) and the index's own size. "
                    + "Sizes are in bytes. The image itself is not read.",
            "",
        },
        footer = {
            "",
            "Exit codes: 0 success; 2 bad usage or bad input (a missing file, a file that is not a "
                    + "Samepage index, an index of another format version, a corrupt or truncated index), "
                    + "with one line on stderr naming the file.",
        })
final class IndexInspectCommand implements Callable<Integer> {

    @CommandLine.Spec
    private CommandLine.Model.CommandSpec spec;

    @Mixin
    private HelpOption help;

    @Option(names = "--json", description = "Print one JSON object (snake_case keys) instead of a table.")
    private boolean json;

    @Parameters(paramLabel = "FILE", description = "An index file written by 'samepage index build'.")
    private String file;

    @Override
    public Integer call() {
        Path path = IndexFiles.path(file);
        ObjectNode header;
        try (ImageIndex index = ImageIndex.open(path)) {
            header = header(path, index);
        } catch (ImageIndexException e) {
            throw IndexFiles.toCommandException(e);
        }
        spec.commandLine().getOut().print(json ? CounterReport.render(header) : table(header));
        return 0;
    }

    /** The header, in the order the help lists it, under the names both outputs use. */
    private static ObjectNode header(Path path, ImageIndex index) {
        ImageLayout layout = index.layout();
        long fileBytes = layout.extents().stream().mapToLong(ImageLayout.Extent::length).sum();
        long distinct = DistinctBlocks.count(index);
        ObjectNode node = CounterReport.newObject();
        node.put("index", path.toString());
        node.put("format_version", index.formatVersion());
        node.put("source_kind", layout.kind().name().toLowerCase(Locale.ROOT));
        node.put("source_size_bytes", index.sourceSizeBytes());
        node.put("file_bytes", fileBytes);
        node.put("block_count", index.blockCount());
        node.put("zero_blocks", index.zeroBlocks());
        if (distinct < 0) {
            node.putNull("distinct_nonzero_blocks");
        } else {
            node.put("distinct_nonzero_blocks", distinct);
        }
        node.put("files", layout.extents().size());
        node.put("newest_mtime", Instant.ofEpochSecond(0, layout.mtimeNanos()).toString());
        node.put("change_stamps", layout.changeStamps());
        node.put("fast_hash", index.fastHashAlgorithm().name());
        node.put("fast_hash_seed", index.fastHashSeed());
        node.put("root_digest", index.rootDigestHex());
        node.put("index_bytes", index.sizeBytes());
        return node;
    }

    private static String table(ObjectNode header) {
        TextTable table = new TextTable("field", "value");
        header.properties().forEach(field -> table.row(field.getKey(),
                field.getValue().isNull() ? "not counted (too many blocks)" : field.getValue().asText()));
        return table.render();
    }
}
