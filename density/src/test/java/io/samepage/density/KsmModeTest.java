package io.samepage.density;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.samepage.host.KernelKsm;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Mode (d) for real: a helper process, kernel KSM at full rate, on two tiny guests. Runs only where
 * KSM's knobs are writable (root, KSM in the kernel); it takes the host-wide KSM lock, and must leave
 * every knob as it found it.
 */
class KsmModeTest {

    private static final List<String> KNOBS = List.of("run", "pages_to_scan", "sleep_millisecs", "use_zero_pages");

    @TempDir
    Path dir;

    @Test
    void theHelpersIdenticalPagesMergeAndEveryKnobIsRestored() throws Exception {
        KernelKsm ksm = KernelKsm.system();
        String unavailable = KsmMode.unavailableReason(ksm);
        Assumptions.assumeTrue(unavailable == null, () -> "kernel KSM cannot be driven here: " + unavailable);
        Path image = TestImages.randomFile(dir, 300, 1);
        int n = 2;
        Map<String, String> before = knobs(ksm);
        ModeResult result;
        long touched;
        try (PageMix content = PageMix.density(image, n, 2, 25, 9); KsmMode mode = KsmMode.open(ksm)) {
            touched = (long) n * content.pagesPerGuest();
            result = mode.run(content, n, KsmMode.Rate.FULL, 60, 0);
            // Shareable: the image pages not written after boot (one copy stays) and every zeroed page.
            long shareable = (long) (content.imagePages() - content.writtenAfterBootPages()) * (n - 1)
                    + (long) n * content.zeroPages();
            assertTrue(result.savedPages() >= shareable * 9 / 10,
                    result.savedPages() + " saved of about " + shareable + " shareable: " + result.note());
            assertNotNull(result.at99(), result.note());
        }
        assertEquals(before, knobs(ksm), "every knob as it was, after the session");
        assertEquals(0, Long.parseLong(Files.readString(ksm.directory().resolve("pages_sharing")).strip()),
                "unmerged afterwards");
        assertEquals((touched - result.savedPages()) * 4096, result.hostBytes());
    }

    private static Map<String, String> knobs(KernelKsm ksm) throws Exception {
        Map<String, String> values = new LinkedHashMap<>();
        for (String knob : KNOBS) {
            values.put(knob, Files.readString(ksm.directory().resolve(knob)).strip());
        }
        return values;
    }
}
