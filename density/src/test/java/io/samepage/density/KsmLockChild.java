package io.samepage.density;

import io.samepage.host.KernelKsm;
import java.nio.file.Path;

/**
 * Opens a {@link KsmMode} session on the lock file {@code args[0]} and a fake KSM ({@code args[1]} its
 * sysfs directory, {@code args[2]} its /proc), in a child JVM that {@code KsmModeTest} may start without
 * root's override of file permissions; prints {@code opened}, or the refusal's kind and message.
 */
final class KsmLockChild {

    private KsmLockChild() {
    }

    public static void main(String[] args) {
        try (KsmMode _ = KsmMode.open(new KernelKsm(Path.of(args[1]), Path.of(args[2])), Path.of(args[0]))) {
            System.out.println("opened");
        } catch (DensityException e) {
            System.out.println(e.kind() + " " + e.getMessage());
        }
    }
}
