package io.samepage.host;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@link KernelKsm} against a fake {@code /sys/kernel/mm/ksm}: reading, validation, write order, refusals. */
class KernelKsmTest {

    @TempDir
    Path root;

    private FakeKsm fake;

    @BeforeEach
    void createFake() throws IOException {
        fake = FakeKsm.create(root);
    }

    private static Map<String, String> pairs(String... nameValue) {
        Map<String, String> pairs = new LinkedHashMap<>();
        for (String pair : nameValue) {
            int equals = pair.indexOf('=');
            pairs.put(pair.substring(0, equals), pair.substring(equals + 1));
        }
        return pairs;
    }

    /** Requires that {@code pairs} are refused as INVALID, with a message starting {@code first}, and nothing written. */
    private String assertInvalid(String first, String... pairs) throws IOException {
        Map<String, String> before = fake.snapshot();
        KernelKsmException e = assertThrows(KernelKsmException.class, () -> fake.ksm().set(pairs(pairs)));
        assertEquals(KernelKsmException.Kind.INVALID, e.kind(), e.getMessage());
        assertTrue(e.getMessage().startsWith(first), e.getMessage());
        assertEquals(List.of(), fake.writes);
        assertEquals(before, fake.snapshot());
        return e.getMessage();
    }

    @Test
    void statusReadsEveryFileByNameKnobsFirstThenCountersThenUnknownFilesAsTheyAre() throws IOException {
        fake.put("zz_new_counter", "42");
        fake.put("a_new_knob", "fast slow");
        KsmStatus status = fake.ksm().status();
        List<String> names = new ArrayList<>(status.values().keySet());
        assertEquals(FakeKsm.BOOT.size() + 2, names.size());
        assertTrue(names.containsAll(FakeKsm.BOOT.keySet()));
        assertEquals(List.of("run", "pages_to_scan", "sleep_millisecs"), names.subList(0, 3));
        assertEquals(KsmKnob.values().length, names.indexOf("pages_shared"));
        assertEquals(List.of("a_new_knob", "zz_new_counter"), names.subList(names.size() - 2, names.size()));
        assertEquals("fast slow", status.value("a_new_knob").orElseThrow());
        assertEquals(42, status.number("zz_new_counter").orElseThrow());
        assertEquals("none", status.value(KsmKnob.ADVISOR_MODE).orElseThrow());
        assertTrue(status.hasAdvisor());
        assertFalse(status.advisorScanTime());
    }

    @Test
    void savedBytesAndSharingRatioFollowKsmDefinitions() throws IOException {
        fake.put("pages_shared", "10");
        fake.put("pages_sharing", "35");
        fake.put("ksm_zero_pages", "5");
        fake.put("general_profit", "-8192");
        KsmStatus status = fake.ksm().status();
        assertEquals(40 * 4096, status.savedBytes());
        assertEquals(3.5, status.sharingRatio().orElseThrow());
        assertEquals(-8192, status.number("general_profit").orElseThrow());
        fake.put("pages_shared", "0");
        assertTrue(fake.ksm().status().sharingRatio().isEmpty());
    }

    @Test
    void aMissingDirectoryMeansThisKernelHasNoKsm() {
        KernelKsm ksm = new KernelKsm(root.resolve("no-such-dir"), root);
        assertFalse(ksm.present());
        for (Runnable call : List.<Runnable>of(ksm::status, () -> ksm.set(pairs("run=1")))) {
            KernelKsmException e = assertThrows(KernelKsmException.class, call::run);
            assertEquals(KernelKsmException.Kind.ABSENT, e.kind());
            assertTrue(e.getMessage().startsWith("this kernel has no KSM: " + root.resolve("no-such-dir")
                    + " does not exist"), e.getMessage());
        }
    }

    @Test
    void setWritesInASafeOrderWhateverTheOrderGiven() throws IOException {
        List<KnobChange> changes = fake.ksm().set(pairs("run=1", "sleep_millisecs=50", "advisor_mode=scan-time",
                "advisor_min_pages_to_scan=1000", "max_page_sharing=512", "use_zero_pages=1"));
        List<String> expected = List.of("max_page_sharing=512", "advisor_min_pages_to_scan=1000",
                "advisor_mode=scan-time", "sleep_millisecs=50", "use_zero_pages=1", "run=1");
        assertEquals(expected, fake.writes);
        assertEquals(expected.size(), changes.size());
        assertEquals(new KnobChange(KsmKnob.ADVISOR_MODE, "none", "scan-time"), changes.get(2));
        assertEquals("run: 0 -> 1", changes.getLast().toString());
        assertEquals("512", fake.get("max_page_sharing"));
    }

    @Test
    void stoppingGoesFirstAndAnUnmergeLetsMaxPageSharingChangeWhilePagesAreShared() throws IOException {
        fake.put("run", "1");
        fake.put("pages_shared", "7");
        fake.ksm().set(pairs("max_page_sharing=1024", "pages_to_scan=5000", "run=2"));
        assertEquals(List.of("run=2", "max_page_sharing=1024", "pages_to_scan=5000"), fake.writes);
        fake.writes.clear();
        fake.ksm().set(pairs("sleep_millisecs=5", "run=0"));
        assertEquals(List.of("run=0", "sleep_millisecs=5"), fake.writes);
    }

    @Test
    void maxPageSharingCannotChangeWhilePagesAreSharedButMaySetItsOwnValue() throws IOException {
        fake.put("pages_shared", "3");
        String message = assertInvalid("max_page_sharing=512: cannot change while 3 pages are shared",
                "sleep_millisecs=10", "max_page_sharing=512");
        assertTrue(message.contains("unmerge first: run=2"), message);
        assertInvalid("merge_across_nodes=0: cannot change while 3 pages are shared", "merge_across_nodes=0");
        assertEquals("max_page_sharing: 256 (unchanged)",
                fake.ksm().set(pairs("max_page_sharing=256")).getFirst().toString());
    }

    @Test
    void pagesToScanIsRefusedWhileTheAdvisorSteersItUnlessTheBatchTurnsItOff() throws IOException {
        fake.put("advisor_mode", "none [scan-time]");
        String message = assertInvalid("pages_to_scan=1000: refused while advisor_mode=scan-time", "pages_to_scan=1000");
        assertTrue(message.contains("set advisor_mode=none first"), message);
        fake.ksm().set(pairs("pages_to_scan=1000", "advisor_mode=none"));
        assertEquals(List.of("advisor_mode=none", "pages_to_scan=1000"), fake.writes);
        fake.writes.clear();
        assertInvalid("pages_to_scan=10: refused while advisor_mode=scan-time", "advisor_mode=scan-time",
                "pages_to_scan=10");
    }

    @Test
    void runTakesZeroOneAndTwoAndRefusesTheKernelsOfflineFlag() throws IOException {
        String offline = assertInvalid("run=4: 4 is KSM_RUN_OFFLINE", "run=4");
        assertTrue(offline.contains("write 0 (stop), 1 (run) or 2 (unmerge all)"), offline);
        for (String bad : List.of("3", "-1", "", "1.0", "+1", "one", "18446744073709551617")) {
            assertInvalid("run=" + bad + ": must be 0 (stop), 1 (run) or 2 (unmerge all)", "run=" + bad);
        }
        for (String good : List.of("1", "2", "0", "00")) {
            fake.ksm().set(pairs("run=" + good));
        }
        assertEquals(List.of("run=1", "run=2", "run=0", "run=0"), fake.writes);
    }

    @Test
    void unsignedKnobsTakeTheRangeOfTheirKernelType() throws IOException {
        fake.ksm().set(pairs("sleep_millisecs=4294967295", "pages_to_scan=0", "max_page_sharing=2147483647",
                "stable_node_chains_prune_millisecs=0", "advisor_target_scan_time=1"));
        assertEquals("4294967295", fake.get("sleep_millisecs"));
        fake.writes.clear();
        assertInvalid("sleep_millisecs=4294967296: must be 0 to 4294967295", "sleep_millisecs=4294967296");
        assertInvalid("pages_to_scan=-5: must be 0 to 4294967295, written as decimal digits",
                "pages_to_scan=-5");
        assertInvalid("max_page_sharing=1: must be 2 to 2147483647", "max_page_sharing=1");
        assertInvalid("max_page_sharing=2147483648: ", "max_page_sharing=2147483648");
        assertInvalid("advisor_max_cpu=0: must be 1 to 100", "advisor_max_cpu=0");
        assertInvalid("advisor_max_cpu=101: ", "advisor_max_cpu=101");
        assertInvalid("advisor_target_scan_time=0: ", "advisor_target_scan_time=0");
        assertInvalid("advisor_min_pages_to_scan=0: ", "advisor_min_pages_to_scan=0");
        assertInvalid("sleep_millisecs=0x10: ", "sleep_millisecs=0x10");
    }

    @Test
    void booleansTakeZeroOrOneAndAdvisorModeNoneOrScanTime() throws IOException {
        for (String knob : List.of("use_zero_pages", "smart_scan", "merge_across_nodes")) {
            assertInvalid(knob + "=2: must be 0 or 1", knob + "=2");
            assertInvalid(knob + "=y: ", knob + "=y");
        }
        assertInvalid("advisor_mode=scan_time: must be none or scan-time", "advisor_mode=scan_time");
        fake.ksm().set(pairs("use_zero_pages=1", "smart_scan=0"));
        assertEquals("1", fake.get("use_zero_pages"));
    }

    @Test
    void theAdvisorsMaximumMayNotFallBelowItsMinimum() throws IOException {
        assertInvalid("advisor_max_pages_to_scan=400: must not be below advisor_min_pages_to_scan (500)",
                "advisor_max_pages_to_scan=400");
        assertInvalid("advisor_min_pages_to_scan=40000: must not be above advisor_max_pages_to_scan (30000)",
                "advisor_min_pages_to_scan=40000");
        fake.ksm().set(pairs("advisor_min_pages_to_scan=40000", "advisor_max_pages_to_scan=50000"));
        assertEquals("40000", fake.get("advisor_min_pages_to_scan"));
    }

    /**
     * Found by {@link KsmReadersFuzzTest}: the check of the advisor's bounds parsed the kernel's other
     * bound with {@link Long#parseLong}, so one that is not a number escaped as a NumberFormatException.
     * It counts as absent now, as {@link KsmStatus#number} has it.
     */
    @Test
    void theAdvisorsBoundsCheckCountsAKernelBoundThatIsNotANumberAsAbsent() throws IOException {
        fake.put("advisor_max_pages_to_scan", "lots");
        fake.put("advisor_min_pages_to_scan", "");
        assertEquals(1, fake.ksm().plan(pairs("advisor_min_pages_to_scan=400")).size());
        assertEquals(1, fake.ksm().plan(pairs("advisor_max_pages_to_scan=400")).size());
    }

    @Test
    void unknownNamesCountersAndFilesThisKernelLacksAreRefusedByName() throws IOException {
        String unknown = assertInvalid("sleep_milisecs=20: unknown knob sleep_milisecs; the knobs are run, "
                + "pages_to_scan, sleep_millisecs,", "run=1", "sleep_milisecs=20");
        assertTrue(unknown.contains("advisor_target_scan_time"), unknown);
        assertInvalid("pages_shared=0: pages_shared is a counter, which only the kernel writes", "pages_shared=0");
        fake.put("a_new_knob", "1");
        assertInvalid("a_new_knob=2: Samepage does not know the file a_new_knob", "a_new_knob=2");
        Files.delete(fake.directory.resolve("advisor_mode"));
        assertInvalid("advisor_mode=none: this kernel has no " + fake.directory.resolve("advisor_mode"),
                "advisor_mode=none");
    }

    @Test
    void aKnobThisProcessCannotWriteIsReportedBeforeAnythingIsWritten() throws IOException {
        fake.notWritable.add("run");
        KernelKsmException e = assertThrows(KernelKsmException.class,
                () -> fake.ksm().set(pairs("sleep_millisecs=30", "run=1")));
        assertEquals(KernelKsmException.Kind.READ_ONLY, e.kind());
        assertTrue(e.getMessage().startsWith(fake.directory.resolve("run") + " is not writable: KSM's knobs are "
                + "root's; run as root"), e.getMessage());
        assertEquals(List.of(), fake.writes);
        assertEquals("20", fake.get("sleep_millisecs"));
    }

    @Test
    void anAccessErrorAtWriteTimeIsReadOnlyAndListsWhatWasWritten() throws IOException {
        fake.failures.put("run", new AccessDeniedException(fake.directory.resolve("run").toString()));
        KernelKsmException denied = assertThrows(KernelKsmException.class,
                () -> fake.ksm().set(pairs("run=1", "sleep_millisecs=30")));
        assertEquals(KernelKsmException.Kind.READ_ONLY, denied.kind());
        assertEquals(List.of(new KnobChange(KsmKnob.SLEEP_MILLISECS, "20", "30")), denied.written());
        fake.failures.put("run", new FileSystemException(fake.directory.resolve("run").toString(), null,
                "Read-only file system"));
        KernelKsmException readOnly = assertThrows(KernelKsmException.class, () -> fake.ksm().set(pairs("run=1")));
        assertEquals(KernelKsmException.Kind.READ_ONLY, readOnly.kind());
        assertTrue(readOnly.getMessage().contains("(Read-only file system)"), readOnly.getMessage());
    }

    @Test
    void aKernelRefusalNamesTheKnobAndValueAndListsWhatWasWrittenBeforeIt() throws IOException {
        fake.failures.put("use_zero_pages", new IOException("Invalid argument"));
        KernelKsmException e = assertThrows(KernelKsmException.class,
                () -> fake.ksm().set(pairs("use_zero_pages=1", "run=1", "sleep_millisecs=30")));
        assertEquals(KernelKsmException.Kind.REFUSED, e.kind());
        assertEquals("use_zero_pages=1: the kernel refused it (Invalid argument)", e.getMessage());
        assertEquals(List.of("sleep_millisecs=30"), fake.writes, "sleep_millisecs goes before use_zero_pages");
        assertEquals(List.of(new KnobChange(KsmKnob.SLEEP_MILLISECS, "20", "30")), e.written());
        assertEquals("0", fake.get("run"), "nothing after the refusal is written");
    }

    @Test
    void aBusyStableTreeRefusalSaysToUnmergeFirst() {
        fake.failures.put("max_page_sharing", new IOException("Device or resource busy"));
        KernelKsmException e = assertThrows(KernelKsmException.class,
                () -> fake.ksm().set(pairs("max_page_sharing=300")));
        assertEquals(KernelKsmException.Kind.REFUSED, e.kind());
        assertEquals("max_page_sharing=300: the kernel refused it (Device or resource busy); pages are shared: "
                + "unmerge first: run=2", e.getMessage());
    }

    @Test
    void planValidatesAndOrdersWithoutWriting() throws IOException {
        List<KnobChange> plan = fake.ksm().plan(pairs("run=1", "advisor_mode=scan-time"));
        assertEquals(List.of(new KnobChange(KsmKnob.ADVISOR_MODE, "none", "scan-time"),
                new KnobChange(KsmKnob.RUN, "0", "1")), plan);
        assertEquals(List.of(), fake.writes);
    }
}
