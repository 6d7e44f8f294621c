package io.samepage.host;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@link Ksmd} on a fake {@code /proc}: found by its name, its CPU time read or refused as unreadable. */
class KsmdTest {

    @TempDir
    Path proc;

    private Ksmd ksmd(String stat) throws IOException {
        Files.createDirectories(proc.resolve("1"));
        Files.writeString(proc.resolve("1/comm"), "systemd\n");
        Files.createDirectories(proc.resolve("42"));
        Files.writeString(proc.resolve("42/comm"), "ksmd\n");
        Files.writeString(proc.resolve("42/stat"), stat);
        Files.createDirectories(proc.resolve("4x"));      // matches the glob [0-9]*, is no pid
        Files.writeString(proc.resolve("4x/comm"), "ksmd\n");
        return Ksmd.find(proc);
    }

    @Test
    void ksmdIsFoundByNameAndItsUserAndSystemTicksAreItsCpuTime() throws IOException {
        // A real line's shape: the name in parentheses may hold spaces and a ')'.
        Ksmd ksmd = ksmd("42 (ksm) d) S 2 0 0 0 -1 69238848 0 0 0 0 150 250 0 0 25 5 1 0 37 0 0 "
                + "18446744073709551615 0 0 0 0 0 0 0 2147483647 0 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n");
        assertNotNull(ksmd);
        assertEquals(42, ksmd.pid());
        assertEquals(400 * 1_000_000_000L / ksmd.ticksPerSecond(), ksmd.cpuNanos());
    }

    /**
     * The kernel writes this file, but a line of another shape (a short read, another kernel) is an
     * IOException the callers treat as "cannot be read", never an unchecked exception that ends their
     * loop: it was ArrayIndexOutOfBounds, StringIndexOutOfBounds and NumberFormatException.
     */
    @Test
    void aStatLineOfAnotherShapeIsAnIoErrorNamingTheFile() throws IOException {
        for (String stat : new String[] {"", "42 (ksmd) S 2\n", "42 (ksmd)", "no parentheses at all",
            "42 (ksmd) S 2 0 0 0 -1 69238848 0 0 0 0 x 250 0\n",
            "42 (ksmd) S 2 0 0 0 -1 69238848 0 0 0 0 9223372036854775807 1 0\n",
            "42 (ksmd) S 2 0 0 0 -1 69238848 0 0 0 0 -150 0 0\n"}) {
            Ksmd ksmd = ksmd(stat);
            IOException e = assertThrows(IOException.class, ksmd::cpuNanos, stat);
            assertTrue(e.getMessage().startsWith(proc.resolve("42/stat") + ": "), e.getMessage());
        }
    }

    @Test
    void withoutAProcessNamedKsmdThereIsNone() throws IOException {
        ksmd("");
        Files.writeString(proc.resolve("42/comm"), "kswapd0\n");
        assertNull(Ksmd.find(proc));
    }
}
