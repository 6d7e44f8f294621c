package io.samepage.daemon;

import io.samepage.core.ScanKnobs;
import io.samepage.host.KernelKsm;
import io.samepage.host.KsmPolicyLoop;
import io.samepage.host.MergeableEstimate;
import io.samepage.host.MergeableProcesses;
import io.samepage.testing.AllocationFaultLoader;
import io.samepage.testing.AllocationFaults;
import io.samepage.testing.KsmSysfs;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.LongFunction;
import java.util.function.LongSupplier;

/**
 * A step whose clean-up runs out of heap after the step did, with the JVM's one preallocated
 * {@link OutOfMemoryError} both times ({@link AllocationFaults#failFromWithOneError}), for
 * {@link DaemonSameErrorTwiceTest}, which loads this class through an {@link AllocationFaultLoader}. Two shapes:
 * {@code "reload"}, config B applied over A's knobs ({@link Reload#apply}, whose failed knob changes are
 * undone by setting the old values); {@code "policy close"}, a KSM policy agent that has stepped once, so
 * its loop holds knobs to restore, closed ({@link KsmPolicyAgent#onClose}, which closes the loop once more
 * after an Error). Once an allocation failed, what is thrown must be that one error, not an
 * {@link IllegalArgumentException} from adding it to itself as suppressed; a failed reload leaves A's knobs.
 *
 * <p>{@link #apply} returns the findings of one run, one line each ("" for none); {@link #getAsLong} the
 * allocations the last run passed in the reload or the close. Not thread safe.
 */
final class SameErrorTwiceScenario implements LongFunction<String>, LongSupplier {

    private static final MergeableEstimate.Potential RICH =
            new MergeableEstimate.Potential(100_000, 50_000, 1_000, 1, 20_000, 0, 0, 0, 256, false);
    private static final MergeableProcesses.Found ONE_GUEST = new MergeableProcesses.Found(List.of(
            new MergeableProcesses.Process(4242, "qemu-system-x86", List.of(), 100_000L * 4096, 0)), 10, 0, false);

    private final boolean reload;
    private final Path dir;
    private final List<String> base;
    private long allocations;

    SameErrorTwiceScenario(String shape, Path dir) throws IOException {
        if (!shape.equals("reload") && !shape.equals("policy close")) {
            throw new IllegalArgumentException("shape '" + shape + "': reload or policy close");
        }
        this.reload = shape.equals("reload");
        this.dir = dir;
        Files.write(dir.resolve("vm0.img"), new byte[4 * 4096]);
        Files.writeString(Files.createDirectories(dir.resolve("proc")).resolve("meminfo"),
                "MemTotal: 16777216 kB\nMemFree: 12582912 kB\n");
        base = List.of("source=" + dir.resolve("vm0.img"), "counters_file=" + dir.resolve("counters"));
    }

    @Override
    public long getAsLong() {
        return allocations;
    }

    @Override
    public String apply(long failFrom) {
        String where = "k=" + failFrom;
        try {
            return reload ? reload(failFrom) : policyClose(failFrom);
        } catch (Throwable t) {
            return where + ": the checks threw " + t;
        } finally {
            AllocationFaults.disarm();
        }
    }

    private String reload(long failFrom) {
        DaemonConfig a = config("pages_to_scan=200", "estimate_interval_seconds=3600");
        DaemonConfig b = config("pages_to_scan=500", "sleep_millisecs=50", "smart_scan=0", "estimate_interval_seconds=7200");
        Daemon.Context context = a.applyTo(new Daemon.Context().noticeHandler(_ -> { }));
        ScanKnobs knobs = context.knobs();
        Map<String, String> before = knobs(knobs);
        Throwable thrown = null;
        OutOfMemoryError one = AllocationFaults.failFromWithOneError(failFrom);
        try {
            Reload.apply(context, context.ksmPolicy(), context.estimateIntervalSeconds(), knobs, null, b);
        } catch (Throwable t) {     // an OutOfMemoryError too: this run is over, the next one is not
            thrown = t;
        }
        allocations = AllocationFaults.count();
        AllocationFaults.disarm();
        String found = notTheOneError(failFrom, thrown, one);
        if (thrown != null && !knobs(knobs).equals(before)) {
            found += (found.isEmpty() ? "" : "\n") + "k=" + failFrom + ": the reload failed, and the knobs are not A's: "
                    + knobs(knobs);
        }
        return found;
    }

    private String policyClose(long failFrom) throws IOException {
        Path ksm = KsmSysfs.write(dir.resolve("ksm"));
        KsmPolicyLoop.Context loop = new KsmPolicyLoop.Context().ksm(new KernelKsm(ksm, dir.resolve("proc")))
                .estimator((kernel, budget, mps, zero) -> new KsmPolicyLoop.Estimate(ONE_GUEST, RICH)).ksmdCpu(() -> 0);
        Daemon.Context context = config("ksm_policy=on", "ksm_rate=ksmtuned", "estimate_interval_seconds=3600")
                .applyTo(new Daemon.Context().noticeHandler(_ -> { }).ksmPolicyLoop(loop));
        KsmPolicyAgent agent = KsmPolicyAgent.of(context);
        agent.doWork();     // its first step, at once: it turns KSM on, so its loop holds knobs to restore
        if (sysfs(ksm).equals(KsmSysfs.BOOT)) {
            return "k=" + failFrom + ": the policy's first step changed no knob";
        }
        Throwable thrown = null;
        OutOfMemoryError one = AllocationFaults.failFromWithOneError(failFrom);
        try {
            agent.onClose();
        } catch (Throwable t) {
            thrown = t;
        }
        allocations = AllocationFaults.count();
        AllocationFaults.disarm();
        return notTheOneError(failFrom, thrown, one);
    }

    /**
     * A finding unless {@code thrown} is {@code one}, the error every failure threw, if an allocation failed,
     * or nothing if none did.
     */
    private static String notTheOneError(long failFrom, Throwable thrown, OutOfMemoryError one) {
        String at = AllocationFaults.injectedAt();
        String where = "k=" + failFrom + (at == null ? "" : " at " + at);
        if (at == null) {
            return thrown == null ? "" : where + ": threw " + thrown + " though no allocation failed";
        }
        return thrown == one ? "" : where + ": " + (thrown == null ? "returned" : "threw " + thrown)
                + " instead of the one OutOfMemoryError";
    }

    private DaemonConfig config(String... more) {
        List<String> lines = new ArrayList<>(base);
        lines.addAll(List.of(more));
        return DaemonConfig.parse("samepage.conf", lines);
    }

    private static Map<String, String> knobs(ScanKnobs knobs) {
        Map<String, String> values = new LinkedHashMap<>();
        for (String name : ScanKnobs.NAMES) {
            values.put(name, knobs.get(name));
        }
        return values;
    }

    /** Every file of the fake KSM directory and its text. */
    private static Map<String, String> sysfs(Path ksm) throws IOException {
        Map<String, String> files = new LinkedHashMap<>();
        for (String name : KsmSysfs.BOOT.keySet()) {
            files.put(name, Files.readString(ksm.resolve(name)).strip());
        }
        return files;
    }
}
