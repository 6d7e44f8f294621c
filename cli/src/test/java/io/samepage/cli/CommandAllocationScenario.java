package io.samepage.cli;

import io.samepage.image.ImageIndex;
import io.samepage.testing.AllocationFaultLoader;
import io.samepage.testing.AllocationFaults;
import io.samepage.testing.ArmedScenario;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import picocli.CommandLine;

/**
 * One {@code samepage} command line run in this JVM as {@link Main} runs it (the command line built, then
 * executed), with the k-th allocation of the CLI's classes failing, for {@link CliAllocationFaultTest},
 * which loads this class through an {@link AllocationFaultLoader}. The commands are those that write a
 * file or hold an engine: {@code "index"}, {@code index build IMAGE -o FILE} over an earlier index;
 * {@code "density"}, {@code bench density} (two guests of 1 MiB, no kernel KSM) over an earlier report;
 * {@code "demo"}, {@code demo --index FILE --rebuild} over an earlier index; {@code "scan"},
 * {@code scan --json} of two dumps. With {@code "full-heap "} before the command every allocation from
 * the k-th on fails, the error's report too.
 *
 * <p>Whatever fails: nothing escapes {@link Main#run} (it would end the JVM with exit code 1 and a stack
 * trace); the exit code is {@value SamepageCommand#EXIT_INTERNAL}, the internal
 * error's, and stderr one line (after the progress lines of {@code bench density}) that names it: once
 * the command line is built, picocli's handlers' {@code samepage <command>: out of memory (injected at ...);
 * give Java more ...}, and before, or on a full heap, {@link Main}'s {@code samepage: internal error: ...}; the
 * output files are the earlier ones, byte for byte; the directory holds no other file (no temporary
 * file). A run that fails nothing exits 0 and writes whole, valid output files.
 *
 * <p>{@link #apply} returns the findings of one run, one line each ("" for none); {@link #getAsLong} the
 * allocations the last run passed. Not thread safe.
 */
final class CommandAllocationScenario extends ArmedScenario {

    private final boolean heapStaysFull;
    private final String command;
    private final Path dir;
    private final String[] args;
    /** The files the command writes, by path, with what they held before each run. */
    private final Map<Path, byte[]> earlier = new LinkedHashMap<>();
    private final List<String> filesBefore;
    private final Path image;
    /** Whether the last run built its command line: from then on picocli's handlers report what fails. */
    private boolean built;

    CommandAllocationScenario(String shape, Path dir) throws IOException {
        int index = shape(shape, "index", "density", "demo", "scan", "full-heap index", "full-heap density",
                "full-heap demo", "full-heap scan");
        this.heapStaysFull = index >= 4;
        this.command = shape.replace("full-heap ", "");
        this.dir = dir;
        byte[] bytes = new byte[300 * 4096];
        new SplittableRandom(1).nextBytes(bytes);
        Arrays.fill(bytes, 100 * 4096, 120 * 4096, (byte) 0);
        this.image = Files.write(dir.resolve("image.raw"), bytes);
        Path indexFile = dir.resolve("image.idx");
        Path out = dir.resolve("out");
        args = switch (command) {
            case "index" -> new String[] {"index", "build", image.toString(), "-o", indexFile.toString()};
            case "density" -> new String[] {"bench", "density", "--image", image.toString(), "--guests", "2",
                "--guest-mib", "1", "--rate-runs", "1", "--no-ksm", "--ksm-defaults", "none", "--out", out.toString()};
            case "demo" -> new String[] {"demo", "--guests", "2", "--guest-mib", "1", "--image", image.toString(),
                "--index", indexFile.toString(), "--rebuild", "--json"};
            default -> new String[] {"scan", "--json", image.toString(),
                Files.copy(image, dir.resolve("copy.raw")).toString()};
        };
        if (command.equals("index") || command.equals("demo")) {
            try (ImageIndex built = ImageIndex.build(image)) {
                built.writeTo(indexFile);
            }
            earlier.put(indexFile, Files.readAllBytes(indexFile));
        } else if (command.equals("density")) {
            int exit = run(new StringWriter());
            if (exit != 0) {
                throw new IllegalStateException("the earlier report: exit " + exit);
            }
            for (String name : List.of("density.json", "density.md", "density.png")) {
                earlier.put(out.resolve(name), Files.readAllBytes(out.resolve(name)));
            }
        }
        filesBefore = files();
    }

    /**
     * Runs the command as {@link Main} does ({@link Main#run}), its stdout dropped and its stderr, and
     * this process's, to {@code err}; returns its exit code.
     */
    private int run(StringWriter err) {
        PrintStream systemErr = System.err;
        ByteArrayOutputStream mainErr = new ByteArrayOutputStream();
        System.setErr(new PrintStream(mainErr, true, StandardCharsets.UTF_8));
        try {
            built = false;
            return Main.run(a -> {
                CommandLine commandLine = SamepageCommand.newCommandLine(a);
                built = true;
                commandLine.setOut(new PrintWriter(new StringWriter(), true));
                commandLine.setErr(new PrintWriter(err, true));
                return commandLine;
            }, args);
        } finally {
            System.setErr(systemErr);
            err.write(mainErr.toString(StandardCharsets.UTF_8));
        }
    }

    @Override
    protected String run(long failAt) throws Exception {
        StringWriter err = new StringWriter();
        int[] exit = {-1};
        Throwable thrown = armed(() -> {
            if (heapStaysFull) {
                AllocationFaults.failFrom(failAt);      // re-armed before the first allocation: from the k-th on
            }
            exit[0] = run(err);
        });
        List<String> findings = new ArrayList<>();
        String state = where() + ": " + String.join(" ", Arrays.copyOf(args, 2));
        if (thrown != null) {
            findings.add(state + ": " + thrown + " escaped Main.run (the JVM would exit 1 with a stack trace)");
        }
        // Progress lines of bench density come first: the error is the line after them.
        String stderr = err.toString().lines().filter(l -> !l.matches("samepage bench density: N=\\d+: .*"))
                .collect(java.util.stream.Collectors.joining("\n"));
        boolean failed = failAt > 0 && AllocationFaults.injectedAt() != null;
        if (thrown == null && failed) {
            // Once the command line is built, by its handlers, named for the level the failure was met at
            // ("samepage bench" while checking the options of bench density), with what to do; before, or where
            // the heap stays full and the handlers cannot report it, by Main.
            boolean named = stderr.matches("samepage[a-z ]*: out of memory \\(injected at .*\\); give Java more .*")
                    || (!built || heapStaysFull)
                    && stderr.startsWith("samepage: internal error: java.lang.OutOfMemoryError: injected at ");
            if (exit[0] != SamepageCommand.EXIT_INTERNAL) {
                findings.add(state + ": exit " + exit[0] + ", not " + SamepageCommand.EXIT_INTERNAL + "; stderr: "
                        + stderr.strip());
            } else if (!named || stderr.lines().count() != 1) {
                findings.add(state + ": stderr is not one line naming the failure: " + stderr.strip());
            }
        } else if (thrown == null && exit[0] != 0) {
            findings.add(state + ": failed nothing, and exit " + exit[0] + "; stderr: " + stderr.strip());
        }
        boolean whole = !failed && thrown == null;
        for (Map.Entry<Path, byte[]> file : earlier.entrySet()) {
            byte[] now = Files.exists(file.getKey()) ? Files.readAllBytes(file.getKey()) : null;
            if (now == null) {
                findings.add(state + ": " + file.getKey().getFileName() + " is gone");
            } else if (!whole && !Arrays.equals(file.getValue(), now) && !valid(file.getKey())) {
                findings.add(state + ": failed, and " + file.getKey().getFileName() + " is neither the earlier one "
                        + "nor whole");
            } else if (whole && !valid(file.getKey())) {
                findings.add(state + ": " + file.getKey().getFileName() + " is not whole");
            }
        }
        List<String> files = files();
        if (!files.equals(filesBefore)) {
            findings.add(state + ": the directory holds " + files + ", not " + filesBefore);
        }
        for (String name : files) {
            if (!filesBefore.contains(name)) {
                Files.delete(dir.resolve(name));        // so that the next run finds what it leaves, not this
            }
        }
        for (Map.Entry<Path, byte[]> file : earlier.entrySet()) {
            Files.write(file.getKey(), file.getValue());
        }
        return String.join("\n", findings);
    }

    /** Whether {@code file}, written by the command, is whole: an index of the image, a report. */
    private boolean valid(Path file) throws IOException {
        String name = file.getFileName().toString();
        if (name.endsWith(".idx")) {
            try (ImageIndex opened = ImageIndex.open(file, image)) {
                return opened.blockCount() == 300;
            } catch (RuntimeException e) {
                return false;
            }
        }
        byte[] bytes = Files.readAllBytes(file);
        return switch (name) {
            case "density.json" -> new String(bytes, java.nio.charset.StandardCharsets.UTF_8).strip().endsWith("}");
            case "density.md" -> new String(bytes, java.nio.charset.StandardCharsets.UTF_8).contains("## Must show");
            default -> bytes.length > 8 && bytes[1] == 'P' && bytes[2] == 'N' && bytes[3] == 'G';
        };
    }

    /** Every file under the directory, by its path relative to it, sorted. */
    private List<String> files() throws IOException {
        try (Stream<Path> walk = Files.walk(dir)) {
            return walk.filter(Files::isRegularFile).map(p -> dir.relativize(p).toString()).sorted().toList();
        }
    }
}
