package io.samepage.daemon;

import io.samepage.testing.AllocationFaultLoader;
import io.samepage.testing.AllocationFaults;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.function.LongFunction;
import java.util.function.LongSupplier;

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
final class CountersFileAllocationScenario implements LongFunction<String>, LongSupplier {

    private static final long PID = ProcessHandle.current().pid();
    private static final long START = 1_000;
    private static final int COUNTERS = CountersFile.COUNTER_NAMES.size();

    private final Path dir;
    private final Path path;
    private long allocations;

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

    @Override
    public long getAsLong() {
        return allocations;
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
    public String apply(long failAt) {
        String where = "k=" + failAt;
        try {
            CountersFileReader.Snapshot before = CountersFileReader.read(path);
            List<String> mappingsBefore = DaemonLeftovers.mappingsUnder(dir);
            Throwable thrown = null;
            CountersFile file = null;
            boolean deleted = false;
            boolean closed = false;
            AllocationFaults.failAt(failAt);
            try {
                file = CountersFile.create(path, PID, START);
                file.update(values(1), 1);
                Files.delete(path);
                deleted = true;
                file.update(values(2), 2);
                file.update(values(3), 3);
                file.close();
                closed = true;
            } catch (Throwable t) {     // an OutOfMemoryError too: this run is over, the next one is not
                thrown = t;
            }
            allocations = AllocationFaults.count();
            AllocationFaults.disarm();
            where += failAt > 0 ? " at " + AllocationFaults.injectedAt() : "";
            List<String> findings = new ArrayList<>();
            if (thrown != null && (!(thrown instanceof OutOfMemoryError)
                    || !thrown.getMessage().startsWith(AllocationFaults.MESSAGE_PREFIX))) {
                findings.add(where + ": threw " + thrown + " instead of the OutOfMemoryError");
            }
            String state = thrown == null ? "closed" : "failed";
            if (Files.exists(path)) {
                String whole = whole(CountersFileReader.read(path), before);
                if (whole != null) {
                    findings.add(where + ": " + state + ", and the path reads " + whole);
                }
            } else if (!deleted || thrown == null) {
                findings.add(where + ": " + state + ", and the path holds no counters file");
            }
            try {
                if (file == null) {
                    file = CountersFile.create(path, PID, START);
                }
                if (!closed) {
                    file.update(values(4), 4);
                    CountersFileReader.Snapshot next = CountersFileReader.read(path);
                    if (!next.running() || next.heartbeatMillis() != 4 || !Arrays.equals(next.values(), values(4))) {
                        findings.add(where + ": " + state + ", and the next update reads " + describe(next));
                    }
                    file.close();
                }
            } catch (RuntimeException | Error e) {
                findings.add(where + ": " + state + ", and the next publish threw " + e);
            }
            List<String> mappings = new ArrayList<>(DaemonLeftovers.mappingsUnder(dir));
            mappings.removeAll(mappingsBefore);
            if (!mappings.isEmpty()) {
                findings.add(where + ": " + state + ", and once closed, mappings are left: " + mappings);
            }
            Set<String> files = DaemonLeftovers.files(dir);
            files.removeAll(Set.of("counters", ".counters.lock"));
            if (!files.isEmpty()) {
                findings.add(where + ": " + state + ", and once closed, files are left beside it: " + files);
            }
            return String.join("\n", findings);
        } catch (Throwable t) {
            return where + ": the checks threw " + t;
        } finally {
            AllocationFaults.disarm();
        }
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
