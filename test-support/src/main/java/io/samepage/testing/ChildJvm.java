package io.samepage.testing;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * Runs a main class of the test class path in a child JVM (this JVM's own java binary) and reads the
 * addresses it prints ({@code NAME HEX} lines, until one starting {@code ready}). Closing it closes the
 * child's stdin, which the child takes as its cue to exit.
 */
public final class ChildJvm implements AutoCloseable {

    private final Process process;
    private final Map<String, Long> addresses;

    private ChildJvm(Process process, Map<String, Long> addresses) {
        this.process = process;
        this.addresses = addresses;
    }

    public static ChildJvm start(Class<?> main) throws IOException {
        String java = ProcessHandle.current().info().command().orElseThrow();
        Process process = new ProcessBuilder(java, "--enable-native-access=ALL-UNNAMED", "-Xmx64m",
                "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-cp", System.getProperty("java.class.path"),
                main.getName())
                .redirectError(ProcessBuilder.Redirect.INHERIT)
                .start();
        Map<String, Long> addresses = new HashMap<>();
        BufferedReader out = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8));
        for (String line = out.readLine(); ; line = out.readLine()) {
            if (line == null) {
                process.destroyForcibly();
                throw new IllegalStateException(main.getSimpleName() + " exited before it was ready");
            }
            if (line.startsWith("ready")) {
                return new ChildJvm(process, addresses);
            }
            String[] parts = line.split(" ");
            addresses.put(parts[0], Long.parseUnsignedLong(parts[1], 16));
        }
    }

    public int pid() {
        return (int) process.pid();
    }

    public long address(String name) {
        return addresses.get(name);
    }

    /** Kills the child and waits until it is reaped: its pid and memory are gone. */
    public void kill() throws InterruptedException {
        process.destroyForcibly();
        process.waitFor();
    }

    @Override
    public void close() throws IOException, InterruptedException {
        process.getOutputStream().close();
        if (!process.waitFor(30, TimeUnit.SECONDS)) {
            process.destroyForcibly();
        }
    }
}
