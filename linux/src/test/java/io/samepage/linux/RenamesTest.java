package io.samepage.linux;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code renameat2(RENAME_EXCHANGE)}: two names swapped in one step, or nothing changed. */
class RenamesTest {

    @TempDir
    Path dir;

    @Test
    void anExchangeSwapsTwoFilesAndAMissingOneChangesNothing() throws IOException {
        assumeTrue(Renames.unavailableReason() == null, Renames.unavailableReason());
        Path a = Files.writeString(dir.resolve("a"), "first");
        Path b = Files.writeString(dir.resolve("b"), "second");
        Renames.Exchange done = Renames.exchange(a, b);
        assumeTrue(done != Renames.Exchange.UNSUPPORTED, "this filesystem has no exchange");
        assertEquals(Renames.Exchange.DONE, done);
        assertEquals("second", Files.readString(a));
        assertEquals("first", Files.readString(b));

        assertEquals(Renames.Exchange.MISSING, Renames.exchange(a, dir.resolve("absent")));
        assertEquals("second", Files.readString(a));

        Path sub = Files.createDirectory(dir.resolve("sub"));
        assertEquals(Renames.Exchange.DONE, Renames.exchange(a, sub), "a file and a directory swap too");
        assertEquals("second", Files.readString(sub));
        assertEquals(true, Files.isDirectory(a));
    }
}
