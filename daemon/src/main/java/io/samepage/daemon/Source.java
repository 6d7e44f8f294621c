package io.samepage.daemon;

/**
 * One source of the daemon's guests, as a config's {@code source=} line names it: a file path, a pid
 * ({@code pid:PID}), or every QEMU guest ({@code qemu}). Each becomes one guest (every QEMU guest one
 * each), named as {@code samepage scan} names it. {@code toString()} spells it as the config does.
 */
public sealed interface Source {

    /** A memory dump or QEMU memory-backend file, loaded once; the guest is named by the path as given. */
    record File(String path) implements Source {
        @Override
        public String toString() {
            return path;
        }
    }

    /** A live process, re-read every {@code estimateIntervalSeconds}. */
    record Pid(int pid) implements Source {
        @Override
        public String toString() {
            return "pid:" + pid;
        }
    }

    /** Every running QEMU guest, found again at every re-read. */
    record Qemu() implements Source {
        @Override
        public String toString() {
            return "qemu";
        }
    }
}
