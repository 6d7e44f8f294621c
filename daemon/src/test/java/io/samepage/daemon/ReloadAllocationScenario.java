package io.samepage.daemon;

import io.samepage.core.ScanKnobs;
import io.samepage.host.KsmPolicyLoop;
import io.samepage.testing.AllocationFaultLoader;
import io.samepage.testing.ArmedScenario;
import io.samepage.testing.ChildJvm;
import io.samepage.testing.KsmSysfs;
import io.samepage.testing.PageMixChild;
import java.io.IOException;
import java.lang.reflect.Field;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * A config parsed and applied to a running daemon ({@link DaemonConfig#parse}, then {@link Daemon#reload}),
 * with the k-th allocation failing; for {@link DaemonAllocationFaultTest}, which loads this class through
 * an {@link AllocationFaultLoader}. The daemon has a file source, a live source (a {@link PageMixChild}),
 * so a refresher, and {@code ksm_policy=dry_run} over a fake KSM directory, so a policy agent; its
 * publisher, refresher and policy agent are idle between runs (intervals of an hour and more), so only
 * the reload allocates. Each run reloads config B over config A; whatever fails, the daemon's live
 * settings (every KSM knob, the daemon's estimate interval, the refresher's and the policy agent's) are
 * then all A's or all B's, never some of each, and a reload to A, unarmed, goes well and gives A's.
 *
 * <p>{@link #apply} returns the findings of one run, one line each ("" for none); {@link #getAsLong} the
 * allocations the last run passed; {@link #close} closes the daemon and ends the child. Not thread safe.
 */
final class ReloadAllocationScenario extends ArmedScenario implements AutoCloseable {

    private final ChildJvm child;
    private final Daemon daemon;
    private final List<String> linesA;
    private final List<String> linesB;
    private final Map<String, String> settingsA;
    private final Map<String, String> settingsB;

    ReloadAllocationScenario(Path dir) throws Exception {
        byte[] dump = new byte[8 * 4096];
        new SplittableRandom(7).nextBytes(dump);
        Files.write(dir.resolve("vm0.img"), dump);
        Path ksm = KsmSysfs.write(dir.resolve("ksm"), "pages_sharing", "1000");
        Path proc = FakeKsmPolicy.proc(dir);
        child = ChildJvm.start(PageMixChild.class);
        List<String> base = List.of("source=" + dir.resolve("vm0.img"), "source=pid:" + child.pid(),
                "counters_file=" + dir.resolve("counters"), "ksm_policy=dry_run", "ksm_rate=ksmtuned");
        linesA = new ArrayList<>(base);
        linesA.addAll(List.of("estimate_interval_seconds=3600", "pages_to_scan=200"));
        linesB = new ArrayList<>(base);
        linesB.addAll(List.of("estimate_interval_seconds=7200", "pages_to_scan=500", "sleep_millisecs=50",
                "smart_scan=0", "advisor_max_cpu=50", "advisor_target_scan_time=100",
                "advisor_max_pages_to_scan=50000", "advisor_min_pages_to_scan=40000"));
        KsmPolicyLoop.Context loop = FakeKsmPolicy.loop(ksm, proc);
        Daemon.Context context = DaemonConfig.parse("a.conf", linesA).applyTo(new Daemon.Context()
                .noticeHandler(_ -> { }).ksmPolicyLoop(loop).publishIntervalMillis(3_600_000));
        daemon = Daemon.launch(context);
        KsmPolicyAgent policy = (KsmPolicyAgent) field(daemon, "policy");
        long deadline = System.nanoTime() + 20_000_000_000L;
        while (policy.last() == null) {        // its first step, at once: after it, it idles for the interval
            if (System.nanoTime() > deadline) {
                throw new IllegalStateException("the policy agent did not step");
            }
            Thread.sleep(10);
        }
        settingsA = settings();
        daemon.reload(DaemonConfig.parse("b.conf", linesB));
        settingsB = settings();
        daemon.reload(DaemonConfig.parse("a.conf", linesA));
        if (!settings().equals(settingsA) || settingsA.equals(settingsB)) {
            throw new IllegalStateException("reloads do not go between A " + settingsA + " and B " + settingsB);
        }
    }

    @Override
    protected String run(long failAt) throws Exception {
        Throwable thrown = armed(() -> daemon.reload(DaemonConfig.parse("b.conf", linesB)));
        String otherwise = thrownOtherwise(thrown, where());
        if (otherwise != null) {
            return otherwise;
        }
        Map<String, String> now = settings();
        if (!now.equals(settingsA) && !now.equals(settingsB)) {
            return where() + ": " + (thrown == null ? "reloaded" : "failed") + ", and the settings are half applied: "
                    + differences(now);
        }
        if (thrown == null && !now.equals(settingsB)) {
            return where() + ": the reload returned, and the settings are A's";
        }
        try {
            daemon.reload(DaemonConfig.parse("a.conf", linesA));
        } catch (RuntimeException | Error e) {
            return where() + ": the next reload threw " + e;
        }
        return settings().equals(settingsA) ? "" : where() + ": the next reload gave " + differences(settings());
    }

    /** Each setting of {@code now} that is neither A's nor B's, or A's where another is B's: name=now (A a, B b). */
    private String differences(Map<String, String> now) {
        List<String> fromA = new ArrayList<>();
        List<String> fromB = new ArrayList<>();
        for (String name : now.keySet()) {
            if (!settingsA.get(name).equals(settingsB.get(name))) {
                (now.get(name).equals(settingsA.get(name)) ? fromA : fromB).add(name + "=" + now.get(name));
            }
        }
        return "A's " + fromA + ", B's or neither " + fromB;
    }

    /** The daemon's live settings: every KSM knob, and the estimate interval as the daemon and its agents hold it. */
    private Map<String, String> settings() throws ReflectiveOperationException {
        Map<String, String> settings = new LinkedHashMap<>();
        ScanKnobs knobs = daemon.engine().knobs();
        for (String name : ScanKnobs.NAMES) {
            settings.put(name, knobs.get(name));
        }
        settings.put("daemon estimateIntervalSeconds", String.valueOf(field(daemon, "estimateIntervalSeconds")));
        settings.put("refresher intervalNanos", String.valueOf(field(field(daemon, "refresher"), "intervalNanos")));
        settings.put("policy intervalNanos", String.valueOf(field(field(daemon, "policy"), "intervalNanos")));
        return settings;
    }

    private static Object field(Object owner, String name) throws ReflectiveOperationException {
        Field field = owner.getClass().getDeclaredField(name);
        field.setAccessible(true);
        return field.get(owner);
    }

    @Override
    public void close() throws IOException, InterruptedException {
        try {
            daemon.close();
        } finally {
            child.close();
        }
    }
}
