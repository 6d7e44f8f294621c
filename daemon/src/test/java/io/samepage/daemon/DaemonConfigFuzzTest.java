package io.samepage.daemon;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.code_intelligence.jazzer.junit.FuzzTest;
import io.samepage.core.ScanKnobs;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.regex.Pattern;

/**
 * Coverage-guided fuzzing of the daemon's config parser: any text either parses into a config whose
 * knobs apply to a fresh {@link ScanKnobs} and whose settings are in range, or is refused with one
 * {@link DaemonException} whose message is one printable line, {@code FILE: ...} or
 * {@code FILE:LINE: ...}. No other exception may escape.
 *
 * <p>The input is the file's bytes, split into lines as {@link DaemonConfig#read} splits them
 * ({@code \n}, {@code \r} or both). The seeds ({@code DaemonConfigFuzzTestInputs/}) are the example
 * config shipped in {@code cli/src/dist} and configs that set every key. In {@code ./mvnw verify}
 * this runs for the bound below (see docs/fuzzing.md).
 */
class DaemonConfigFuzzTest {

    /** A line break or a control character: a message holding one is not one printable line. */
    private static final Pattern NOT_ONE_LINE = Pattern.compile("\\R|\\p{Cntrl}");

    @FuzzTest(maxExecutions = 500_000, maxDuration = "20s")
    void anyTextParsesIntoAValidConfigOrIsRefusedWithOneLine(byte[] input) {
        List<String> lines = new String(input, StandardCharsets.UTF_8).lines().toList();
        DaemonConfig config;
        try {
            config = DaemonConfig.parse("fuzz.conf", lines);
        } catch (DaemonException e) {
            assertTrue(e.getMessage().startsWith("fuzz.conf:"), e.getMessage());
            assertFalse(NOT_ONE_LINE.matcher(e.getMessage()).find(), "not one printable line: " + e.getMessage());
            return;
        }
        assertFalse(config.sources().isEmpty());
        assertTrue(config.metricsPort() >= Daemon.Context.METRICS_PORT_ANY && config.metricsPort() <= 65535,
                "port " + config.metricsPort());
        assertTrue(config.poolMib() == null || (config.poolMib() >= 1 && config.poolMib() <= Daemon.Context.MAX_POOL_MIB));
        assertTrue(config.estimateIntervalSeconds() >= 1);
        assertDoesNotThrow(() -> config.applyTo(new ScanKnobs()), "the knobs were checked while parsing");
    }
}
