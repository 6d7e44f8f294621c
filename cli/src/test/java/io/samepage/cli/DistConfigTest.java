package io.samepage.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.samepage.core.ScanKnobs;
import io.samepage.daemon.DaemonConfig;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The example daemon config shipped beside the CLI ({@code cli/src/dist/samepage.conf}). */
class DistConfigTest {

    @Test
    void theExampleConfigParsesWithEveryKeyUncommentedAndDocumentsTheEngineDefaults() throws IOException {
        List<String> lines = new ArrayList<>();
        for (String line : Files.readAllLines(Path.of("src/dist/samepage.conf"))) {
            boolean setting = line.matches("#[a-z_]+=.+");
            lines.add(setting && !line.startsWith("#source=") ? line.substring(1) : line);
        }
        DaemonConfig config = DaemonConfig.parse("samepage.conf", lines);
        assertEquals(1, config.sources().size());
        ScanKnobs documented = new ScanKnobs();
        config.applyTo(documented);
        ScanKnobs defaults = new ScanKnobs();
        assertEquals(defaults.pagesToScan(), documented.pagesToScan());
        assertEquals(defaults.sleepMillis(), documented.sleepMillis());
        assertEquals(defaults.maxPageSharing(), documented.maxPageSharing());
        assertEquals(defaults.smartScan(), documented.smartScan());
        assertEquals(defaults.advisorMaxPagesToScan(), documented.advisorMaxPagesToScan());
        for (String key : DaemonConfig.KNOB_KEYS) {
            assertTrue(lines.stream().anyMatch(l -> l.startsWith(key + "=")), key + " is not in the example");
        }
        for (String key : io.samepage.daemon.KsmPolicyConfig.KEYS) {
            assertTrue(lines.stream().anyMatch(l -> l.matches("#?" + key + "=.*")), key + " is not in the example");
        }
        for (String key : DaemonConfig.DAEMON_KEYS) {
            assertTrue(lines.stream().anyMatch(l -> l.matches("#?" + key + "=.*")), key + " is not in the example");
        }
    }
}
