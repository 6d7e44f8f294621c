package io.samepage.host;

import io.samepage.testing.AllocationFaultLoader;
import io.samepage.testing.ArmedScenario;
import io.samepage.testing.ReadTarget;
import io.samepage.testing.SleepingProcess;
import java.util.ArrayList;
import java.util.List;

/**
 * A {@code sleep} this starts, read whole through {@link ProcessMemory} with the k-th allocation failing,
 * for {@link HostAllocationFaultTest}, which loads this class through an {@link AllocationFaultLoader}:
 * {@link ProcessMemory#open}, then for each private readable mapping a census, {@link ProcessMemory#checkReadable}
 * and a copy of its resident pages, then the close.
 *
 * <p>Whatever fails: an open that throws leaves no descriptor open on the target's {@code /proc/PID}
 * files; an instance it returned is whole, so the reads it had left, done again unarmed, read the pages a
 * run that fails nothing reads, and its close leaves no descriptor either (as a caller's
 * try-with-resources would close it); and the target is as it was, the same mappings with the same flags.
 *
 * <p>{@link #apply} returns the findings of one run, one line each ("" for none); {@link #getAsLong} the
 * allocations the last run passed; {@link #close} ends the target. Not thread safe.
 */
final class ProcessMemoryAllocationScenario extends ArmedScenario implements AutoCloseable {

    private final Process target;
    private final List<String> layout;
    private final long pagesRead;
    /** The run's instance, once open. */
    private ProcessMemory memory;
    /** Whether the run's steps had come to the close. */
    private boolean closing;

    ProcessMemoryAllocationScenario() throws Exception {
        target = SleepingProcess.start(3600);
        try {
            layout = ReadTarget.memoryLayout(target.pid());
            try (ProcessMemory memory = ProcessMemory.open((int) target.pid())) {
                pagesRead = readAll(memory);
            }
            if (pagesRead == 0) {
                throw new IllegalStateException("sleep (pid " + target.pid() + ") has no resident page to read");
            }
        } catch (Exception | Error e) {
            target.destroyForcibly();
            throw e;
        }
    }

    /** The pages of every private readable mapping read, after a census and a check of each. */
    private static long readAll(ProcessMemory memory) {
        long read = 0;
        for (MemoryRegion region : memory.regions()) {
            if (region.readable() && region.isPrivate() && !region.kernelSpecial()) {
                memory.census(region, false);
                memory.checkReadable();
                read += memory.copyResident(region, false, (address, pages) -> { }).pagesRead();
            }
        }
        return read;
    }

    @Override
    protected String run(long failAt) throws Exception {
        memory = null;      // the last run's, unreachable before the descriptors settle (ReadTarget says why)
        closing = false;
        List<String> before = ReadTarget.settledDescriptorsOn(target.pid());
        Throwable thrown = armed(() -> {
            memory = ProcessMemory.open((int) target.pid());
            readAll(memory);
            closing = true;
            memory.close();
        });
        List<String> findings = new ArrayList<>();
        expectInjected(thrown, where(), findings);
        String state = memory == null ? "its open failed" : thrown == null ? "read and closed"
                : closing ? "its close failed" : "its read failed";
        if (closing && thrown != null) {
            memory.close();
        } else if (memory != null && thrown != null) {
            try {
                long again = readAll(memory);
                if (again != pagesRead) {
                    findings.add(where() + ": " + state + ", and read again it read " + again + " pages, not "
                            + pagesRead);
                }
            } catch (RuntimeException e) {
                findings.add(where() + ": " + state + ", and read again it threw " + e);
            }
            memory.close();
        }
        List<String> open = ReadTarget.opened(before, ReadTarget.descriptorsOn(target.pid()));
        if (!open.isEmpty()) {
            findings.add(where() + ": " + state + ", and descriptors are left open on the target: " + open);
        }
        List<String> now = ReadTarget.memoryLayout(target.pid());
        if (!now.equals(layout)) {
            List<String> changed = new ArrayList<>(now);
            changed.removeAll(layout);
            findings.add(where() + ": " + state + ", and the target's mappings or their flags changed: " + changed);
        }
        return String.join("\n", findings);
    }

    @Override
    public void close() throws InterruptedException {
        target.destroyForcibly();
        target.waitFor();
    }
}
