package io.samepage.image;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.api.io.TempDir;

/** The mode an index file is written with, and the index files refused before any work. */
class IndexFileChecksTest {

    @TempDir
    Path temp;

    private Path image() throws IOException {
        return Files.write(temp.resolve("disk.img"), ImageIndexTest.randomBytes(3 * 4096, 5));
    }

    @Test
    void rewritingAnIndexKeepsTheReplacedFilesMode() throws IOException {
        Path file = temp.resolve("disk.idx");
        try (ImageIndex index = ImageIndex.build(image())) {
            index.writeTo(file);
            Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("rw-r-----"));
            index.writeTo(file);
        }
        assertEquals("rw-r-----", PosixFilePermissions.toString(Files.getPosixFilePermissions(file)));
    }

    @Test
    void aNewIndexGetsTheModeOfAnyFileCreatedBesideIt() throws IOException {
        Path file = temp.resolve("new.idx");
        try (ImageIndex index = ImageIndex.build(image())) {
            index.writeTo(file);
        }
        Path plain = Files.createFile(temp.resolve("plain"));
        assertEquals(PosixFilePermissions.toString(Files.getPosixFilePermissions(plain)),
                PosixFilePermissions.toString(Files.getPosixFilePermissions(file)), "0666 less the umask");
        assertEquals(PosixFilePermissions.toString(FileModes.newFile()),
                PosixFilePermissions.toString(Files.getPosixFilePermissions(plain)));
    }

    @Test
    void aDirectoryOrADeviceIsRefusedBeforeItIsOpenedAsAnIndex() throws IOException {
        Path directory = Files.createDirectory(temp.resolve("dir.idx"));
        assertIo(directory + ": is a directory, not an index file", () -> ImageIndex.open(directory));
        Path device = Path.of("/dev/null");
        assertIo(device + ": not a regular file", () -> ImageIndex.open(device));
    }

    @Test
    void anIndexIsNotWrittenOverTheImageOrInsideItsTree() throws IOException {
        Path image = image();
        assertIo(image + ": is the image " + image + " itself", () -> ImageIndex.checkWritable(image, image));
        Path tree = Files.createDirectories(temp.resolve("tree/sub"));
        Files.write(tree.resolve("a"), ImageIndexTest.randomBytes(100, 6));
        Path inside = tree.resolve("disk.idx");
        assertIo(inside + ": lies inside the image " + tree.getParent()
                + "; writing it there would change the image it describes",
                () -> ImageIndex.checkWritable(inside, tree.getParent()));
    }

    @Test
    void anIndexWhoseFolderIsMissingOrThatIsADirectoryIsRefusedBeforeAnyWork() throws IOException {
        Path image = image();
        Path nowhere = temp.resolve("no-such-dir/disk.idx");
        assertIo(nowhere + ": the directory " + nowhere.getParent() + " does not exist",
                () -> ImageIndex.checkWritable(nowhere, image));
        Path directory = Files.createDirectory(temp.resolve("out"));
        assertIo(directory + ": is a directory; name the index file to write",
                () -> ImageIndex.checkWritable(directory, image));
        ImageIndex.checkWritable(temp.resolve("fine.idx"), image);
    }

    private static void assertIo(String message, Executable refused) {
        ImageIndexException e = assertThrows(ImageIndexException.class, refused);
        assertEquals(ImageIndexException.Kind.IO, e.kind());
        assertEquals(message, e.getMessage());
    }
}
