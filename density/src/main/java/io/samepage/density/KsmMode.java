package io.samepage.density;

import io.samepage.hashing.Pages;
import io.samepage.host.KernelKsm;
import io.samepage.host.KernelKsmException;
import io.samepage.host.KsmKnob;
import io.samepage.host.KsmStatus;
import io.samepage.host.Ksmd;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.charset.StandardCharsets;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * Mode (d): kernel KSM on the same bytes, in a helper process ({@link KsmHelper}).
 *
 * <p>One session holds the host-wide lock {@value #LOCK_FILE} ({@code FileChannel.lock}, the lock the
 * end-to-end tests that drive KSM take), so it never races them or another suite. The lock is exclusive,
 * so the file must be open for writing: a session that makes the file makes it 0666, as the tests'
 * {@code HostKsmLock} does, so that every user can take the lock after root did. It remembers the knobs
 * it writes ({@code run}, {@code pages_to_scan}, {@code sleep_millisecs}, {@code use_zero_pages} and,
 * where the kernel has it, {@code advisor_mode}) and on {@link #close()}, and from a shutdown hook on
 * Ctrl-C, ends the helper, writes {@code run=2} (unmerge everything) and restores them. A SIGKILL of the
 * suite leaves the knobs as they were during the run: the helper exits when its stdin closes, and
 * {@code samepage ksm set run=2} unmerges.
 *
 * <p>One run: start the helper and wait for it to fill its memory; then {@code use_zero_pages=1} (so
 * zero pages land in {@code ksm_zero_pages}, as the engine's do with {@code use_zero_pages} on),
 * {@code pages_to_scan} and {@code sleep_millisecs} of the rate, and {@code run=1}; the clock starts at
 * that write. Every {@value #POLL_MILLIS} ms: {@code pages_sharing + ksm_zero_pages} (the saving),
 * {@code full_scans} and ksmd's CPU time ({@link Ksmd}). It stops when the saving has not changed for two
 * full scans (after at least three since the start), or at the timeout. Host bytes: the helper's guest
 * bytes minus the saving x 4096, plus KSM's own metadata as the kernel counts it against the helper in
 * {@code /proc/PID/ksm_stat} (its {@code rmap_item}s: (merging + zero pages) x 4096 less
 * {@code ksm_process_profit}), as the engine's modes count theirs; stable nodes are counted by neither
 * the kernel nor this. Where the kernel has no {@code ksm_stat}, the metadata is not counted and is
 * reported as not measured.
 */
final class KsmMode implements AutoCloseable {

    static final String LOCK_FILE = "/tmp/samepage-e2e-kernel-ksm.lock";

    /** KSM's rates: its boot defaults and the fastest it goes. */
    enum Rate {
        DEFAULTS(Mode.KSM_DEFAULTS, 100, 20),
        FULL(Mode.KSM_FULL_RATE, 100_000, 0);

        final Mode mode;
        final long pagesToScan;
        final long sleepMillis;

        Rate(Mode mode, long pagesToScan, long sleepMillis) {
            this.mode = mode;
            this.pagesToScan = pagesToScan;
            this.sleepMillis = sleepMillis;
        }

        String knobs() {
            return "pages_to_scan=" + pagesToScan + ", sleep_millisecs=" + sleepMillis;
        }
    }

    static final long POLL_MILLIS = 20;
    /** The helper's heap: its guests' memory and the image's pages are off-heap, so the heap stays small. */
    static final int HELPER_HEAP_MIB = 256;

    /** The lock file's mode, 0666: the file is shared by every user's sessions and tests. */
    private static final Set<PosixFilePermission> EVERY_USER_WRITES = PosixFilePermissions.fromString("rw-rw-rw-");

    private static final List<KsmKnob> SAVED = List.of(KsmKnob.PAGES_TO_SCAN, KsmKnob.SLEEP_MILLISECS,
            KsmKnob.USE_ZERO_PAGES, KsmKnob.ADVISOR_MODE, KsmKnob.RUN);

    private final KernelKsm ksm;
    private final Ksmd ksmd;
    private final Path lockFile;
    private final FileChannel lockChannel;
    private final FileLock lock;
    private final Map<KsmKnob, String> saved = new LinkedHashMap<>();
    private final Thread hook = new Thread(this::restore, "samepage-ksm-restore");
    private final AtomicBoolean restored = new AtomicBoolean();
    /** Held for every knob write of a run and while restore() marks the session restored ({@link #setForRun}). */
    private final Object knobLock = new Object();
    private volatile Process helper;

    private KsmMode(KernelKsm ksm, Ksmd ksmd, Path lockFile, FileChannel lockChannel, FileLock lock) {
        this.ksm = ksm;
        this.ksmd = ksmd;
        this.lockFile = lockFile;
        this.lockChannel = lockChannel;
        this.lock = lock;
    }

    /** Why (d) cannot run on this host, or null if it can. */
    static String unavailableReason(KernelKsm ksm) {
        if (!ksm.present()) {
            return "this kernel has no KSM (" + ksm.directory() + " is absent)";
        }
        if (!Files.isWritable(ksm.directory().resolve("run"))) {
            return ksm.directory().resolve("run") + " is not writable: KSM's knobs need root (and a sysfs mounted "
                    + "read-write)";
        }
        if (Ksmd.find(ksm.procDirectory()) == null) {
            return "no ksmd thread in " + ksm.procDirectory() + ", so its CPU time cannot be measured";
        }
        return null;
    }

    /**
     * Takes the lock (waiting for a test or another suite that holds it), remembers the knobs and stops
     * KSM ({@code run=2}).
     *
     * @throws DensityException {@link DensityException.Kind#FAILED} if the lock cannot be taken (the lock
     *                          file exists and this user may not write it: the message says what to do)
     *                          or KSM is merging other processes' pages
     */
    static KsmMode open(KernelKsm ksm) {
        return open(ksm, Path.of(LOCK_FILE));
    }

    /** {@link #open(KernelKsm)} with the lock file {@code lockFile} (for tests). */
    static KsmMode open(KernelKsm ksm, Path lockFile) {
        try {
            FileChannel channel = openLockFile(lockFile);
            KsmMode session;
            try {
                FileLock lock = channel.lock();
                session = new KsmMode(ksm, Ksmd.find(ksm.procDirectory()), lockFile, channel, lock);
            } catch (IOException | RuntimeException | Error e) {
                closeAfter(channel, e);     // and with it the lock, which the next session in this JVM needs
                throw e;
            }
            session.start();
            return session;
        } catch (IOException e) {
            throw DensityException.failed("cannot lock " + lockFile + ": " + e.getMessage());
        }
    }

    private static void closeAfter(FileChannel channel, Throwable failure) {
        try {
            channel.close();
        } catch (IOException e) {
            failure.addSuppressed(e);
        }
    }

    /**
     * {@code lockFile} open for writing, made 0666 if this call made it. It is opened before it is made:
     * an open that may create ({@code O_CREAT}) is refused on another user's file in a sticky directory
     * such as /tmp where the kernel protects regular files ({@code fs.protected_regular}), though the
     * file is writable.
     */
    private static FileChannel openLockFile(Path lockFile) throws IOException {
        while (true) {      // until opened or made: each turn is one lost race with another process
            try {
                return FileChannel.open(lockFile, StandardOpenOption.WRITE);
            } catch (NoSuchFileException absent) {
                // made below
            } catch (AccessDeniedException theirs) {
                throw DensityException.failed("cannot lock " + lockFile + ": it exists and this user may not open it "
                        + "for writing, which the exclusive lock needs; its owner or root can let every user write it: "
                        + "chmod 666 " + lockFile);
            }
            try {
                FileChannel made = FileChannel.open(lockFile, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
                try {
                    Files.setPosixFilePermissions(lockFile, EVERY_USER_WRITES);     // past the umask
                } catch (IOException | RuntimeException e) {
                    made.close();
                    throw e;
                }
                return made;
            } catch (FileAlreadyExistsException raced) {
                // another process made it since: open theirs
            }
        }
    }

    private void start() {
        KsmStatus status;
        try {
            status = ksm.status();
        } catch (RuntimeException | Error e) {     // no KSM, or its files unreadable: nothing written yet
            restored.set(true);
            releaseLock();
            throw e;
        }
        // Merges held even with run=0: the suite's run=2 would unmerge them, for good, and while run=1
        // they would count as the helper's. Only a host with nothing merged is used.
        if (status.pagesShared() > 0 || status.ksmZeroPages() > 0) {
            restored.set(true);
            releaseLock();
            throw DensityException.failed("kernel KSM holds other processes' merges (run=" + status.run()
                    + ", pages_shared=" + status.pagesShared() + ", ksm_zero_pages=" + status.ksmZeroPages()
                    + "); the suite would unmerge them (run=2) and count theirs as the helper's: unmerge them first "
                    + "(samepage ksm set run=2) or use --no-ksm");
        }
        for (KsmKnob knob : SAVED) {
            status.value(knob).ifPresent(value -> saved.put(knob, value));
        }
        Runtime.getRuntime().addShutdownHook(hook);
        setForRun(Map.of("run", "2"));
    }

    /**
     * Runs the helper for {@code content}'s N guests at {@code rate}.
     *
     * @param target pages saved that count as final for a run stopped by the timeout (the full-rate
     *               run's final saving at this N), or 0 to use this run's own last value
     */
    ModeResult run(PageMix content, int n, Rate rate, long timeoutSeconds, long target) {
        List<String> command = new ArrayList<>(List.of(javaBinary(), "--enable-native-access=ALL-UNNAMED",
                "-Xmx" + HELPER_HEAP_MIB + "m", "-cp", System.getProperty("java.class.path"),
                KsmHelper.class.getName(), content.image().toString(), Integer.toString(n),
                Long.toString(content.guestBytes() >> 20), Integer.toString(content.uniquePercent()),
                Long.toString(content.seed())));
        long touched;
        try {
            helper = new ProcessBuilder(command).redirectError(ProcessBuilder.Redirect.INHERIT).start();
            touched = awaitReady(helper);
        } catch (IOException e) {
            throw DensityException.failed("cannot start the KSM helper process: " + e.getMessage());
        }
        try {
            return measure(n, rate, timeoutSeconds, target, touched);
        } catch (IOException e) {
            throw DensityException.failed("while kernel KSM ran: " + e.getMessage());
        } finally {
            endHelper();
            setForRun(Map.of("run", "2"));
        }
    }

    private ModeResult measure(int n, Rate rate, long timeoutSeconds, long target, long touched) throws IOException {
        Map<String, String> knobs = new LinkedHashMap<>();
        if (saved.containsKey(KsmKnob.ADVISOR_MODE)) {
            knobs.put("advisor_mode", KsmKnob.ADVISOR_NONE);
        }
        knobs.put("use_zero_pages", "1");
        knobs.put("pages_to_scan", Long.toString(rate.pagesToScan));
        knobs.put("sleep_millisecs", Long.toString(rate.sleepMillis));
        knobs.put("run", "1");
        long scans0 = counter("full_scans");
        long cpu0 = ksmd.cpuNanos();
        long start = System.nanoTime();
        if (!setForRun(knobs)) {
            throw DensityException.failed("stopped: kernel KSM was already restored (Ctrl-C?)");
        }
        SharingTrace trace = new SharingTrace();
        long deadline = start + TimeUnit.SECONDS.toNanos(timeoutSeconds);
        long lastScans = scans0;
        long savedAtScan = -1;
        int stableScans = 0;
        boolean timedOut = false;
        while (true) {
            sleep(POLL_MILLIS);
            long scans = counter("full_scans");
            long savedPages = counter("pages_sharing") + counter("ksm_zero_pages");
            long now = System.nanoTime();
            trace.add(now - start, ksmd.cpuNanos() - cpu0, savedPages);
            if (scans != lastScans) {
                stableScans = savedPages == savedAtScan ? stableScans + (int) (scans - lastScans) : 0;
                savedAtScan = savedPages;
                lastScans = scans;
            }
            if (scans >= scans0 + 3 && stableScans >= 2) {
                break;
            }
            if (now - deadline >= 0) {
                timedOut = true;
                break;
            }
        }
        long goal = timedOut && target > 0 ? target : trace.finalSaved();
        SharingTrace.Point at99 = trace.pointOf99(goal);
        String note = "KSM " + rate.knobs() + ", use_zero_pages=1; " + (counter("full_scans") - scans0)
                + " full scans";
        if (timedOut) {
            note += at99 == null
                    ? "; 99% of the final sharing (" + goal + " pages) not reached within " + timeoutSeconds + " s"
                    : "; stopped at " + timeoutSeconds + " s, after reaching 99% of " + goal + " pages";
        }
        long saving = trace.finalSaved();
        long metadata = kernelMetadata();
        if (metadata < 0) {
            note += "; KSM's own metadata not counted: this kernel has no /proc/PID/ksm_stat";
        }
        return new ModeResult(rate.mode, n, (touched - saving) * Pages.PAGE_SIZE + Math.max(0, metadata), metadata,
                saving, at99, timedOut, timedOut ? timeoutSeconds : 0, note);
    }

    /**
     * The bytes of KSM's metadata for the helper's pages as the kernel counts it: its {@code
     * ksm_process_profit} is (merging + zero pages) x 4096 less its rmap items' cost. -1 where the kernel
     * has no {@code ksm_stat} (before 6.1) or the helper's cannot be read.
     */
    private long kernelMetadata() {
        var stat = ksm.ksmStat(helper.pid());
        if (!stat.present() || stat.processProfit().isEmpty() || stat.mergingPages().isEmpty()) {
            return -1;
        }
        long saved = stat.mergingPages().getAsLong() + stat.zeroPages().orElse(0);
        return Math.max(0, saved * Pages.PAGE_SIZE - stat.processProfit().getAsLong());
    }

    private long awaitReady(Process process) throws IOException {
        BufferedReader out = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8));
        String line = out.readLine();
        if (line == null || !line.startsWith(KsmHelper.READY + " ")) {
            endHelper();
            throw DensityException.failed("the KSM helper process did not get ready (it printed " + line
                    + "; its error, if any, is above)");
        }
        return Long.parseLong(line.substring(KsmHelper.READY.length() + 1).strip());
    }

    private void endHelper() {
        Process process = helper;
        if (process == null) {
            return;
        }
        try {
            process.getOutputStream().close();
            if (!process.waitFor(30, TimeUnit.SECONDS)) {
                process.destroyForcibly().waitFor(30, TimeUnit.SECONDS);
            }
        } catch (IOException | InterruptedException e) {
            process.destroyForcibly();
        }
        helper = null;
    }

    /** Ends the helper, unmerges ({@code run=2}), restores every knob it changed, releases the lock. */
    @Override
    public void close() {
        restore();
        try {
            Runtime.getRuntime().removeShutdownHook(hook);
        } catch (IllegalStateException | IllegalArgumentException shuttingDownOrNeverAdded) {
            // Shutting down: the hook runs, or ran, restore() itself; or it was never added.
        }
    }

    private void restore() {
        // Whole under the lock: a run's knob write in progress ends first and none starts after, and the
        // hook (Ctrl-C) waits for a close() already restoring, since the JVM halts when the hook returns.
        synchronized (knobLock) {
            if (!restored.compareAndSet(false, true)) {
                return;
            }
            restoreKnobs();
        }
    }

    private void restoreKnobs() {
        try {
            endHelper();
            if (!saved.isEmpty()) {
                set(Map.of("run", "2"));
                Map<String, String> knobs = new LinkedHashMap<>();
                saved.forEach((knob, value) -> {
                    if (knob != KsmKnob.RUN && !(knob == KsmKnob.PAGES_TO_SCAN
                            && KsmKnob.ADVISOR_SCAN_TIME.equals(saved.get(KsmKnob.ADVISOR_MODE)))) {
                        knobs.put(knob.sysfsName(), value);
                    }
                });
                set(knobs);
                set(Map.of("run", saved.get(KsmKnob.RUN)));
            }
        } finally {
            releaseLock();
        }
    }

    private void releaseLock() {
        try {
            lock.release();
            lockChannel.close();
        } catch (IOException e) {
            System.err.println("samepage bench density: could not release " + lockFile + ": " + e.getMessage());
        }
    }

    /**
     * Writes a run's knobs unless the session was restored: Ctrl-C's hook restores them while this
     * thread runs on until the JVM halts, and a write after the restore would undo it (run=1 at full
     * rate, or run=2 unmerging the host, left behind). The check and the write hold one lock with the
     * restore's check, so no write lands after it.
     *
     * @return false, writing nothing, if the session was restored
     */
    private boolean setForRun(Map<String, String> knobs) {
        synchronized (knobLock) {
            if (restored.get()) {
                return false;
            }
            set(knobs);
            return true;
        }
    }

    private void set(Map<String, String> knobs) {
        try {
            ksm.set(knobs);
        } catch (KernelKsmException e) {
            throw DensityException.failed("kernel KSM: " + e.getMessage());
        }
    }

    private long counter(String name) throws IOException {
        return Long.parseLong(Files.readString(ksm.directory().resolve(name)).strip());
    }

    private static String javaBinary() {
        return ProcessHandle.current().info().command()
                .orElse(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    }

    private static void sleep(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw DensityException.failed("interrupted while kernel KSM ran");
        }
    }

}
