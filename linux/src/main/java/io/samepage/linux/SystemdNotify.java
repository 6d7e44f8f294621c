package io.samepage.linux;

import java.io.IOException;

/**
 * systemd's readiness protocol ({@code sd_notify(3)}), for a service of {@code Type=notify}: state lines
 * such as {@code READY=1}, {@code RELOADING=1} or {@code STOPPING=1}, sent as one datagram to the Unix
 * socket that systemd names in {@code NOTIFY_SOCKET} (a path, or an abstract name after {@code @}).
 * Without {@code NOTIFY_SOCKET} (not started by systemd, or another service type) there is nothing to
 * tell, and {@link #fromEnvironment} returns null.
 *
 * <p>Thread safe: {@link #send} is synchronized.
 */
public final class SystemdNotify implements AutoCloseable {

    /** The environment variable systemd sets for a {@code Type=notify} service. */
    public static final String NOTIFY_SOCKET = "NOTIFY_SOCKET";

    private final String address;
    private final UnixDatagram socket;

    private SystemdNotify(String address, UnixDatagram socket) {
        this.address = address;
        this.socket = socket;
    }

    /**
     * A notifier for the socket in {@code NOTIFY_SOCKET}, or null if it is not set.
     *
     * @throws IOException if it is set but no socket can be made to send on
     */
    public static SystemdNotify fromEnvironment() throws IOException {
        String address = System.getenv(NOTIFY_SOCKET);
        return address == null || address.isEmpty() ? null : new SystemdNotify(address, UnixDatagram.open());
    }

    /** The socket it sends to, as {@code NOTIFY_SOCKET} gives it. */
    public String address() {
        return address;
    }

    /**
     * Sends {@code state}, newline-separated {@code KEY=VALUE} lines, as one datagram.
     *
     * @throws IOException if it cannot be sent (systemd gone, or the socket not writable)
     */
    public synchronized void send(String state) throws IOException {
        socket.send(address, state);
    }

    @Override
    public synchronized void close() {
        socket.close();
    }
}
