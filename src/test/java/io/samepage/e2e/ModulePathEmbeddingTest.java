package io.samepage.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The README's embedding example, run as an embedder runs it: the library jars on the module path of a
 * child JVM, the program launched from source, native access granted to {@code io.samepage.linux} only.
 * This is where the module descriptors are tested: the unit tests run on the class path.
 */
class ModulePathEmbeddingTest {

    /** The module path: the engine's jars and their dependencies, from the test's own class path. */
    private static final List<String> MODULE_JARS = List.of("samepage-dedup-core", "samepage-hashing",
            "samepage-linux", "agrona", "lz4-java", "hash4j");

    @TempDir
    Path dir;

    @Test
    void theReadmeExampleRunsWithNativeAccessForTheLinuxModuleOnly() throws Exception {
        Path program = readmeExample();
        Run run = java(program, "--enable-native-access=io.samepage.linux", "--illegal-native-access=deny");
        assertEquals(0, run.exitCode, run.stderr);
        assertTrue(run.stdout.contains("pagesShared=1") && run.stdout.contains("pagesSharing=1"), run.stdout);
        assertEquals("", run.stderr);
    }

    @Test
    void withoutTheFlagTheJdkNamesTheLinuxModuleAsTheOneMakingDowncalls() throws Exception {
        Run run = java(readmeExample(), "--enable-native-access=io.samepage.core");
        assertEquals(0, run.exitCode, run.stderr);
        assertTrue(run.stderr.contains("WARNING: A restricted method in java.lang.foreign.")
                && run.stderr.contains("called by io.samepage.linux"), run.stderr);
        assertFalse(run.stderr.contains("called by io.samepage.core"), run.stderr);
    }

    @Test
    void theLinuxModuleIsNotExportedToEmbedders() throws Exception {
        Path program = dir.resolve("Reach.java");
        Files.writeString(program, """
                void main() {
                    IO.println(io.samepage.linux.NativeMemory.available());
                }
                """);
        Run run = java(program, "--add-modules", "io.samepage.linux", "--enable-native-access=io.samepage.linux");
        assertEquals(1, run.exitCode, run.stdout);
        assertTrue(run.stderr.contains("package io.samepage.linux is declared in module io.samepage.linux, "
                + "which does not export it"), run.stderr);
    }

    /** The Java block under the README's "Embedding" heading, as a compact source file. */
    private Path readmeExample() throws IOException {
        String readme = Files.readString(Samepage.root().resolve("README.md"));
        Matcher m = Pattern.compile("## Embedding\\n.*?```java\\n(.*?)```", Pattern.DOTALL).matcher(readme);
        assertTrue(m.find(), "README.md has no ```java block under ## Embedding");
        Path program = dir.resolve("Embed.java");
        Files.writeString(program, m.group(1));
        return program;
    }

    private Run java(Path program, String... flags) throws IOException, InterruptedException {
        List<String> command = new ArrayList<>();
        command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        command.add("--module-path");
        command.add(modulePath());
        command.add("--add-modules");
        command.add("io.samepage.core");
        command.addAll(Arrays.asList(flags));
        command.add(program.toString());
        Process process = new ProcessBuilder(command).directory(dir.toFile()).start();
        process.getOutputStream().close();
        if (!process.waitFor(120, TimeUnit.SECONDS)) {
            process.destroyForcibly();
            throw new AssertionError("the example did not finish in 120 s: " + command);
        }
        return new Run(process.exitValue(),
                new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8),
                new String(process.getErrorStream().readAllBytes(), StandardCharsets.UTF_8));
    }

    private static String modulePath() {
        String classPath = System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
        List<String> entries = Arrays.stream(classPath.split(File.pathSeparator))
                .filter(entry -> MODULE_JARS.stream().anyMatch(name -> isArtifact(entry, name)))
                .collect(Collectors.toList());
        assertEquals(MODULE_JARS.size(), entries.size(), "module path entries found in " + classPath);
        return String.join(File.pathSeparator, entries);
    }

    /** A jar named artifact-VERSION.jar, or a reactor module's target/classes. */
    private static boolean isArtifact(String entry, String artifact) {
        Path path = Path.of(entry);
        String file = path.getFileName().toString();
        if (file.startsWith(artifact + "-") && file.endsWith(".jar")
                && Character.isDigit(file.charAt(artifact.length() + 1))) {
            return true;
        }
        String module = artifact.replaceFirst("^samepage-", "");
        return file.equals("classes") && path.getParent() != null && path.getParent().getParent() != null
                && path.getParent().getParent().getFileName().toString().equals(module);
    }

    private record Run(int exitCode, String stdout, String stderr) {
    }
}
