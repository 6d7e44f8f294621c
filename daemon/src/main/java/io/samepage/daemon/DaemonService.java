package io.samepage.daemon;

import io.samepage.linux.SystemdNotify;
import java.io.IOException;
import java.nio.file.Path;
import java.util.function.Consumer;

/**
 * A daemon run as a service: what it tells its service manager and how it reloads its config file. Under
 * systemd ({@code Type=notify}, {@code NOTIFY_SOCKET} set) it sends {@code READY=1} once the daemon runs,
 * {@code RELOADING=1} (with {@code MONOTONIC_USEC}) and {@code READY=1} around a reload, and
 * {@code STOPPING=1} when it is asked to stop; without {@code NOTIFY_SOCKET} it tells nothing. A reload
 * reads the config file again and applies it ({@link Daemon#reload}); what was refused is told on one
 * line, and the daemon runs on as it was. {@code samepage daemon} calls {@link #reload} on SIGHUP.
 *
 * <p>Thread safe: each method is synchronized (a reload runs on a signal's thread, the rest on the
 * command's).
 */
public final class DaemonService implements AutoCloseable {

    private static final String REFUSED = "; reload refused, running on with the old config";

    private final Path configFile;
    private final Consumer<String> notices;
    private final SystemdNotify systemd;
    private Daemon daemon;

    /**
     * @param configFile the config file a reload reads
     * @param notices    told, one line each, what a reload did or refused, and a notification that failed
     */
    public DaemonService(Path configFile, Consumer<String> notices) {
        this.configFile = configFile;
        this.notices = notices;
        SystemdNotify notify = null;
        try {
            notify = SystemdNotify.fromEnvironment();
        } catch (IOException e) {
            notices.accept("NOTIFY_SOCKET is set but cannot be used (" + e.getMessage()
                    + "); systemd will not hear READY=1");
        }
        this.systemd = notify;
    }

    /** The daemon runs: {@code READY=1}. Reloads apply to it from now on. */
    public synchronized void ready(Daemon running) {
        daemon = running;
        notify(ready());
    }

    /** The daemon is asked to stop: {@code STOPPING=1}; reloads are ignored from now on. */
    public synchronized void stopping() {
        daemon = null;
        notify("STOPPING=1");
    }

    /**
     * Reads the config file again and applies it to the running daemon, telling one line: what changed,
     * or why it was refused (a config error keeps its {@code FILE:LINE: what is wrong} form).
     */
    public synchronized void reload() {
        if (daemon == null) {
            notices.accept("reload asked while the daemon is not running: ignored");
            return;
        }
        notify("RELOADING=1\nMONOTONIC_USEC=" + System.nanoTime() / 1000);
        try {
            DaemonConfig config = DaemonConfig.read(configFile);
            notices.accept("reloaded " + configFile + ": " + daemon.reload(config));
        } catch (DaemonException e) {
            boolean named = e.getMessage().startsWith(configFile.toString());
            notices.accept((named ? "" : configFile + ": ") + e.getMessage() + REFUSED);
        } finally {
            notify(ready());
        }
    }

    /** Closes the notification socket. */
    @Override
    public synchronized void close() {
        if (systemd != null) {
            systemd.close();
        }
    }

    private String ready() {
        return "READY=1\nSTATUS=merging " + daemon.engine().guests().size() + " guests";
    }

    private void notify(String state) {
        if (systemd == null) {
            return;
        }
        try {
            systemd.send(state);
        } catch (IOException e) {
            notices.accept("cannot tell systemd " + state.lines().findFirst().orElse(state) + " on "
                    + systemd.address() + ": " + e.getMessage());
        }
    }
}
