package io.samepage.linux;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Arrays;

/**
 * A Unix datagram socket ({@code AF_UNIX}, {@code SOCK_DGRAM}), which the JDK's channels do not offer:
 * what systemd's {@code NOTIFY_SOCKET} is ({@link SystemdNotify}), and what a test binds to stand in
 * for systemd. An address is a path, or an abstract name written with a leading {@code @}, as
 * {@code NOTIFY_SOCKET} writes it.
 *
 * <p>Not thread safe; close it when done (the descriptor is the caller's).
 */
public final class UnixDatagram implements AutoCloseable {

    /** {@code AF_UNIX}, {@code SOCK_DGRAM}, {@code SOCK_CLOEXEC}, {@code MSG_DONTWAIT}, {@code EAGAIN}: Linux's. */
    private static final int AF_UNIX = 1;
    private static final int SOCK_DGRAM = 2;
    private static final int SOCK_CLOEXEC = Abi.O_CLOEXEC;
    private static final int MSG_DONTWAIT = 0x40;
    private static final int EAGAIN = 11;
    /** {@code sizeof(struct sockaddr_un)} on Linux: a 2-byte family, then 108 bytes of path. */
    private static final int SOCKADDR_UN_BYTES = 110;
    private static final int PATH_OFFSET = 2;
    private static final int MAX_DATAGRAM = 4096;
    private static final long POLL_MILLIS = 5;

    private final int fd;
    private boolean closed;

    private UnixDatagram(int fd) {
        this.fd = fd;
    }

    /** An unbound socket, to send from. @throws IOException if the socket cannot be made */
    public static UnixDatagram open() throws IOException {
        String missing = Libc.unavailable("Unix datagram sockets", "socket", "sendto", "recv", "bind", "close");
        if (missing != null) {
            throw new IOException(missing);
        }
        // Safe: integers in, a new descriptor out, owned by the returned object.
        int fd = Libc.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            throw new IOException("socket(AF_UNIX, SOCK_DGRAM): errno " + -fd);
        }
        return new UnixDatagram(fd);
    }

    /** A socket bound to {@code address}, to receive on. @throws IOException if it cannot be bound */
    public static UnixDatagram bind(String address) throws IOException {
        UnixDatagram socket = open();
        try (Arena arena = Arena.ofConfined()) {
            // Safe: the sockaddr is exactly its segment's length, allocated here and alive for the call.
            int bound = Libc.bind(socket.fd, sockaddr(arena, address));
            if (bound < 0) {
                throw new IOException("bind " + address + ": errno " + -bound);
            }
            return socket;
        } catch (IOException | RuntimeException e) {
            socket.close();
            throw e;
        }
    }

    /** Sends {@code message} as one datagram to {@code address}. @throws IOException if it is not sent */
    public void send(String address, String message) throws IOException {
        byte[] bytes = message.getBytes(StandardCharsets.UTF_8);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buffer = arena.allocate(Math.max(1, bytes.length));
            MemorySegment.copy(bytes, 0, buffer, ValueLayout.JAVA_BYTE, 0, bytes.length);
            // Safe: both segments are allocated here, alive for the call; the kernel only reads them.
            long sent = Libc.sendto(fd, buffer.asSlice(0, bytes.length), 0, sockaddr(arena, address));
            if (sent < 0) {
                throw new IOException("sendto " + address + ": errno " + -sent);
            }
        }
    }

    /**
     * The next datagram, as UTF-8 text, or null if none came within {@code timeout}.
     *
     * @throws IOException if receiving fails
     */
    public String receive(Duration timeout) throws IOException, InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buffer = arena.allocate(MAX_DATAGRAM);
            while (true) {
                // Safe: the kernel writes at most the buffer's size into it, allocated here.
                long received = Libc.recv(fd, buffer, MSG_DONTWAIT);
                if (received >= 0) {
                    byte[] bytes = buffer.asSlice(0, received).toArray(ValueLayout.JAVA_BYTE);
                    return new String(bytes, StandardCharsets.UTF_8);
                }
                if (received != -EAGAIN && received != -Abi.EINTR) {
                    throw new IOException("recv: errno " + -received);
                }
                if (System.nanoTime() - deadline >= 0) {
                    return null;
                }
                Thread.sleep(POLL_MILLIS);
            }
        }
    }

    /** Closes the descriptor. Idempotent. */
    @Override
    public void close() {
        if (!closed) {
            closed = true;
            // Safe: the descriptor is this object's, never used again.
            Libc.close(fd);
        }
    }

    /** A {@code struct sockaddr_un} for {@code address}: a path, or {@code @name} for an abstract name. */
    private static MemorySegment sockaddr(Arena arena, String address) throws IOException {
        boolean isAbstract = address.startsWith("@");
        byte[] path = (isAbstract ? address.substring(1) : address).getBytes(StandardCharsets.UTF_8);
        // An abstract name is a NUL then the name, unterminated; a path is NUL-terminated.
        int pathBytes = path.length + 1;
        if (address.isEmpty() || PATH_OFFSET + pathBytes > SOCKADDR_UN_BYTES) {
            throw new IOException("Unix socket address '" + address + "': empty or longer than "
                    + (SOCKADDR_UN_BYTES - PATH_OFFSET - 1) + " bytes");
        }
        byte[] sunPath = isAbstract ? prepend((byte) 0, path) : Arrays.copyOf(path, pathBytes);
        MemorySegment sockaddr = arena.allocate(PATH_OFFSET + sunPath.length);
        sockaddr.set(ValueLayout.JAVA_SHORT_UNALIGNED, 0, (short) AF_UNIX);
        MemorySegment.copy(sunPath, 0, sockaddr, ValueLayout.JAVA_BYTE, PATH_OFFSET, sunPath.length);
        return sockaddr;
    }

    private static byte[] prepend(byte first, byte[] rest) {
        byte[] all = new byte[rest.length + 1];
        all[0] = first;
        System.arraycopy(rest, 0, all, 1, rest.length);
        return all;
    }
}
