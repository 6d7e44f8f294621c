package io.samepage.e2e;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** Runs the repository's {@code ./samepage} launcher as a user would, and captures what it printed. */
final class Samepage {

    /** What one run printed and returned. */
    record Run(int exitCode, String stdout, String stderr) {
    }

    private static final long TIMEOUT_SECONDS = 120;

    private Samepage() {
    }

    /** The repository root, passed by the build as {@code samepage.root}. */
    static Path root() {
        String root = System.getProperty("samepage.root");
        if (root == null) {
            throw new IllegalStateException("samepage.root is not set: run these tests through Maven");
        }
        return Path.of(root).toAbsolutePath().normalize();
    }

    /** Runs {@code samepage} with {@code args}, requires exit code 0, and parses what it printed as JSON. */
    static JsonNode json(String... args) throws IOException, InterruptedException {
        Run run = run(args);
        if (run.exitCode() != 0) {
            throw new AssertionError("samepage " + String.join(" ", args) + " exited " + run.exitCode() + ": "
                    + run.stderr());
        }
        return new ObjectMapper().readTree(run.stdout());
    }

    static Run run(String... args) throws IOException, InterruptedException {
        return run(null, args);
    }

    /**
     * Runs {@code samepage} with its stdout going to {@code stdout} (a device such as /dev/full), or, if
     * null, captured as {@link #run(String...)} does; {@link Run#stdout} is empty when it is not captured.
     */
    static Run run(java.io.File stdout, String... args) throws IOException, InterruptedException {
        return run(java.util.Map.of(), stdout, args);
    }

    /** {@link #run(java.io.File, String...)} with {@code environment} added to this process's. */
    static Run run(java.util.Map<String, String> environment, java.io.File stdout, String... args)
            throws IOException, InterruptedException {
        List<String> command = new ArrayList<>();
        command.add(root().resolve("samepage").toString());
        command.addAll(List.of(args));
        Path out = Files.createTempFile("samepage-out", ".txt");
        Path err = Files.createTempFile("samepage-err", ".txt");
        try {
            ProcessBuilder builder = new ProcessBuilder(command);
            builder.environment().putAll(environment);
            Process process = builder
                    .directory(root().toFile())
                    .redirectOutput(stdout != null ? stdout : out.toFile())
                    .redirectError(err.toFile())
                    .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")))
                    .start();
            if (!process.waitFor(TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
                process.destroyForcibly();
                throw new AssertionError("samepage " + String.join(" ", args) + " did not finish in "
                        + TIMEOUT_SECONDS + " s");
            }
            return new Run(process.exitValue(), Files.readString(out, StandardCharsets.UTF_8),
                    Files.readString(err, StandardCharsets.UTF_8));
        } finally {
            Files.deleteIfExists(out);
            Files.deleteIfExists(err);
        }
    }

    /** The start line's metrics URL: {@code samepage daemon: pid ..., metrics http://127.0.0.1:PORT/metrics}. */
    private static final java.util.regex.Pattern METRICS_URL =
            java.util.regex.Pattern.compile("(?m)^samepage daemon: pid .*, metrics http://127\\.0\\.0\\.1:(\\d+)/metrics$");

    /**
     * The port a {@code samepage daemon} started with {@code metrics_port=any} serves its metrics on, read
     * from the start line it prints to {@code out}; waits for that line up to {@code waitSeconds}.
     *
     * @throws AssertionError if the daemon exits first or prints no such line in time, with its stderr
     */
    static int daemonMetricsPort(Process daemon, Path out, Path err, long waitSeconds)
            throws IOException, InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(waitSeconds);
        while (System.nanoTime() - deadline < 0) {
            boolean alive = daemon.isAlive();       // read first: a line written before it exited is still read
            java.util.regex.Matcher line = METRICS_URL.matcher(Files.exists(out) ? Files.readString(out) : "");
            if (line.find()) {
                return Integer.parseInt(line.group(1));
            }
            if (!alive) {
                throw new AssertionError("the daemon exited " + daemon.exitValue() + " without a start line naming "
                        + "its metrics; stderr: " + (Files.exists(err) ? Files.readString(err) : ""));
            }
            Thread.sleep(50);
        }
        throw new AssertionError("no start line naming the daemon's metrics in " + waitSeconds + " s; stdout: "
                + Files.readString(out) + "; stderr: " + (Files.exists(err) ? Files.readString(err) : ""));
    }
}
