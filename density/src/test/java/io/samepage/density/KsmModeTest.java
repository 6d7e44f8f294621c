package io.samepage.density;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.samepage.host.KernelKsm;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
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
        // KSM's own metadata counts, as the engine's does: the helper's rmap items, as its ksm_stat reports them.
        assertTrue(result.metadataBytes() > 0, "rmap items counted: " + result.metadataBytes() + "; " + result.note());
        assertEquals((touched - result.savedPages()) * 4096 + result.metadataBytes(), result.hostBytes());
    }

    /**
     * A host whose KSM holds merges, even stopped (run=0), is refused before any knob is written: the
     * suite's first write, run=2, would have unmerged those processes' pages for good. Only run=1 with
     * merges was refused. A fake sysfs directory and /proc with a ksmd.
     */
    @Test
    void aHostWhoseKsmHoldsMergesIsRefusedBeforeAnyKnobIsWritten() throws Exception {
        KernelKsm fake = fakeKsm("0", "7", "30");
        Path sysfs = fake.directory();
        DensityException refused = org.junit.jupiter.api.Assertions.assertThrows(DensityException.class,
                () -> KsmMode.open(fake).close());
        assertEquals("kernel KSM holds other processes' merges (run=0, pages_shared=7, ksm_zero_pages=0); the suite "
                + "would unmerge them (run=2) and count theirs as the helper's: unmerge them first (samepage ksm set "
                + "run=2) or use --no-ksm", refused.getMessage());
        assertEquals("0", Files.readString(sysfs.resolve("run")).strip(), "run was not written");
    }

    /**
     * Ctrl-C's shutdown hook restores the knobs while the suite's thread runs on until the JVM halts. A
     * run that comes to its knobs after that must write none: it wrote run=2 over the restored run (and a
     * check-then-write left a window for run=1 at full rate). A fake sysfs directory and /proc with a ksmd;
     * the helper process is real.
     */
    @Test
    void aRunAfterTheRestoreWritesNoKnob() throws Exception {
        KernelKsm fake = fakeKsm("1", "0", "0");
        Map<String, String> before = knobs(fake);
        Path image = TestImages.randomFile(dir, 300, 1);
        try (PageMix content = PageMix.density(image, 1, 1, 25, 9); KsmMode mode = KsmMode.open(fake)) {
            mode.close();       // what the hook does on Ctrl-C
            assertEquals(before, knobs(fake), "restored");
            DensityException stopped = org.junit.jupiter.api.Assertions.assertThrows(DensityException.class,
                    () -> mode.run(content, 1, KsmMode.Rate.FULL, 5, 0));
            assertTrue(stopped.getMessage().startsWith("stopped: kernel KSM was already restored"), stopped.getMessage());
            assertEquals(before, knobs(fake), "a run after the restore wrote no knob");
        }
    }

    /**
     * Ctrl-C while the suite's own close() is restoring: the hook returned at once (the session was marked
     * restored), so the JVM halted with the knobs half restored (a review's finding, with a slow helper
     * standing in for any slow step). The hook now waits for that restore to end. The helper ends only
     * when the test ends it, so close() is restoring for as long as the test needs, however slow the
     * machine: the hook is run while close() holds the knob lock, must then wait for that lock, and, once
     * the helper is gone, return with every knob restored.
     */
    @Test
    void theHookWaitsForACloseThatIsRestoring() throws Exception {
        KernelKsm fake = fakeKsm("1", "0", "0");
        Map<String, String> before = knobs(fake);
        KsmMode mode = KsmMode.open(fake);
        Process helper = new ProcessBuilder("sleep", "600").start();
        try {
            field(mode, "helper").set(mode, helper);
            Object knobLock = field(mode, "knobLock").get(mode);
            Thread closing = Thread.ofPlatform().name("suite-main").start(mode::close);
            awaitUntil(() -> holds(closing, knobLock), closing, "close() to restore, holding the knob lock");
            Thread hook = (Thread) field(mode, "hook").get(mode);
            Thread ctrlC = Thread.ofPlatform().name("ctrl-c").start(hook::run);     // what the hook's thread does
            awaitUntil(() -> waitsFor(ctrlC, knobLock), ctrlC, "the hook to wait for the knob lock");
            helper.destroy();                                                      // the restore goes on
            ctrlC.join();
            assertEquals(before, knobs(fake), "every knob restored when the hook returns");
            closing.join();
        } finally {
            helper.destroyForcibly();
        }
    }

    /**
     * The lock file is shared by every user's builds: made by root with the umask's 0644, no other user
     * could open it for writing, which the exclusive lock needs. The session that makes it makes it 0666;
     * one that finds it leaves its mode alone.
     */
    @Test
    void aLockFileTheSessionMakesIsWritableByEveryUserAndOneItFindsKeepsItsMode() throws Exception {
        KernelKsm fake = fakeKsm("1", "0", "0");
        Path made = dir.resolve("made.lock");
        try (KsmMode _ = KsmMode.open(fake, made)) {
            assertEquals("rw-rw-rw-", PosixFilePermissions.toString(Files.getPosixFilePermissions(made)), "made 0666");
        }
        Path found = Files.createFile(dir.resolve("found.lock"),
                PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-r-----")));
        try (KsmMode _ = KsmMode.open(fake, found)) {
            assertEquals("rw-r-----", PosixFilePermissions.toString(Files.getPosixFilePermissions(found)), "left as it was");
        }
    }

    /**
     * A lock file this user may not write (another user's, made 0644 before sessions made it 0666) is
     * refused in one line that names it and says what to do. Root may write any file, so as root the
     * session runs in a child JVM without that override (setpriv drops CAP_DAC_OVERRIDE): the open of
     * the 0444 file then fails with EACCES, as a non-root user's open of root's 0644 file does. A real
     * second user cannot be had here: the child must read the build's class path, which is root's.
     */
    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aLockFileThisUserMayNotWriteIsRefusedInOneLineSayingWhatToDo() throws Exception {
        KernelKsm fake = fakeKsm("1", "0", "0");
        Path lock = Files.createFile(dir.resolve("theirs.lock"),
                PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("r--r--r--")));
        List<String> command = new ArrayList<>();
        if ((Integer) Files.getAttribute(lock, "unix:uid") == 0) {
            command.addAll(List.of("setpriv", "--bounding-set=-dac_override", "--"));
        }
        command.addAll(List.of(ProcessHandle.current().info().command().orElseThrow(), "-cp",
                System.getProperty("java.class.path"), KsmLockChild.class.getName(), lock.toString(),
                fake.directory().toString(), fake.procDirectory().toString()));
        Process child = new ProcessBuilder(command).redirectError(ProcessBuilder.Redirect.INHERIT).start();
        String output = new String(child.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertEquals(0, child.waitFor(), output);
        assertEquals("FAILED cannot lock " + lock + ": it exists and this user may not open it for writing, which the"
                + " exclusive lock needs; its owner or root can let every user write it: chmod 666 " + lock + "\n", output);
    }

    /**
     * A session that fails after it took the lock lets go of it: before, the lock file's channel, lock
     * held, was left to the garbage collector, and the next session in the same JVM (a second suite run
     * in one process) met OverlappingFileLockException.
     */
    @Test
    void aSessionThatCannotReadKsmLetsGoOfTheLock() throws Exception {
        Path lock = dir.resolve("session.lock");
        KernelKsm absent = new KernelKsm(dir.resolve("no-ksm"), dir.resolve("no-proc"));
        io.samepage.host.KernelKsmException refused = org.junit.jupiter.api.Assertions.assertThrows(
                io.samepage.host.KernelKsmException.class, () -> KsmMode.open(absent, lock).close());
        assertEquals(io.samepage.host.KernelKsmException.Kind.ABSENT, refused.kind());
        try (KsmMode _ = KsmMode.open(fakeKsm("1", "0", "0"), lock)) {
            assertTrue(Files.exists(lock), "the next session took the lock");
        }
    }

    private static java.lang.reflect.Field field(KsmMode mode, String name) throws NoSuchFieldException {
        java.lang.reflect.Field field = KsmMode.class.getDeclaredField(name);
        field.setAccessible(true);
        return field;
    }

    /** Waits, at most 60 s, for {@code condition}; fails at once if {@code thread} ended first. */
    private static void awaitUntil(java.util.function.BooleanSupplier condition, Thread thread, String what)
            throws InterruptedException {
        long deadline = System.nanoTime() + java.util.concurrent.TimeUnit.SECONDS.toNanos(60);
        while (!condition.getAsBoolean()) {
            assertTrue(thread.isAlive(), thread.getName() + " ended while waiting for " + what);
            assertTrue(System.nanoTime() - deadline < 0, "timed out waiting for " + what);
            Thread.sleep(5);
        }
    }

    /** True if {@code thread} holds {@code lock}'s monitor. */
    private static boolean holds(Thread thread, Object lock) {
        java.lang.management.ThreadInfo info = java.lang.management.ManagementFactory.getThreadMXBean()
                .getThreadInfo(new long[] {thread.threadId()}, true, false)[0];
        return info != null && java.util.Arrays.stream(info.getLockedMonitors())
                .anyMatch(monitor -> monitor.getIdentityHashCode() == System.identityHashCode(lock));
    }

    /** True if {@code thread} is blocked on entering {@code lock}'s monitor. */
    private static boolean waitsFor(Thread thread, Object lock) {
        java.lang.management.ThreadInfo info = java.lang.management.ManagementFactory.getThreadMXBean()
                .getThreadInfo(thread.threadId());
        return info != null && info.getThreadState() == Thread.State.BLOCKED && info.getLockInfo() != null
                && info.getLockInfo().getIdentityHashCode() == System.identityHashCode(lock);
    }

    /** A fake sysfs KSM directory and a /proc with a ksmd, under the test's directory. */
    private KernelKsm fakeKsm(String run, String pagesShared, String pagesSharing) throws Exception {
        Path sysfs = Files.createDirectories(dir.resolve("ksm"));
        Map<String, String> files = new LinkedHashMap<>();
        files.put("run", run);
        files.put("pages_to_scan", "100");
        files.put("sleep_millisecs", "20");
        files.put("pages_shared", pagesShared);
        files.put("pages_sharing", pagesSharing);
        files.put("pages_unshared", "0");
        files.put("pages_volatile", "0");
        files.put("full_scans", "3");
        files.put("max_page_sharing", "256");
        files.put("use_zero_pages", "0");
        for (Map.Entry<String, String> file : files.entrySet()) {
            Files.writeString(sysfs.resolve(file.getKey()), file.getValue() + "\n");
        }
        Path ksmd = Files.createDirectories(dir.resolve("proc/42"));
        Files.writeString(ksmd.resolve("comm"), "ksmd\n");
        Files.writeString(ksmd.resolve("stat"), "42 (ksmd) S 2 0 0 0 -1 2129984 0 0 0 0 5 7 0 0 25 5 1 0 1 0 0\n");
        return new KernelKsm(sysfs, dir.resolve("proc"));
    }

    private static Map<String, String> knobs(KernelKsm ksm) throws Exception {
        Map<String, String> values = new LinkedHashMap<>();
        for (String knob : KNOBS) {
            values.put(knob, Files.readString(ksm.directory().resolve(knob)).strip());
        }
        return values;
    }
}
