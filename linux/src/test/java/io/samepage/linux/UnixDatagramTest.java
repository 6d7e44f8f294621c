package io.samepage.linux;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A datagram sent to a bound Unix socket, by path or by abstract name, arrives whole and alone. */
class UnixDatagramTest {

    @TempDir
    Path dir;

    @Test
    void aDatagramSentToABoundPathArrivesWhole() throws Exception {
        String address = dir.resolve("notify").toString();
        try (UnixDatagram receiver = UnixDatagram.bind(address); UnixDatagram sender = UnixDatagram.open()) {
            assertNull(receiver.receive(Duration.ofMillis(20)), "nothing sent yet");
            sender.send(address, "READY=1\nSTATUS=merging");
            sender.send(address, "STOPPING=1");
            assertEquals("READY=1\nSTATUS=merging", receiver.receive(Duration.ofSeconds(5)));
            assertEquals("STOPPING=1", receiver.receive(Duration.ofSeconds(5)));
        }
    }

    @Test
    void anAbstractNameWorksAsNotifySocketWritesIt() throws Exception {
        String address = "@samepage-test-" + ProcessHandle.current().pid() + "-" + System.nanoTime();
        try (UnixDatagram receiver = UnixDatagram.bind(address); UnixDatagram sender = UnixDatagram.open()) {
            sender.send(address, "READY=1");
            assertEquals("READY=1", receiver.receive(Duration.ofSeconds(5)));
        }
    }

    @Test
    void sendingToNoSocketFailsWithTheAddress() throws Exception {
        try (UnixDatagram sender = UnixDatagram.open()) {
            IOException refused = assertThrows(IOException.class,
                    () -> sender.send(dir.resolve("absent").toString(), "READY=1"));
            assertEquals("sendto " + dir.resolve("absent") + ": errno 2", refused.getMessage());
        }
    }
}
