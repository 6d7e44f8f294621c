package io.samepage.daemon;

import io.samepage.host.KsmPolicyLoop;
import io.samepage.testing.AllocationFaultLoader;
import io.samepage.testing.ArmedScenario;
import io.samepage.testing.KsmSysfs;
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
 * A daemon with {@code ksm_policy=on} over a fake KSM directory, closed with the k-th allocation failing,
 * for {@link DaemonAllocationFaultTest}, which loads this class through an {@link AllocationFaultLoader}
 * that rewrites host mode's classes too (the policy loop, whose close restores the knobs). Each run
 * launches the daemon unarmed and waits for the policy's first step, which turns KSM on (it writes
 * {@code advisor_mode}, {@code run} and more), then closes it armed: the policy loop is closed on its
 * agent's thread, which the daemon's close waits for.
 *
 * <p>Whatever fails, once the close returns or throws every knob reads as before the launch: the daemon
 * leaves no change of the kernel's KSM behind. And no thread of the daemon's is left.
 *
 * <p>{@link #apply} returns the findings of one run, one line each ("" for none); {@link #getAsLong} the
 * allocations the last run passed. Not thread safe.
 */
final class PolicyCloseAllocationScenario extends ArmedScenario {

    private final Path ksm;
    private final Path proc;
    private final List<String> lines;
    private final Map<String, String> boot;

    PolicyCloseAllocationScenario(Path dir) throws IOException {
        byte[] dump = new byte[4 * 4096];
        new SplittableRandom(9).nextBytes(dump);
        Files.write(dir.resolve("vm0.img"), dump);
        ksm = KsmSysfs.write(dir.resolve("ksm"));
        proc = FakeKsmPolicy.proc(dir);
        boot = knobs();
        lines = List.of("source=" + dir.resolve("vm0.img"), "counters_file=" + dir.resolve("counters"),
                "ksm_policy=on", "ksm_rate=ksmtuned", "ksm_max_page_sharing=512", "estimate_interval_seconds=3600",
                "pages_to_scan=4");
    }

    @Override
    protected String run(long failAt) throws Exception {
        DaemonLeftovers baseline = DaemonLeftovers.baseline();
        KsmPolicyLoop.Context loop = FakeKsmPolicy.loop(ksm, proc);
        Daemon daemon = Daemon.launch(DaemonConfig.parse("samepage.conf", lines).applyTo(new Daemon.Context()
                .noticeHandler(_ -> { }).ksmPolicyLoop(loop).publishIntervalMillis(3_600_000)));
        Object policy = field(daemon, "policy");
        long deadline = System.nanoTime() + 20_000_000_000L;
        // Its first step, at once, ends by telling its report (lastDecision is set last): then it idles.
        while (field(policy, "lastDecision") == null) {
            if (System.nanoTime() > deadline) {
                daemon.close();
                return where() + ": the policy agent did not step";
            }
            Thread.sleep(10);
        }
        if (knobs().equals(boot)) {
            daemon.close();
            return where() + ": the policy's first step changed no knob";
        }
        Throwable thrown = armed(daemon::close);
        List<String> findings = new ArrayList<>();
        expectInjected(thrown, where(), findings);
        String state = thrown == null ? "closed" : "its close failed";
        List<String> threads = baseline.threadsLeft();
        if (!threads.isEmpty()) {
            findings.add(where() + ": " + state + ", and threads are left: " + threads);
        }
        Map<String, String> now = knobs();
        if (!now.equals(boot)) {
            List<String> changed = new ArrayList<>();
            now.forEach((name, value) -> {
                if (!value.equals(boot.get(name))) {
                    changed.add(name + ": " + boot.get(name) + " -> " + value);
                }
            });
            findings.add(where() + ": " + state + ", and KSM knobs are left changed: " + changed);
            KsmSysfs.write(ksm);        // for the next run
        }
        return String.join("\n", findings);
    }

    /** Every file of the fake KSM directory and its value, a choice ({@code [none] scan-time}) as its selected word. */
    private Map<String, String> knobs() throws IOException {
        Map<String, String> knobs = new LinkedHashMap<>();
        try (var files = Files.list(ksm)) {
            for (Path file : files.sorted().toList()) {
                String text = Files.readString(file).strip();
                int open = text.indexOf('[');
                knobs.put(file.getFileName().toString(), open < 0 ? text : text.substring(open + 1, text.indexOf(']')));
            }
        }
        return knobs;
    }

    private static Object field(Object owner, String name) throws ReflectiveOperationException {
        Field field = owner.getClass().getDeclaredField(name);
        field.setAccessible(true);
        return field.get(owner);
    }
}
