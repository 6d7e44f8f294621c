package io.samepage.daemon;

import io.samepage.testing.AllocationFaultLoader;
import io.samepage.testing.ArmedScenario;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;

/**
 * A counters file's life with the k-th allocation failing, for {@link DaemonAllocationFaultTest}, which
 * loads this class through an {@link AllocationFaultLoader}: created over the last run's closed file
 * ({@link CountersFile#create}: claimed, written under a temporary name, put in place), updated, deleted
 * under it and updated (so written anew), updated, closed. Whatever fails, the path then holds a whole
 * snapshot, read by {@link CountersFileReader}: the last run's closed file, or one of this run's updates
 * (missing only once this run deleted it); the next publish (an update, or a new file if creating it
 * failed) goes well and is what the path reads; and once closed, no mapping of a file in the directory is
 * left, nor any file but the counters file and its lock.
 *
 * <p>{@link #apply} returns the findings of one run, one line each ("" for none); {@link #getAsLong} the
 * allocations the last run passed. Not thread safe.
 */
final class CountersFileAllocationScenario extends ArmedScenario {

    private static final long PID = ProcessHandle.current().pid();
    private static final long START = 1_000;
    private static final int COUNTERS = CountersFile.COUNTER_NAMES.size();

    private final Path dir;
    private final Path path;
    /** The run's file, once created. */
    private CountersFile file;
    /** Whether the run's steps deleted the file under it, and whether they closed it. */
    private boolean deleted;
    private boolean closed;

    CountersFileAllocationScenario(Path dir) {
        this.dir = dir;
        this.path = dir.resolve("counters");
        // Initialized here, unarmed: an enum's constructors are rewritten, and one that failed in its
        // initializer would leave the class unusable (NoClassDefFoundError) for every later run.
        DaemonException.Kind.values();
        CountersFile first = CountersFile.create(path, PID, START);
        first.update(values(9), 9);
        first.close();
    }

    /** The values of update {@code n}: each counter its id plus 100 n. */
    private static long[] values(int n) {
        long[] values = new long[COUNTERS];
        for (int id = 0; id < COUNTERS; id++) {
            values[id] = 100L * n + id;
        }
        return values;
    }

    @Override
    protected String run(long failAt) throws Exception {
        file = null;        // the last run's is not held while this run looks at what is mapped
        deleted = false;
        closed = false;
        CountersFileReader.Snapshot before = CountersFileReader.read(path);
        List<String> mappingsBefore = DaemonLeftovers.mappingsUnder(dir);
        Throwable thrown = armed(() -> {
            file = CountersFile.create(path, PID, START);
            file.update(values(1), 1);
            Files.delete(path);
            deleted = true;
            file.update(values(2), 2);
            file.update(values(3), 3);
            file.close();
            closed = true;
        });
        List<String> findings = new ArrayList<>();
        expectInjected(thrown, where(), findings);
        String state = thrown == null ? "closed" : "failed";
        if (Files.exists(path)) {
            String whole = whole(CountersFileReader.read(path), before);
            if (whole != null) {
                findings.add(where() + ": " + state + ", and the path reads " + whole);
            }
        } else if (!deleted || thrown == null) {
            findings.add(where() + ": " + state + ", and the path holds no counters file");
        }
        try {
            if (file == null) {
                file = CountersFile.create(path, PID, START);
            }
            if (!closed) {
                file.update(values(4), 4);
                CountersFileReader.Snapshot next = CountersFileReader.read(path);
                if (!next.running() || next.heartbeatMillis() != 4 || !Arrays.equals(next.values(), values(4))) {
                    findings.add(where() + ": " + state + ", and the next update reads " + describe(next));
                }
                file.close();
            }
        } catch (RuntimeException | Error e) {
            findings.add(where() + ": " + state + ", and the next publish threw " + e);
        }
        List<String> mappings = new ArrayList<>(DaemonLeftovers.mappingsUnder(dir));
        mappings.removeAll(mappingsBefore);
        if (!mappings.isEmpty()) {
            findings.add(where() + ": " + state + ", and once closed, mappings are left: " + mappings);
        }
        Set<String> files = DaemonLeftovers.files(dir);
        files.removeAll(Set.of("counters", ".counters.lock"));
        if (!files.isEmpty()) {
            findings.add(where() + ": " + state + ", and once closed, files are left beside it: " + files);
        }
        return String.join("\n", findings);
    }

    /**
     * Null if {@code read} is a whole snapshot this run (or the last) wrote: the last run's file as it was,
     * the new file as created, or one of this run's updates, running or closed; else what it reads.
     */
    private static String whole(CountersFileReader.Snapshot read, CountersFileReader.Snapshot before) {
        if (!read.running() && read.heartbeatMillis() == before.heartbeatMillis()
                && Arrays.equals(read.values(), before.values())) {
            return null;
        }
        if (read.pid() == PID && read.startMillis() == START) {
            if (read.running() && read.heartbeatMillis() == START && Arrays.equals(read.values(), new long[COUNTERS])) {
                return null;
            }
            for (int n = 1; n <= 3; n++) {
                if (Arrays.equals(read.values(), values(n)) && (!read.running() || read.heartbeatMillis() == n)) {
                    return null;
                }
            }
        }
        return describe(read);
    }

    private static String describe(CountersFileReader.Snapshot s) {
        return "pid " + s.pid() + " start " + s.startMillis() + (s.running() ? " running" : " closed") + " heartbeat "
                + s.heartbeatMillis() + " values " + Arrays.toString(s.values());
    }
}
