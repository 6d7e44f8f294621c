package io.samepage.daemon;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.samepage.core.ScanKnobs;
import java.net.InetAddress;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** The daemon's config file: what it accepts, and the line and reason of everything it refuses. */
class DaemonConfigTest {

    private static final List<String> VALID = List.of(
            "# a daemon over two dumps and a process",
            "",
            "source = /var/lib/vm1.mem",
            "source=/var/lib/vm2.mem",
            "source=pid:4242",
            "source=qemu",
            "domain_per_source=1",
            "pool_mib=512",
            "metrics_port=9464",
            "metrics_address=::1",
            "counters_file=/tmp/samepage-test/counters",
            "estimate_interval_seconds=30",
            "pages_to_scan=500",
            "sleep_millisecs=50",
            "run=1",
            "max_page_sharing=64",
            "use_zero_pages=1",
            "smart_scan=0",
            "advisor_max_cpu=40",
            "advisor_target_scan_time=100",
            "advisor_min_pages_to_scan=200",
            "advisor_max_pages_to_scan=20000",
            "advisor_mode=scan-time");

    private static DaemonConfig parse(List<String> lines) {
        return DaemonConfig.parse("d.conf", lines);
    }

    private static String refusal(String... lines) {
        return assertThrows(DaemonException.class, () -> parse(List.of(lines))).getMessage();
    }

    @Test
    void everyKeyIsReadAndTheKnobsApplyInFileOrder() {
        DaemonConfig config = parse(VALID);
        assertEquals(List.of(new Source.File("/var/lib/vm1.mem"), new Source.File("/var/lib/vm2.mem"),
                new Source.Pid(4242), new Source.Qemu()), config.sources());
        assertTrue(config.domainPerSource());
        assertTrue(config.hasLiveSources());
        assertEquals(512L, config.poolMib());
        assertEquals(9464, config.metricsPort());
        assertEquals(InetAddress.ofLiteral("::1"), config.metricsAddress());
        assertEquals(Path.of("/tmp/samepage-test/counters"), config.countersFile());
        assertEquals(30, config.estimateIntervalSeconds());
        ScanKnobs knobs = new ScanKnobs();
        config.applyTo(knobs);
        assertEquals(500, knobs.pagesToScan());
        assertEquals(50, knobs.sleepMillis());
        assertEquals(1, knobs.run());
        assertEquals(64, knobs.maxPageSharing());
        assertTrue(knobs.useZeroPages());
        assertFalse(knobs.smartScan());
        assertEquals(40, knobs.advisorMaxCpu());
        assertEquals(100, knobs.advisorTargetScanTimeSeconds());
        assertEquals(200, knobs.advisorMinPagesToScan());
        assertEquals(20000, knobs.advisorMaxPagesToScan());
        assertEquals(io.samepage.core.AdvisorMode.SCAN_TIME, knobs.advisorMode());
    }

    @Test
    void defaultsApplyWhereAKeyIsAbsent() {
        DaemonConfig config = parse(List.of("source=a.mem"));
        assertFalse(config.domainPerSource());
        assertFalse(config.hasLiveSources());
        assertEquals(null, config.poolMib());
        assertEquals(0, config.metricsPort());
        assertEquals(InetAddress.ofLiteral("127.0.0.1"), config.metricsAddress());
        assertEquals(CountersFile.defaultPath(), config.countersFile());
        assertEquals(Daemon.Context.DEFAULT_ESTIMATE_INTERVAL_SECONDS, config.estimateIntervalSeconds());
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', value = {
        "no equals sign                | source=a | just words                 | d.conf:2: 'just words' is not key=value",
        "unknown key                   | source=a | colour=blue                | d.conf:2: unknown key 'colour'",
        "empty value                   | source=a | pool_mib=                  | d.conf:2: pool_mib: no value",
        "not a number                  | source=a | pages_to_scan=many         | d.conf:2: pages_to_scan must be a whole number, not 'many'",
        "below the knob's minimum      | source=a | pages_to_scan=0            | d.conf:2: pages_to_scan must be at least 1, not 0",
        "above int range               | source=a | max_page_sharing=9999999999 | d.conf:2: max_page_sharing must be at most 2147483647, not 9999999999",
        "flag not 0 or 1               | source=a | use_zero_pages=yes         | d.conf:2: use_zero_pages must be 0 or 1, not 'yes'",
        "domain flag not 0 or 1        | source=a | domain_per_source=2        | d.conf:2: domain_per_source=2: must be 0 or 1",
        "pool too large                | source=a | pool_mib=8388608            | d.conf:2: pool_mib=8388608: must be at most 8388607 (about 8 TiB), not 8388608",
        "port out of range             | source=a | metrics_port=70000         | d.conf:2: metrics_port=70000: must be a port, 0 to 65535, or any, not 70000",
        "port a word                   | source=a | metrics_port=auto          | d.conf:2: metrics_port=auto: must be a port, 0 to 65535, or any, not 'auto'",
        "address a host name          | source=a | metrics_address=localhost  | d.conf:2: metrics_address=localhost: must be an IP address such as 127.0.0.1, ::1 or 0.0.0.0, not 'localhost'",
        "address out of range         | source=a | metrics_address=300.0.0.1  | d.conf:2: metrics_address=300.0.0.1: must be an IP address such as 127.0.0.1, ::1 or 0.0.0.0, not '300.0.0.1'",
        "interval zero                 | source=a | estimate_interval_seconds=0 | d.conf:2: estimate_interval_seconds=0: must be at least 1, not 0",
        "bad pid                       | source=a | source=pid:x               | d.conf:2: source=pid:x: must be a whole number, not 'x'",
        "source twice                  | source=a | source=a                   | d.conf:2: source=a: given twice (a guest's name must be unique)",
        "single-valued key twice       | pool_mib=1 | pool_mib=2               | d.conf:2: pool_mib: given twice (first on line 1)",
    })
    void aBadLineIsRefusedWithItsLineNumber(String why, String first, String second, String expected) {
        assertEquals(expected, refusal(first, second), why);
    }

    @Test
    void theEngineRulesOfAKnobAreCheckedWithItsLine() {
        String message = refusal("source=a", "# comment", "advisor_mode=scan-time", "pages_to_scan=100");
        assertEquals("d.conf:4: pages_to_scan is steered by advisor_mode=scan-time; set advisor_mode=none first", message);
        assertEquals("d.conf:2: run must be 0 (stop), 1 (merge) or 2 (unmerge all), not 3", refusal("source=a", "run=3"));
        assertEquals("d.conf:2: advisor_mode must be none or scan-time, not 'sometimes'",
                refusal("source=a", "advisor_mode=sometimes"));
    }

    /**
     * Found by {@link DaemonConfigFuzzTest}: the line's text was echoed raw, so a control character in
     * it (here SYN and NUL in a damaged key) went into the one-line message and onto the terminal.
     */
    @Test
    void aRefusedLineIsEchoedWithItsControlCharactersEscaped() {
        assertEquals("d.conf:1: unknown key 'sour\\u0016\\u0000'", refusal("sour\026\000=/var/lib/samepage/vm1.mem"));
        assertEquals("d.conf:2: pool_mib=1\\u001b[2J: must be a whole number, not '1\\u001b[2J'",
                refusal("source=a", "pool_mib=1\033[2J"));
    }

    @Test
    void aConfigWithoutASourceIsRefused() {
        assertEquals("d.conf: no source: give at least one 'source=' line (a file, pid:PID or qemu)",
                refusal("# nothing", "pool_mib=64"));
    }

    @Test
    void aMissingFileIsRefusedByName() {
        String message = assertThrows(DaemonException.class, () -> DaemonConfig.read(Path.of("/nonexistent/d.conf")))
                .getMessage();
        assertEquals("/nonexistent/d.conf: no such file or directory", message);
    }

    /**
     * {@link DaemonConfig#read} is also what a reload (SIGHUP) calls, after the CLI's checks of the first
     * read: a FIFO in the config's place blocked the signal's thread, a device or a huge file filled the
     * heap, and a file that is not UTF-8 was refused with a Java exception's name.
     */
    @Test
    void whatIsNotAConfigFileIsRefusedByNameWithoutReadingItAll(@org.junit.jupiter.api.io.TempDir Path dir)
            throws Exception {
        Path fifo = dir.resolve("fifo.conf");
        assertEquals(0, new ProcessBuilder("mkfifo", fifo.toString()).start().waitFor());
        assertEquals(fifo + ": not a regular file", org.junit.jupiter.api.Assertions.assertTimeoutPreemptively(
                java.time.Duration.ofSeconds(10), () -> assertThrows(DaemonException.class,
                        () -> DaemonConfig.read(fifo))).getMessage());
        assertEquals(dir + ": is a directory",
                assertThrows(DaemonException.class, () -> DaemonConfig.read(dir)).getMessage());
        Path huge = java.nio.file.Files.write(dir.resolve("huge.conf"), new byte[DaemonConfig.MAX_FILE_BYTES + 1]);
        assertEquals(huge + ": larger than 1024 KiB; a config file is a few lines",
                assertThrows(DaemonException.class, () -> DaemonConfig.read(huge)).getMessage());
        Path latin1 = java.nio.file.Files.write(dir.resolve("latin1.conf"),
                "source=/srv/caf\u00e9.img\n".getBytes(java.nio.charset.StandardCharsets.ISO_8859_1));
        assertEquals(latin1 + ": not UTF-8 text",
                assertThrows(DaemonException.class, () -> DaemonConfig.read(latin1)).getMessage());
        Path crlf = java.nio.file.Files.writeString(dir.resolve("crlf.conf"), "source=/srv/vm0.img\r\npool_mib=64\r\n");
        assertEquals(64, DaemonConfig.read(crlf).poolMib(), "lines end as Files.readAllLines ends them");
        Path bom = java.nio.file.Files.writeString(dir.resolve("bom.conf"), "\uFEFFsource=/srv/vm0.img\npool_mib=32\n");
        assertEquals(32, DaemonConfig.read(bom).poolMib(), "a byte order mark is not part of the first key");
    }

    /** Seeded: -Dsamepage.seed=N replays a run. */
    @Test
    void randomCorruptionOfAValidConfigThrowsOnlyTheConfigError() {
        long seed = Long.getLong("samepage.seed", System.nanoTime());
        SplittableRandom random = new SplittableRandom(seed);
        String alphabet = "=#:- \t0123456789abcxyz_\\\u00e9";
        for (int round = 0; round < 5_000; round++) {
            List<String> lines = new ArrayList<>(VALID);
            int edits = 1 + random.nextInt(4);
            for (int e = 0; e < edits; e++) {
                int at = random.nextInt(lines.size());
                StringBuilder line = new StringBuilder(lines.get(at));
                switch (random.nextInt(4)) {
                    case 0 -> { if (!line.isEmpty()) line.deleteCharAt(random.nextInt(line.length())); }
                    case 1 -> line.insert(random.nextInt(line.length() + 1), alphabet.charAt(random.nextInt(alphabet.length())));
                    case 2 -> lines.add(random.nextInt(lines.size() + 1), lines.get(random.nextInt(lines.size())));
                    default -> line.setLength(random.nextInt(line.length() + 1));
                }
                if (line.length() > 0 || random.nextBoolean()) {
                    lines.set(at, line.toString());
                }
            }
            try {
                parse(lines);
            } catch (DaemonException expected) {
                assertTrue(expected.getMessage().startsWith("d.conf:"), expected.getMessage());
            } catch (RuntimeException other) {
                throw new AssertionError("seed " + seed + ", round " + round + ": " + lines, other);
            }
        }
    }
}
