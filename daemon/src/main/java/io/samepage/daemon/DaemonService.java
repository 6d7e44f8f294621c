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
 * <p>It also launches the daemon such that a stop asked meanwhile ends the launch ({@link #launch},
 * {@link #stop}): loading many or large sources can take minutes, and SIGTERM must not wait for them.
 *
 * <p>Thread safe: each method is synchronized (a reload runs on a signal's thread, the rest on the
 * command's), except {@link #launch}, which holds no lock while the daemon launches, and {@link #stop}.
 */
public final class DaemonService implements AutoCloseable {

    private static final String REFUSED = "; reload refused, running on with the old config";
    private static final String STOPPED_STARTING = "stopped while starting; nothing is left running";
    /** The message of a launch an interrupt ended ({@link Daemon#launch}); its cause is what failed. */
    static final String LAUNCH_INTERRUPTED = "launch interrupted; nothing is left running";

    private final Path configFile;
    private final Consumer<String> notices;
    private final SystemdNotify systemd;
    private Daemon daemon;
    /** Guards {@link #launching} and {@link #stopAsked}, apart from this object's lock, which a reload holds. */
    private final Object launchLock = new Object();
    /** The thread in {@link #launch}, which {@link #stop} interrupts; null while none is. */
    private Thread launching;
    private boolean stopAsked;
    /** What stopped one of the daemon's threads ({@link #endOnFatalError}); null while none did. */
    private volatile DaemonException failure;

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

    /**
     * Launches the daemon from {@code context} on this thread ({@link Daemon#launch}), such that
     * {@link #stop} ends it: a stop asked while it launches interrupts this thread, so the read of a source
     * in progress fails and the launch closes what it opened; a stop asked as it ends closes the daemon it
     * made; a stop asked before it launches nothing. Either way nothing is left running, and one line says
     * so. An interrupt a stop sent this thread is cleared once the launch is over.
     *
     * @return the running daemon, or null if a stop was asked before it was up
     * @throws DaemonException as {@link Daemon#launch} does, if no stop was asked
     */
    public Daemon launch(Daemon.Context context) {
        if (!launchStarts()) {
            notices.accept(STOPPED_STARTING);
            return null;
        }
        Daemon launched;
        try {
            launched = Daemon.launch(context);
        } catch (RuntimeException | Error e) {
            if (!launchEnded()) {
                throw e;
            }
            String own = ownFailure(e);
            notices.accept(own == null ? STOPPED_STARTING : STOPPED_STARTING + "; the launch had failed meanwhile: " + own);
            return null;
        }
        if (launchEnded()) {
            launched.close();
            notices.accept(STOPPED_STARTING);
            return null;
        }
        return launched;
    }

    /**
     * The launch's own failure in {@code e}, which a stop in the same instant must not hide, on one line;
     * null if it is taken for the stop's doing. Told: the counters file's refusals (one names where a file
     * it moved now is) and the JVM's errors, unless an interrupted wait, read or lock is among their
     * causes. Taken for the stop's: everything else, since the interrupt fails a source's read with an
     * ordinary I/O error ("input/output error").
     */
    static String ownFailure(Throwable e) {
        Throwable failure = e instanceof DaemonException && LAUNCH_INTERRUPTED.equals(e.getMessage())
                && e.getCause() != null ? e.getCause() : e;
        for (Throwable t = failure; t != null; t = t.getCause()) {
            if (t instanceof InterruptedException || t instanceof java.io.InterruptedIOException
                    || t instanceof java.nio.channels.ClosedByInterruptException
                    || t instanceof java.nio.channels.FileLockInterruptionException) {
                return null;
            }
        }
        boolean own = failure instanceof Error
                || failure instanceof DaemonException d && d.kind() == DaemonException.Kind.COUNTERS_FILE;
        return own ? DaemonException.oneLine(failure) : null;
    }

    /** Whether this thread may launch (no stop was asked); if so, a stop from now on interrupts it. */
    private boolean launchStarts() {
        synchronized (launchLock) {
            if (stopAsked) {
                return false;
            }
            launching = Thread.currentThread();
            return true;
        }
    }

    /**
     * No stop interrupts the launching thread from now on, and an interrupt a stop sent it is cleared.
     *
     * @return whether a stop was asked
     */
    private boolean launchEnded() {
        synchronized (launchLock) {
            launching = null;
            if (stopAsked) {
                Thread.interrupted();
            }
            return stopAsked;
        }
    }

    /**
     * Asks the daemon to stop: a {@link #launch} in progress is interrupted, and a later one starts
     * nothing. {@code samepage daemon} calls it on SIGTERM and SIGINT, from its shutdown barrier. Safe from
     * any thread, any number of times; it returns at once.
     */
    public void stop() {
        synchronized (launchLock) {
            stopAsked = true;
            if (launching != null) {
                launching.interrupt();
            }
        }
    }

    /**
     * Makes a daemon thread that stops on an {@link Error} end the service: {@code context}'s fatal error
     * handler keeps the error for {@link #throwIfFailed} and runs {@code wake}, which should end the wait
     * for a stop ({@code samepage daemon}: its shutdown barrier's signal, which also stops a launch in
     * progress). Call before the context concludes.
     */
    public void endOnFatalError(Daemon.Context context, Runnable wake) {
        context.fatalErrorHandler(e -> {
            failure = e;
            wake.run();
        });
    }

    /** Throws what stopped one of the daemon's threads ({@link #endOnFatalError}), if one did. */
    public void throwIfFailed() {
        DaemonException failed = failure;
        if (failed != null) {
            throw failed;
        }
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
