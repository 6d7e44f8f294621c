package io.samepage.linux;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * Every libc function is bound in one place, {@code Libc}: no other source file of the package reaches
 * the native linker, so each binding, its shape and its errno capture are written and checked once.
 */
class OneBindingTableTest {

    /** The package's sources, from the module's base directory (the tests' working directory). */
    private static final Path SOURCES = Path.of("src/main/java/io/samepage/linux");
    private static final List<String> LINKING = List.of("nativeLinker", "downcallHandle", "SymbolLookup");

    @Test
    void onlyLibcLinksNativeFunctions() throws IOException {
        List<Path> sources;
        try (Stream<Path> files = Files.list(SOURCES)) {
            sources = files.filter(file -> file.toString().endsWith(".java")).sorted().toList();
        }
        assertTrue(sources.contains(SOURCES.resolve("Libc.java")), "the scan sees the package: " + sources);
        List<String> linking = sources.stream()
                .filter(file -> !file.getFileName().toString().equals("Libc.java"))
                .flatMap(file -> LINKING.stream().filter(word -> read(file).contains(word))
                        .map(word -> file.getFileName() + " mentions " + word))
                .toList();
        assertEquals(List.of(), linking, "only Libc.java may link libc functions");
    }

    private static String read(Path file) {
        try {
            return Files.readString(file);
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }
}
