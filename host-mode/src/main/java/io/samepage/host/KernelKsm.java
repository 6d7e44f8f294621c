package io.samepage.host;

import io.samepage.hashing.Pages;
import java.io.IOException;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.EnumMap;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/**
 * Kernel KSM, read and written through {@code /sys/kernel/mm/ksm} and {@code /proc/PID/ksm_stat}.
 *
 * <p>Reading lists the directory and reads every file, so a kernel's new files show up without a
 * Samepage release ({@link KsmStatus}). Writing a batch of knobs ({@link #set}) has three steps:
 * <ol>
 *   <li>Validate every pair before touching any file, with the rules of mm/ksm.c's store handlers
 *       ({@link KsmKnob#canonical}) and the rules that depend on the kernel's state: a change of
 *       {@code max_page_sharing} or {@code merge_across_nodes} is refused while {@code pages_shared > 0}
 *       (the kernel would answer EBUSY) unless the batch unmerges first ({@code run=2}), and
 *       {@code pages_to_scan} is refused while {@code advisor_mode} is (or becomes) {@code scan-time}
 *       (EINVAL). A file this kernel lacks, or that this user cannot write, is refused here too.</li>
 *   <li>Order the writes ({@link KsmKnob#writeStage}): stop or unmerge first, {@code run=1} last.</li>
 *   <li>Write each value in one {@code write(2)}, reading the knob before and after, so the result says
 *       what the kernel now holds (switching {@code advisor_mode} also resets {@code pages_to_scan}).</li>
 * </ol>
 * The kernel still has the last word: another writer may change its state between validation and
 * write. Its refusal becomes {@link KernelKsmException.Kind#REFUSED}, naming the knob and the value,
 * with the knobs already written in {@link KernelKsmException#written()}. Samepage does not roll them
 * back: a rollback is a second batch that can fail the same way, and the operator sees both.
 *
 * <p>The rejected alternative: write through the engine's {@code ScanKnobs}. Its rules are KSM's, but
 * it validates the engine's state, not the kernel's, and the kernel has knobs the engine lacks.
 *
 * <p>Thread safety: stateless between calls and safe to share; concurrent batches from several
 * threads or processes interleave as their writes reach the kernel.
 */
public final class KernelKsm {

    /** Where Linux shows KSM. */
    public static final Path SYSFS_DIRECTORY = Path.of("/sys/kernel/mm/ksm");

    /** Where Linux shows processes. */
    public static final Path PROC_DIRECTORY = Path.of("/proc");

    static final int PAGE_SIZE = Pages.PAGE_SIZE;

    private final Path directory;
    private final Path procDirectory;
    private final KsmFiles files;

    /** This machine's KSM: {@link #SYSFS_DIRECTORY} and {@link #PROC_DIRECTORY}. */
    public static KernelKsm system() {
        return new KernelKsm(SYSFS_DIRECTORY, PROC_DIRECTORY);
    }

    /**
     * KSM shown under {@code directory} and processes under {@code procDirectory}: another machine's
     * sysfs and procfs mounted elsewhere (a container that sees the host's), or a test's directory.
     */
    public KernelKsm(Path directory, Path procDirectory) {
        this(directory, procDirectory, KsmFiles.DIRECT);
    }

    KernelKsm(Path directory, Path procDirectory, KsmFiles files) {
        this.directory = directory;
        this.procDirectory = procDirectory;
        this.files = files;
    }

    public Path directory() {
        return directory;
    }

    public Path procDirectory() {
        return procDirectory;
    }

    /** True if this kernel has KSM: its directory exists. */
    public boolean present() {
        return Files.isDirectory(directory);
    }

    /**
     * Reads every file of the KSM directory.
     *
     * @throws KernelKsmException {@code ABSENT} without KSM, {@code IO} if a file cannot be read
     */
    public KsmStatus status() {
        requirePresent();
        Map<String, String> values = new HashMap<>();
        List<Path> entries;
        try (Stream<Path> listing = Files.list(directory)) {
            entries = listing.filter(Files::isRegularFile).toList();
        } catch (IOException e) {
            throw new KernelKsmException(KernelKsmException.Kind.IO, "cannot list " + directory + ": " + reason(e),
                    List.of(), e);
        }
        for (Path entry : entries) {
            values.put(entry.getFileName().toString(), read(entry));
        }
        return new KsmStatus(directory, values);
    }

    /** Reads {@code /proc/PID/ksm_stat}; absent (saying why) if there is none this user may read. */
    public KsmStat ksmStat(long pid) {
        Path processDirectory = procDirectory.resolve(Long.toString(pid));
        Path file = processDirectory.resolve("ksm_stat");
        try {
            return KsmStat.parse(pid, files.read(file));
        } catch (NoSuchFileException e) {
            return KsmStat.absent(pid, Files.isDirectory(processDirectory) ? "this kernel has no " + file
                    + " (Linux 6.1 added ksm_stat)" : "no process " + pid + " in " + procDirectory);
        } catch (AccessDeniedException e) {
            return KsmStat.absent(pid, file + " is not readable by this user (it needs the right to "
                    + "ptrace-read process " + pid + ")");
        } catch (IOException e) {
            return KsmStat.absent(pid, file + " could not be read (" + reason(e) + "; did the process exit?)");
        }
    }

    /**
     * Validates {@code assignments} (knob name to value) and returns the writes {@link #set} would do,
     * in its order, each with the knob's current value and the requested one. Writes nothing.
     *
     * @throws KernelKsmException {@code INVALID} naming the first bad pair, {@code ABSENT} without KSM,
     *     {@code READ_ONLY} if a knob cannot be written by this process
     */
    public List<KnobChange> plan(Map<String, String> assignments) {
        KsmStatus status = status();
        Map<KsmKnob, String> requested = new EnumMap<>(KsmKnob.class);
        for (Map.Entry<String, String> pair : assignments.entrySet()) {
            KsmKnob knob = knob(pair.getKey(), pair.getValue(), status);
            String value = knob.canonical(pair.getValue());
            if (status.value(knob).isEmpty()) {
                throw invalid(knob, value, "this kernel has no " + directory.resolve(knob.sysfsName()));
            }
            requested.put(knob, value);
        }
        checkAgainstState(requested, status);
        List<KnobChange> writes = new ArrayList<>();
        requested.forEach((knob, value) -> writes.add(new KnobChange(knob, status.value(knob).orElseThrow(), value)));
        writes.sort(Comparator.comparingInt((KnobChange w) -> w.knob().writeStage(w.newValue()))
                .thenComparing(KnobChange::knob));
        for (KnobChange write : writes) {
            requireWritable(write.knob());
        }
        return List.copyOf(writes);
    }

    /**
     * Validates every pair, then writes them in a safe order (see the class comment) and returns each
     * knob's value before and after, in write order.
     *
     * @throws KernelKsmException as {@link #plan} does before anything is written; {@code REFUSED} if
     *     the kernel refused a write, {@code READ_ONLY} or {@code IO} if a write failed otherwise, each
     *     with the knobs written before it in {@link KernelKsmException#written()}; a knob written whose
     *     value could not be read back is listed there too, with the value written
     */
    public List<KnobChange> set(Map<String, String> assignments) {
        List<KnobChange> writes = plan(assignments);
        List<KnobChange> done = new ArrayList<>();
        for (KnobChange write : writes) {
            KsmKnob knob = write.knob();
            Path file = directory.resolve(knob.sysfsName());
            String before = readDuring(file, done);
            try {
                files.write(file, write.newValue());
            } catch (IOException e) {
                throw writeFailure(knob, write.newValue(), e, done);
            }
            String after;
            try {
                after = read(file);
            } catch (KernelKsmException e) {
                // Written, but not read back: listed with the value written, so that a restore puts it back.
                done.add(new KnobChange(knob, before, write.newValue()));
                throw new KernelKsmException(e.kind(), e.getMessage(), done, e.getCause());
            }
            done.add(new KnobChange(knob, before, after));
        }
        return List.copyOf(done);
    }

    /** Reads a knob during a batch: a failure lists the knobs written so far. */
    private String readDuring(Path file, List<KnobChange> done) {
        try {
            return read(file);
        } catch (KernelKsmException e) {
            throw new KernelKsmException(e.kind(), e.getMessage(), done, e.getCause());
        }
    }

    private KsmKnob knob(String name, String value, KsmStatus status) {
        return KsmKnob.bySysfsName(name).orElseThrow(() -> {
            String why;
            if (KsmStatus.COUNTERS.contains(name)) {
                why = name + " is a counter, which only the kernel writes";
            } else if (status.value(name).isPresent()) {
                why = "Samepage does not know the file " + name + " of " + directory + ", so it cannot check "
                        + "the value; write it yourself if you must";
            } else {
                List<String> names = new ArrayList<>();
                for (KsmKnob knob : KsmKnob.values()) {
                    names.add(knob.sysfsName());
                }
                why = "unknown knob " + name + "; the knobs are " + String.join(", ", names);
            }
            return new KernelKsmException(KernelKsmException.Kind.INVALID, name + "=" + value + ": " + why);
        });
    }

    /** The rules that depend on the kernel's state, applied to the state the batch leaves behind. */
    private static void checkAgainstState(Map<KsmKnob, String> requested, KsmStatus status) {
        boolean unmergesFirst = "2".equals(requested.get(KsmKnob.RUN));
        long pagesShared = status.pagesShared();
        for (KsmKnob knob : List.of(KsmKnob.MAX_PAGE_SHARING, KsmKnob.MERGE_ACROSS_NODES)) {
            String value = requested.get(knob);
            if (value != null && !value.equals(status.value(knob).orElse(value)) && pagesShared > 0
                    && !unmergesFirst) {
                throw invalid(knob, value, "cannot change while " + pagesShared + " pages are shared "
                        + "(pages_shared); unmerge first: run=2 (in this command or before it)");
            }
        }
        String mode = requested.getOrDefault(KsmKnob.ADVISOR_MODE,
                status.value(KsmKnob.ADVISOR_MODE).orElse(KsmKnob.ADVISOR_NONE));
        String pages = requested.get(KsmKnob.PAGES_TO_SCAN);
        if (pages != null && mode.equals(KsmKnob.ADVISOR_SCAN_TIME)) {
            throw invalid(KsmKnob.PAGES_TO_SCAN, pages, "refused while advisor_mode=scan-time steers "
                    + "pages_to_scan; set advisor_mode=none first (in this command or before it)");
        }
        String min = requested.get(KsmKnob.ADVISOR_MIN_PAGES_TO_SCAN);
        String max = requested.get(KsmKnob.ADVISOR_MAX_PAGES_TO_SCAN);
        if (min != null || max != null) {
            long effectiveMin = min != null ? Long.parseLong(min)
                    : status.number(KsmKnob.ADVISOR_MIN_PAGES_TO_SCAN.sysfsName()).orElse(1);
            long effectiveMax = max != null ? Long.parseLong(max)
                    : status.number(KsmKnob.ADVISOR_MAX_PAGES_TO_SCAN.sysfsName()).orElse(Long.MAX_VALUE);
            if (effectiveMax < effectiveMin) {
                throw max != null
                        ? invalid(KsmKnob.ADVISOR_MAX_PAGES_TO_SCAN, max,
                                "must not be below advisor_min_pages_to_scan (" + effectiveMin + ")")
                        : invalid(KsmKnob.ADVISOR_MIN_PAGES_TO_SCAN, min,
                                "must not be above advisor_max_pages_to_scan (" + effectiveMax + ")");
            }
        }
    }

    private void requireWritable(KsmKnob knob) {
        Path file = directory.resolve(knob.sysfsName());
        if (!files.writable(file)) {
            throw new KernelKsmException(KernelKsmException.Kind.READ_ONLY, file + " is not writable: "
                    + (readOnlyMount(file) ? "sysfs is mounted read-only here (as in most containers)"
                    : "KSM's knobs are root's; run as root") + "; nothing was written");
        }
    }

    private static boolean readOnlyMount(Path file) {
        try {
            return Files.getFileStore(file).isReadOnly();
        } catch (IOException e) {
            return false;
        }
    }

    /**
     * A failed write. An error at open is about access (EACCES, EROFS) or the file; an error from the
     * write itself is the store handler's answer, the kernel refusing the value.
     */
    private KernelKsmException writeFailure(KsmKnob knob, String value, IOException e, List<KnobChange> done) {
        Path file = directory.resolve(knob.sysfsName());
        String pair = knob.sysfsName() + "=" + value + ": ";
        if (e instanceof AccessDeniedException
                || e instanceof FileSystemException f && "Read-only file system".equals(f.getReason())) {
            return new KernelKsmException(KernelKsmException.Kind.READ_ONLY, pair + file + " is not writable ("
                    + reason(e) + ")", done, e);
        }
        if (e instanceof FileSystemException) {
            return new KernelKsmException(KernelKsmException.Kind.IO, pair + "cannot write " + file + " ("
                    + reason(e) + ")", done, e);
        }
        String hint = knob.needsEmptyStableTree() && "Device or resource busy".equals(e.getMessage())
                ? "; pages are shared: unmerge first: run=2" : "";
        return new KernelKsmException(KernelKsmException.Kind.REFUSED, pair + "the kernel refused it ("
                + reason(e) + ")" + hint, done, e);
    }

    private String read(Path file) {
        try {
            return KsmStatus.normalize(files.read(file));
        } catch (IOException e) {
            throw new KernelKsmException(KernelKsmException.Kind.IO, "cannot read " + file + ": " + reason(e),
                    List.of(), e);
        }
    }

    private void requirePresent() {
        if (!present()) {
            throw new KernelKsmException(KernelKsmException.Kind.ABSENT, "this kernel has no KSM: " + directory
                    + " does not exist (a kernel built without CONFIG_KSM, or no sysfs mounted)");
        }
    }

    private static KernelKsmException invalid(KsmKnob knob, String value, String why) {
        return new KernelKsmException(KernelKsmException.Kind.INVALID, knob.sysfsName() + "=" + value + ": " + why);
    }

    /** An I/O error's reason without the path Java puts in front of some of them. */
    static String reason(IOException e) {
        if (e instanceof FileSystemException f) {
            return f.getReason() != null ? f.getReason()
                    : e instanceof AccessDeniedException ? "permission denied"
                    : e instanceof NoSuchFileException ? "no such file" : "failed";
        }
        return e.getMessage() != null ? e.getMessage() : e.getClass().getSimpleName();
    }
}
