package io.samepage.testing;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The lock file is shared by every user's builds: made by root's build with the umask's 0644, it would
 * let no other user's build take the lock alone, which needs the file open for writing.
 */
class HostKsmLockTest {

    @TempDir
    Path dir;

    private static String mode(Path file) throws IOException {
        return PosixFilePermissions.toString(Files.getPosixFilePermissions(file));
    }

    @Test
    void aLockFileItMakesIsWritableByEveryUser() throws IOException {
        Path taken = dir.resolve("taken.lock");
        try (HostKsmLock _ = HostKsmLock.take(taken)) {
            assertEquals("rw-rw-rw-", mode(taken), "made by take()");
        }
        Path shared = dir.resolve("shared.lock");
        try (HostKsmLock _ = HostKsmLock.share(shared)) {
            assertEquals("rw-rw-rw-", mode(shared), "made by share()");
        }
    }

    @Test
    void aLockFileItFindsKeepsItsMode() throws IOException {
        Path found = Files.createFile(dir.resolve("found.lock"),
                PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-r-----")));
        try (HostKsmLock _ = HostKsmLock.take(found)) {
            assertEquals("rw-r-----", mode(found), "take() left it as it was");
        }
        try (HostKsmLock _ = HostKsmLock.share(found)) {
            assertEquals("rw-r-----", mode(found), "and so did share()");
        }
    }
}
