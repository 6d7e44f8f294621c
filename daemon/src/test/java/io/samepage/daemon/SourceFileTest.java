package io.samepage.daemon;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** What the daemon and {@code samepage scan} accept as a file source, and how they say what is wrong with the rest. */
class SourceFileTest {

    @TempDir
    Path dir;

    private static String refusal(Path path) {
        DaemonException refused = assertThrows(DaemonException.class, () -> SourceFile.check(path.toString()));
        assertEquals(DaemonException.Kind.SOURCE, refused.kind());
        return refused.getMessage();
    }

    @Test
    void aFileOfWholePagesIsAcceptedWithItsLength() throws IOException {
        Path dump = Files.write(dir.resolve("vm.img"), new byte[3 * 4096]);
        SourceFile source = SourceFile.check(dump.toString());
        assertEquals(3 * 4096, source.bytes());
        assertEquals(dump.toString(), source.name());
    }

    @Test
    void aMissingFileIsNamed() {
        Path missing = dir.resolve("gone.img");
        assertEquals(missing + ": no such file", refusal(missing));
    }

    @Test
    void aDirectoryIsRefused() {
        assertEquals(dir + ": is a directory, not a memory dump", refusal(dir));
    }

    @Test
    void anEmptyFileIsRefused() throws IOException {
        Path empty = Files.createFile(dir.resolve("empty.img"));
        assertEquals(empty + ": is empty (0 bytes)", refusal(empty));
    }

    @Test
    void aLengthThatIsNotWholePagesIsRefused() throws IOException {
        Path odd = Files.write(dir.resolve("odd.img"), new byte[4097]);
        assertEquals(odd + ": length 4097 is not a multiple of 4096", refusal(odd));
    }

    @Test
    void aDeviceIsNotARegularFile() {
        assertEquals("/dev/null: is not a regular file", refusal(Path.of("/dev/null")));
    }

    @Test
    void aBrokenSymbolicLinkIsNamedAsSuch() throws IOException {
        Path link = Files.createSymbolicLink(dir.resolve("link.img"), dir.resolve("nowhere.img"));
        assertEquals(link + ": is a broken symbolic link", refusal(link));
    }
}
