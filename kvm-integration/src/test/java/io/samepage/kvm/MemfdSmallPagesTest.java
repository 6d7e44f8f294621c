package io.samepage.kvm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Memfd frames stay on 4 KiB pages whatever {@code transparent_hugepage/shmem_enabled} says: every
 * mapping of the memfd that spans more than one page is advised {@code MADV_NOHUGEPAGE} ({@code nh} in
 * {@code /proc/self/smaps}), so a fault through it allocates no large folio, and punching out one frame
 * gives its memory back. A one-page mapping cannot hold a folio larger than its page, so a remap that
 * continues no neighbour's file offsets is left unadvised: no syscall more per scattered merge.
 */
class MemfdSmallPagesTest {

    private static final int PAGE = MappedGuestMemory.PAGE_BYTES;
    private static final Path SHMEM_ENABLED = Path.of("/sys/kernel/mm/transparent_hugepage/shmem_enabled");

    @Test
    void everyMappingOfTheMemfdLargerThanAPageIsAdvisedNoHugePages() throws IOException {
        assumeTrue(Files.exists(SHMEM_ENABLED), "skipped: this kernel has no transparent huge pages");
        int count = 64;
        try (MemfdFrames frames = MemfdFrames.create("nh-test", 4 * count)) {
            MappedGuestMemory guest = frames.mapGuest(count);
            guest.map(0, 0, count, true);                          // a new guest: one run
            assertEquals(List.of(), unadvised("nh-test", 1), "the frame window and the guest's run");

            guest.map(5, 3 * count, false);                        // scattered: continues no neighbour
            guest.map(9, 2 * count, true);
            guest.map(10, 2 * count + 1, true);                    // continues page 9's frame
            guest.map(11, 2 * count + 2, false);                   // and on, read-only
            guest.protect(10, false);
            guest.map(20, 2 * count + 50, 4, true);                // a run in the middle
            guest.map(24, 2 * count + 54, true);                   // continuing the run
            guest.map(40, 3 * count + 1, true);                    // scattered first, continued after by
            guest.map(39, 3 * count, true);                        // a page mapped below it
            assertEquals(List.of(), unadvised("nh-test", 1), "every mapping of more than one page");
            assertFalse(unadvised("nh-test", 0).isEmpty(), "page 5 maps alone, unadvised: no syscall more");

            List<String> sizes = new ArrayList<>();
            for (String mapping : memfdMappings("nh-test")) {
                sizes.add(mapping.substring(0, mapping.indexOf(' ')));
            }
            assertTrue(sizes.size() <= 13, "adjacent advised pieces merged into one kernel mapping: " + sizes);
        }
    }

    /** The memfd mappings of more than {@code pages} pages whose VmFlags lack {@code nh}: address range and flags. */
    private static List<String> unadvised(String name, int pages) throws IOException {
        List<String> unadvised = new ArrayList<>();
        for (String mapping : memfdMappings(name)) {
            String[] range = mapping.substring(0, mapping.indexOf(' ')).split("-");
            long bytes = Long.parseUnsignedLong(range[1], 16) - Long.parseUnsignedLong(range[0], 16);
            if (bytes > (long) pages * PAGE && !List.of(mapping.substring(mapping.indexOf("VmFlags:") + 8).trim()
                    .split(" ")).contains("nh")) {
                unadvised.add(mapping);
            }
        }
        return unadvised;
    }

    /** Each /proc/self/smaps entry of memfd {@code name}: its header line, then its VmFlags line. */
    private static List<String> memfdMappings(String name) throws IOException {
        List<String> mappings = new ArrayList<>();
        String header = null;
        for (String line : Files.readAllLines(Path.of("/proc/self/smaps"), java.nio.charset.StandardCharsets.ISO_8859_1)) {
            if (line.matches("^[0-9a-f]+-[0-9a-f]+ .*")) {
                header = line.contains("/memfd:" + name + " ") || line.endsWith("/memfd:" + name) ? line : null;
            } else if (header != null && line.startsWith("VmFlags:")) {
                mappings.add(header + " " + line);
                header = null;
            }
        }
        return mappings;
    }
}
