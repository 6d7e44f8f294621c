package io.samepage.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * {@code docs/layout.md} tells the truth about the modules: its table lists exactly the modules of the
 * root pom, and for each the Samepage modules it may use are exactly the ones its pom depends on
 * outside test scope. The house rules it states are checked too: FFM downcalls in the linux module
 * only, a {@code module-info.java} in every library module, no main source file over 500 lines, and
 * the CLI's main code at most 3,000 lines.
 */
class LayoutTest {

    private static final Pattern ROW = Pattern.compile("^\\| `([a-z/-]+)` \\|.*\\| ([^|]*) \\|$");
    private static final Pattern MODULE = Pattern.compile("<module>([^<]+)</module>");
    private static final Pattern DEPENDENCY = Pattern.compile(
            "<dependency>\\s*<groupId>io\\.samepage</groupId>\\s*<artifactId>samepage-([a-z-]+)</artifactId>"
                    + "(?:\\s*<version>[^<]*</version>)?(\\s*<scope>(\\w+)</scope>)?");

    private static final Path ROOT = Samepage.root();

    @Test
    void theLayoutTableNamesEveryModuleAndWhatItUses() throws IOException {
        Map<String, TreeSet<String>> documented = documentedModules();
        List<String> modules = new ArrayList<>();
        Matcher m = MODULE.matcher(Files.readString(ROOT.resolve("pom.xml")));
        while (m.find()) {
            modules.add(m.group(1));
        }
        assertEquals(new TreeSet<>(modules), new TreeSet<>(documented.keySet()),
                "docs/layout.md's table against the root pom's <modules>");
        for (String module : modules) {
            assertEquals(documented.get(module), samepageDependencies(module),
                    "docs/layout.md: what " + module + " may use, against " + module + "/pom.xml");
        }
    }

    @Test
    void nativeCallsLiveInTheLinuxModuleOnly() throws IOException {
        List<String> outside = new ArrayList<>();
        for (Path file : javaFiles(ROOT)) {
            String text = Files.readString(file);
            // Spelled in two pieces so that this file does not match itself.
            if ((text.contains("Linker." + "nativeLinker()") || text.contains(".downcall" + "Handle("))
                    && !ROOT.relativize(file).startsWith("linux")) {
                outside.add(ROOT.relativize(file).toString());
            }
        }
        assertEquals(List.of(), outside, "FFM downcalls outside linux/");
    }

    @Test
    void everyLibraryModuleHasAModuleDescriptor() {
        for (String module : List.of("hashing", "linux", "dedup-core", "image-index", "host-mode",
                "kvm-integration", "wasm", "daemon", "density")) {
            if (Files.isDirectory(ROOT.resolve(module))) {
                assertTrue(Files.isRegularFile(ROOT.resolve(module).resolve("src/main/java/module-info.java")),
                        module + " has no src/main/java/module-info.java");
            }
        }
    }

    @Test
    void mainSourceFilesStaySmallAndTheCliThin() throws IOException {
        List<String> large = new ArrayList<>();
        long cliLines = 0;
        for (Path file : javaFiles(ROOT)) {
            Path relative = ROOT.relativize(file);
            if (!relative.toString().contains("/src/main/java/")) {
                continue;
            }
            long lines = Files.readAllLines(file).size();
            if (lines > 500) {
                large.add(relative + " (" + lines + " lines)");
            }
            if (relative.startsWith("cli")) {
                cliLines += lines;
            }
        }
        assertEquals(List.of(), large, "main source files over 500 lines");
        assertTrue(cliLines <= 3_000, "cli's main code is " + cliLines + " lines, more than 3,000");
    }

    @Test
    void noTwoTestClassesShareAName() throws IOException {
        java.util.Map<String, List<String>> byName = new TreeMap<>();
        for (Path file : javaFiles(ROOT)) {
            String relative = ROOT.relativize(file).toString();
            if (relative.contains("/src/test/java/") || relative.startsWith("src/test/java/")) {
                byName.computeIfAbsent(file.getFileName().toString(), k -> new ArrayList<>()).add(relative);
            }
        }
        byName.values().removeIf(files -> files.size() == 1);
        assertEquals(Map.of(), byName, "test classes that share a name");
    }

    /** Module directory to the Samepage modules its row says it may use. */
    private static Map<String, TreeSet<String>> documentedModules() throws IOException {
        Map<String, TreeSet<String>> documented = new TreeMap<>();
        for (String line : Files.readAllLines(ROOT.resolve("docs/layout.md"))) {
            Matcher row = ROW.matcher(line);
            if (!row.matches()) {
                continue;
            }
            TreeSet<String> uses = new TreeSet<>();
            Matcher used = Pattern.compile("`([a-z-]+)`").matcher(row.group(2));
            while (used.find()) {
                uses.add(used.group(1));
            }
            documented.put(row.group(1), uses);
        }
        assertTrue(documented.size() >= 5, "docs/layout.md has no module table: " + documented);
        return documented;
    }

    /** The Samepage artifacts a module's pom depends on outside test scope, without the prefix. */
    private static TreeSet<String> samepageDependencies(String module) throws IOException {
        TreeSet<String> uses = new TreeSet<>();
        Matcher m = DEPENDENCY.matcher(Files.readString(ROOT.resolve(module).resolve("pom.xml")));
        while (m.find()) {
            if (!"test".equals(m.group(3))) {
                uses.add(m.group(1));
            }
        }
        return uses;
    }

    /**
     * The sources, without entering {@code target} or {@code .git}: builds and tests write and delete
     * files there while this walks, and a file that vanishes mid-walk would fail the walk.
     */
    private static List<Path> javaFiles(Path root) throws IOException {
        List<Path> found = new ArrayList<>();
        Files.walkFileTree(root, new SimpleFileVisitor<>() {
            @Override
            public FileVisitResult preVisitDirectory(Path dir, BasicFileAttributes attributes) {
                String name = dir.getFileName() == null ? "" : dir.getFileName().toString();
                return !dir.equals(root) && (name.equals("target") || name.equals(".git"))
                        ? FileVisitResult.SKIP_SUBTREE : FileVisitResult.CONTINUE;
            }

            @Override
            public FileVisitResult visitFile(Path file, BasicFileAttributes attributes) {
                if (file.toString().endsWith(".java")) {
                    found.add(file);
                }
                return FileVisitResult.CONTINUE;
            }
        });
        return found;
    }
}
