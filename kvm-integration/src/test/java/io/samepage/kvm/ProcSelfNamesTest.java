package io.samepage.kvm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import org.junit.jupiter.api.Test;

/**
 * What this module reads of {@code /proc/self} holds file names, which are bytes, not UTF-8: the
 * embedding program may map a file named {@code caf\xe9}. {@link MappingBudget#mappingsInUse} and
 * {@link MappedGuestMemory#kernelMappings} decoded {@code /proc/self/maps} strictly, so with such a
 * mapping in the process every new mapped guest was refused as "cannot count mappings"
 * ({@link KvmException.Kind#UNAVAILABLE}).
 */
class ProcSelfNamesTest {

    @Test
    void aMappedFileWhoseNameIsNotUtf8LeavesTheMappingsCountable() throws Exception {
        Path dir = Files.createTempDirectory("samepage-names");
        try {
            // Java cannot name the file (its name is not UTF-8), so bash makes it and an ASCII link to it;
            // /proc/self/maps shows the file's own name.
            Process made = new ProcessBuilder("bash", "-c",
                    "f=\"$1/$(printf 'caf\\351')\" && head -c 4096 /dev/zero > \"$f\" && ln -s \"$f\" \"$1/link\"",
                    "_", dir.toString()).inheritIO().start();
            assertEquals(0, made.waitFor());
            try (FileChannel channel = FileChannel.open(dir.resolve("link"), StandardOpenOption.READ);
                    Arena arena = Arena.ofConfined();
                    MemfdFrames frames = MemfdFrames.create("names", 2)) {
                channel.map(FileChannel.MapMode.READ_ONLY, 0, 4096, arena);
                byte[] maps = Files.readAllBytes(Path.of("/proc/self/maps"));
                assertTrue(indexOf(maps, new byte[] {'c', 'a', 'f', (byte) 0xE9}) >= 0,
                        "the test needs the name's raw byte in /proc/self/maps");
                assertTrue(MappingBudget.mappingsInUse() > 0);
                MappedGuestMemory guest = frames.mapGuest(2);
                assertEquals(1, guest.kernelMappings());
            }
        } finally {
            new ProcessBuilder("rm", "-rf", dir.toString()).inheritIO().start().waitFor();
        }
    }

    private static int indexOf(byte[] haystack, byte[] needle) {
        outer:
        for (int i = 0; i + needle.length <= haystack.length; i++) {
            for (int j = 0; j < needle.length; j++) {
                if (haystack[i + j] != needle[j]) {
                    continue outer;
                }
            }
            return i;
        }
        return -1;
    }
}
