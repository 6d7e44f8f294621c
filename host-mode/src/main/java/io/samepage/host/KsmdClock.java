package io.samepage.host;

import java.io.IOException;
import java.nio.file.Path;

/**
 * {@link KsmPolicyLoop}'s default clock of ksmd's CPU time: the thread found under {@code proc} on first
 * use ({@link Ksmd#find}), and read at each call. Single caller, as the loop.
 */
final class KsmdClock implements KsmPolicyLoop.CpuClock {

    private final Path proc;
    private Ksmd ksmd;
    private boolean looked;

    KsmdClock(Path proc) {
        this.proc = proc;
    }

    @Override
    public long cpuNanos() throws IOException {
        if (!looked) {
            ksmd = Ksmd.find(proc);
            looked = true;
        }
        if (ksmd == null) {
            throw new IOException("no ksmd thread in " + proc + " (no KSM, or /proc hides kernel threads)");
        }
        return ksmd.cpuNanos();
    }
}
