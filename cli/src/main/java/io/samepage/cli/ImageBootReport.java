package io.samepage.cli;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.samepage.density.ImageBoot;
import io.samepage.hashing.Pages;
import io.samepage.image.LoadStats;
import java.util.Locale;

/** The image part of {@code samepage demo} ({@link ImageBoot}) as text and as JSON. */
final class ImageBootReport {

    private ImageBootReport() {
    }

    /** The {@code image} object of {@code demo --json}. */
    static ObjectNode json(ImageBoot.Result r) {
        return CounterReport.tree(r.fields());
    }

    /** The image part as paragraphs and tables, ending in a blank line. */
    static String text(ImageBoot.Result r) {
        StringBuilder out = new StringBuilder();
        int guests = r.with().loads().size();
        String distinct = r.distinctBlocks() < 0 ? "" : ", " + r.distinctBlocks() + " distinct non-zero";
        out.append(String.format(Locale.ROOT, "Boot: %d guests load one image, %s (%s): %d blocks of 4 KiB "
                        + "(%s laid out), %d zero%s.%n",
                guests, r.image(), IndexFiles.describe(r.layout()), r.layout().blockCount(),
                IndexFiles.size(r.layout().sizeBytes()), r.zeroBlocks(), distinct));
        out.append(String.format(Locale.ROOT, "Index %s in %.2f s.%n%n", switch (r.origin()) {
            case BUILT_IN_MEMORY -> "built in memory";
            case OPENED -> "opened from " + r.indexFile() + " and checked against the image";
            case BUILT_AND_WRITTEN -> "built and written to " + r.indexFile();
        }, r.indexNanos() / 1e9));

        out.append("Without the index, every guest reads every block:\n");
        TextTable without = new TextTable("guest", "blocks_read", "load_ms", "jit_ms");
        for (ImageBoot.GuestLoad load : r.without().loads()) {
            without.row(load.guest(), load.stats().blocksRead(), millis(load.stats()), jitMillis(load));
        }
        out.append(without.render());
        out.append(frames(r.without(), guests)).append(".\n\n");

        out.append("With the index, a block whose content is resident is mapped copy-on-write and a zero block "
                + "maps the zero frame; only the rest is read:\n");
        TextTable with = new TextTable("guest", "blocks_read", "blocks_mapped", "zero_blocks", "load_ms", "jit_ms");
        for (ImageBoot.GuestLoad load : r.with().loads()) {
            LoadStats s = load.stats();
            with.row(load.guest(), s.blocksRead(), s.blocksMapped(), s.zeroBlocks(), millis(s), jitMillis(load));
        }
        out.append(with.render());
        out.append(frames(r.with(), guests));
        if (r.distinctBlocks() >= 0) {
            out.append(": the image's ").append(r.distinctBlocks())
                    .append(" distinct non-zero blocks, plus the zero frame");
        }
        out.append(".\n");
        ImageBoot.WarmUp w = r.warmUp();
        out.append(String.format(Locale.ROOT, "jit_ms: how long the JVM's compilers worked during the load. One guest "
                + "loaded each way first, twice, unrecorded here, while its code was compiled: %.0f then %.0f ms without "
                + "the index, %.0f then %.0f with it.%n%n", millis(w.without().stats()), millis(w.againWithout().stats()),
                millis(w.with().stats()), millis(w.againWith().stats())));
        out.append(String.format(Locale.ROOT, "With the index the first guest's load took %.1fx the later guests' "
                        + "median, and the later guests read %.2f%% of their blocks from the image.%n",
                r.with().firstToLaterLoadRatio(), 100 * r.with().laterReadFraction()));
        out.append(String.format(Locale.ROOT, "Every guest, with and without the index, read back the image's bytes "
                        + "at every %dth block (%d guest blocks compared with the files).%n%n",
                ImageBoot.SAMPLE_EVERY_BLOCKS, r.without().blocksVerified() + r.with().blocksVerified()));
        return out.toString();
    }

    private static String frames(ImageBoot.Part part, int guests) {
        return String.format(Locale.ROOT, "Host frames in use after %d guests: %d (%s)", guests,
                part.framesInUse(), IndexFiles.size(part.framesInUse() * Pages.PAGE_SIZE));
    }

    private static double millis(LoadStats stats) {
        return stats.loadNanos() / 1e6;
    }

    /** The JIT's compilation time during the load in ms, or "-" where the JVM does not measure it. */
    private static Object jitMillis(ImageBoot.GuestLoad load) {
        return load.compileNanos() < 0 ? "-" : (Object) (load.compileNanos() / 1_000_000);
    }
}
