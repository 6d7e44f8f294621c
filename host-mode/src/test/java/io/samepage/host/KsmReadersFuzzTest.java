package io.samepage.host;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.code_intelligence.jazzer.junit.FuzzTest;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Coverage-guided fuzzing of everything that reads kernel KSM's and the host's text: the files of
 * {@code /sys/kernel/mm/ksm} ({@link KernelKsm#status}, {@link KsmStatus}, and what is computed from
 * them: {@link KernelKsm#plan}'s state checks and {@link KsmTuner#decide}), {@code /proc/PID/ksm_stat}
 * ({@link KsmStat}), {@code /proc/meminfo} ({@link HostMemory}), {@code /proc/PID/smaps}
 * ({@link MergeableProcesses}) and ksmd's {@code /proc/PID/stat} ({@link Ksmd#cpuNanos}, which fails with
 * an {@link IOException} instead). Whatever the files hold, each either reads or fails with the module's
 * {@link HostException} whose message is one printable line; nothing else may escape.
 *
 * <p>The input is files as {@code head} prints several: a {@code ==> PATH <==} line, then the file.
 * Files under {@code /sys/kernel/mm/ksm/} replace that file of a booted kernel ({@link FakeKsm#BOOT});
 * a file named {@code ksm_stat}, {@code meminfo}, {@code smaps} or {@code stat} is read as that file; the section
 * {@code ==> samepage ksm set <==} holds {@code knob=value} lines for {@link KernelKsm#plan}, which
 * are the operator's own arguments, so lines with control characters are left out there. smaps is
 * written as the input's bytes (file names in it need not be UTF-8); the others as UTF-8 text. The seeds
 * ({@code KsmReadersFuzzTestInputs/}) are {@code head} of this project's host: its KSM directory,
 * {@code ksm_stat}, {@code meminfo} and smaps regions. In {@code ./mvnw verify} this runs for the
 * bound below (see docs/fuzzing.md).
 */
class KsmReadersFuzzTest {

    private static final int PID = 4242;
    private static final Pattern NOT_ONE_LINE = Pattern.compile("\\R|\\p{Cntrl}");
    private static final Pattern HEADER = Pattern.compile("(?m)^==> (.*) <==$");
    private static final String SYSFS = "/sys/kernel/mm/ksm/";
    private static final Path ROOT = root();
    /** Half the pages read are duplicates: with a policy of 0% and 0 bytes, KSM is to merge. */
    private static final MergeableEstimate.Potential MERGING =
            new MergeableEstimate.Potential(1000, 1000, 0, 1, 500, 0, 0, 0, 256, false);
    private static final HostMemory HOST = new HostMemory(16L << 30, 4L << 30);

    @FuzzTest(maxExecutions = 200_000, maxDuration = "20s")
    void anyKsmAndProcTextIsReadOrRefusedWithOneLine(byte[] input) throws IOException {
        Map<String, String> sysfs = new HashMap<>(FakeKsm.BOOT);
        Map<String, String> assignments = new LinkedHashMap<>();
        Path proc = ROOT.resolve("proc");
        Path processDirectory = proc.resolve(Integer.toString(PID));
        Files.deleteIfExists(proc.resolve("meminfo"));
        Files.deleteIfExists(processDirectory.resolve("smaps"));
        Files.deleteIfExists(processDirectory.resolve("stat"));
        // Split as bytes (Latin-1 maps each byte to one char): smaps is written as its raw bytes, since the
        // names in it are bytes, not UTF-8; every other file is read as text, so it is decoded as before.
        for (Map.Entry<String, String> raw : files(new String(input, StandardCharsets.ISO_8859_1)).entrySet()) {
            Map.Entry<String, String> file = Map.entry(utf8(raw.getKey()), utf8(raw.getValue()));
            String path = file.getKey();
            String name = path.substring(path.lastIndexOf('/') + 1);
            if (path.startsWith(SYSFS)) {
                sysfs.put(path.substring(SYSFS.length()), file.getValue());
            } else if (path.equals("samepage ksm set")) {
                file.getValue().lines().filter(l -> l.indexOf('=') > 0 && !NOT_ONE_LINE.matcher(l).find())
                        .forEach(l -> assignments.put(l.substring(0, l.indexOf('=')), l.substring(l.indexOf('=') + 1)));
            } else if (name.equals("ksm_stat")) {
                readKsmStat(file.getValue());
            } else if (name.equals("meminfo")) {
                Files.writeString(proc.resolve("meminfo"), file.getValue());
            } else if (name.equals("stat")) {
                Files.write(processDirectory.resolve("stat"), raw.getValue().getBytes(StandardCharsets.ISO_8859_1));
            } else if (name.equals("smaps")) {
                Files.write(processDirectory.resolve("smaps"), raw.getValue().getBytes(StandardCharsets.ISO_8859_1));
            }
        }
        KernelKsm ksm = new KernelKsm(ROOT.resolve("ksm"), proc, new SysfsFiles(sysfs));
        KsmStatus status = ksm.status();
        for (String name : status.values().keySet()) {
            status.number(name);
        }
        status.sharingRatio();
        status.savedBytes();
        status.run();
        status.advisorScanTime();

        HostMemory memory = HOST;
        if (Files.exists(proc.resolve("meminfo"))) {
            try {
                memory = HostMemory.read(proc);
                assertTrue(memory.totalBytes() > 0 && memory.freeBytes() >= 0, memory.toString());
            } catch (KernelKsmException e) {
                assertOneLine(e);
            }
        }
        if (Files.exists(processDirectory.resolve("smaps"))) {
            try {
                MergeableProcesses.Process process = MergeableProcesses.read(proc, PID, 0);
                assertTrue(process.residentBytes() >= 0 || process.regions().isEmpty(), process.toString());
            } catch (ProcessScanException e) {
                assertOneLine(e);
            }
        }
        if (Files.exists(processDirectory.resolve("stat"))) {
            try {
                assertTrue(new Ksmd(PID, processDirectory.resolve("stat"), 100).cpuNanos() >= 0);
            } catch (IOException e) {
                assertFalse(NOT_ONE_LINE.matcher(e.getMessage()).find(), "not one printable line: " + e.getMessage());
            }
        }
        for (KsmTuner.Rate rate : new KsmTuner.Rate[] {null, KsmTuner.Rate.ADVISOR, KsmTuner.Rate.KSMTUNED}) {
            try {
                KsmTuner.Plan plan = KsmTuner.decide(status, memory, 1, MERGING, new KsmTuner.Policy(0, 0, 1, rate, 100L));
                assertTrue(plan.merge());
                plan.writes();
            } catch (KernelKsmException e) {
                assertEquals(KernelKsmException.Kind.INVALID, e.kind(), e.getMessage());
                assertOneLine(e);
            }
        }
        assertFalse(KsmTuner.decide(status, memory, 0, MERGING, KsmTuner.Policy.defaults()).merge());
        try {
            ksm.plan(assignments);
        } catch (KernelKsmException e) {
            assertOneLine(e);
        }
    }

    /** Bytes held one per char (Latin-1) as the UTF-8 text they encode. */
    private static String utf8(String bytes) {
        return new String(bytes.getBytes(StandardCharsets.ISO_8859_1), StandardCharsets.UTF_8);
    }

    private static void readKsmStat(String text) {
        KsmStat stat = KsmStat.parse(PID, text);
        for (String name : stat.values().keySet()) {
            stat.number(name);
        }
        stat.mergeable();
        stat.tellsMergeable();
        stat.zeroPages();
        stat.processProfit();
    }

    private static void assertOneLine(HostException e) {
        assertFalse(NOT_ONE_LINE.matcher(e.getMessage()).find(), "not one printable line: " + e.getMessage());
    }

    /** The files of {@code head}'s output, by path. */
    private static Map<String, String> files(String text) {
        Map<String, String> files = new LinkedHashMap<>();
        Matcher header = HEADER.matcher(text);
        String path = null;
        int contentStart = 0;
        while (header.find()) {
            if (path != null) {
                files.put(path, text.substring(contentStart, header.start()));
            }
            path = header.group(1);
            contentStart = Math.min(header.end() + 1, text.length());
        }
        if (path != null) {
            files.put(path, text.substring(contentStart));
        }
        return files;
    }

    /** The sysfs files the input holds, and the boot values for the others; nothing is ever written. */
    private record SysfsFiles(Map<String, String> sysfs) implements KsmFiles {
        @Override
        public String read(Path file) throws IOException {
            String value = sysfs.get(file.getFileName().toString());
            if (value == null) {
                throw new NoSuchFileException(file.toString());
            }
            return value;
        }

        @Override
        public void write(Path file, String value) throws IOException {
            throw new IOException("the fuzz test writes nothing");
        }

        @Override
        public boolean writable(Path file) {
            return true;
        }
    }

    /** A KSM directory holding a booted kernel's files, and a proc directory with one process. */
    private static Path root() {
        try {
            Path root = Files.createTempDirectory("samepage-ksm-fuzz-");
            Path ksm = Files.createDirectories(root.resolve("ksm"));
            Path process = Files.createDirectories(root.resolve("proc").resolve(Integer.toString(PID)));
            // deleteOnExit deletes in the reverse order: the files, then their directories.
            for (Path made : new Path[] {root, ksm, process.getParent(), process, process.getParent().resolve("meminfo"),
                    process.resolve("smaps")}) {
                made.toFile().deleteOnExit();
            }
            for (String name : FakeKsm.BOOT.keySet()) {
                Files.createFile(ksm.resolve(name)).toFile().deleteOnExit();
            }
            return root;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
