package io.samepage.density;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.samepage.hashing.Pages;
import io.samepage.image.LoadStats;
import java.util.Locale;

/** The image part of {@code samepage demo} ({@link ImageBoot}) as the {@code image} object of its JSON. */
public final class ImageBootJson {

    private ImageBootJson() {
    }

    /** The {@code image} object of {@code demo --json}. */
    public static ObjectNode json(ImageBoot.Result r) {
        ObjectNode node = JsonNodeFactory.instance.objectNode();
        node.put("path", r.image().toString());
        node.put("source_kind", r.layout().kind().name().toLowerCase(Locale.ROOT));
        node.put("files", r.layout().extents().size());
        node.put("source_size_bytes", r.layout().sizeBytes());
        node.put("block_count", r.layout().blockCount());
        node.put("zero_blocks", r.zeroBlocks());
        if (r.distinctBlocks() < 0) {
            node.putNull("distinct_nonzero_blocks");
        } else {
            node.put("distinct_nonzero_blocks", r.distinctBlocks());
        }
        node.put("index_origin", r.origin().name().toLowerCase(Locale.ROOT));
        node.put("index_file", r.indexFile() == null ? null : r.indexFile().toString());
        node.put("index_nanos", r.indexNanos());
        node.set("without_index", part(r.without(), false));
        node.set("with_index", part(r.with(), true));
        node.put("first_to_later_load_ratio", r.with().firstToLaterLoadRatio());
        node.put("later_guests_read_fraction", r.with().laterReadFraction());
        node.put("sample_every_blocks", ImageBoot.SAMPLE_EVERY_BLOCKS);
        node.put("blocks_verified", r.without().blocksVerified() + r.with().blocksVerified());
        return node;
    }

    private static ObjectNode part(ImageBoot.Part part, boolean withIndex) {
        ObjectNode node = JsonNodeFactory.instance.objectNode();
        ArrayNode guests = node.putArray("guests");
        for (ImageBoot.GuestLoad load : part.loads()) {
            LoadStats s = load.stats();
            ObjectNode guest = guests.addObject().put("name", load.guest()).put("blocks_read", s.blocksRead());
            if (withIndex) {
                guest.put("blocks_mapped", s.blocksMapped()).put("zero_blocks", s.zeroBlocks());
            }
            guest.put("load_nanos", s.loadNanos());
        }
        node.put("host_frames_in_use", part.framesInUse());
        node.put("host_frame_bytes", part.framesInUse() * Pages.PAGE_SIZE);
        if (withIndex) {
            node.put("resident_frames", part.residentFrames());
        }
        return node;
    }
}
