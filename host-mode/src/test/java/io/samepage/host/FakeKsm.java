package io.samepage.host;

import io.samepage.testing.KsmSysfs;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A {@code /sys/kernel/mm/ksm} in a temporary directory, holding the files and boot values of this
 * project's kernel (Linux 6.18), and the file access {@link KernelKsm} goes through, so a test can record
 * the writes, make a file unwritable, or have the "kernel" refuse a write with an errno's message.
 */
final class FakeKsm implements KsmFiles {

    /** The files of Linux 6.18's KSM directory as a booted kernel shows them. */
    static final Map<String, String> BOOT = KsmSysfs.BOOT;

    final Path directory;
    final Path proc;
    /** Every write that reached the "kernel", as {@code name=value}, in order. */
    final List<String> writes = new ArrayList<>();
    /** Files {@link #writable} says no to. */
    final Set<String> notWritable = new HashSet<>();
    /** Files whose write fails with this exception, as a store handler's error or an open's. */
    final Map<String, IOException> failures = new HashMap<>();

    private FakeKsm(Path directory, Path proc) {
        this.directory = directory;
        this.proc = proc;
    }

    /** A KSM directory {@code root/ksm} with {@link #BOOT}'s files, and an empty {@code root/proc}. */
    static FakeKsm create(Path root) throws IOException {
        FakeKsm fake = new FakeKsm(Files.createDirectories(root.resolve("ksm")),
                Files.createDirectories(root.resolve("proc")));
        for (Map.Entry<String, String> file : BOOT.entrySet()) {
            fake.put(file.getKey(), file.getValue());
        }
        return fake;
    }

    KernelKsm ksm() {
        return new KernelKsm(directory, proc, this);
    }

    /** Sets a file as the kernel would print it. */
    void put(String name, String value) throws IOException {
        Files.writeString(directory.resolve(name), value + "\n", StandardCharsets.US_ASCII);
    }

    /** A file's text, trimmed. */
    String get(String name) throws IOException {
        return Files.readString(directory.resolve(name), StandardCharsets.US_ASCII).strip();
    }

    /** Every file's text, to compare before and after. */
    Map<String, String> snapshot() throws IOException {
        Map<String, String> files = new LinkedHashMap<>();
        try (var listing = Files.list(directory)) {
            for (Path file : listing.sorted().toList()) {
                files.put(file.getFileName().toString(), Files.readString(file));
            }
        }
        return files;
    }

    @Override
    public String read(Path file) throws IOException {
        return KsmFiles.DIRECT.read(file);
    }

    /** Stores the value as the kernel shows it afterwards: {@code advisor_mode} as a choice list. */
    @Override
    public void write(Path file, String value) throws IOException {
        String name = file.getFileName().toString();
        IOException failure = failures.get(name);
        if (failure != null) {
            throw failure;
        }
        writes.add(name + "=" + value);
        if (name.equals("advisor_mode")) {
            put(name, value.equals("none") ? "[none] scan-time" : "none [scan-time]");
        } else {
            KsmFiles.DIRECT.write(file, value + "\n");
        }
    }

    @Override
    public boolean writable(Path file) {
        return !notWritable.contains(file.getFileName().toString());
    }
}
