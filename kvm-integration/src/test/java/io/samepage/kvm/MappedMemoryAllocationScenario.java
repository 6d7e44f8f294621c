package io.samepage.kvm;

import io.samepage.core.DedupEngine;
import io.samepage.core.EngineContext;
import io.samepage.core.EngineInvariants;
import io.samepage.core.Guest;
import io.samepage.core.MergeDomain;
import io.samepage.testing.AllocationFaultLoader;
import io.samepage.testing.AllocationFaults;
import io.samepage.testing.ArmedScenario;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

/**
 * The life of two mapped guests on an engine whose frames are a memfd, without KVM, with the k-th
 * allocation failing, for {@link KvmAllocationFaultTest}, which loads this class through an
 * {@link AllocationFaultLoader}: the engine is made on {@link MappedGuest#memfdBacking} (a memfd and its
 * frame window, {@link MemfdFrames}); two {@link MappedGuest}s are made (each a reserved range of
 * address space, one mapping of a run of frames, {@link MappedGuestMemory}); both are written whole
 * with one image, and scans merge them (each merge write-protects, then remaps read-only onto the
 * shared frame); then a write, a fill and a fault's break (copy-on-write breaks, remapped writable),
 * another scan, a fill with zeros (frames punched out of the memfd), the two destroys and the engine's
 * close.
 *
 * <p>Every step either returns or throws the injected {@link OutOfMemoryError}; the steps after one that
 * threw are not made. Then: each live guest reads, through the engine, what was written (the failed
 * step's guest: as before the step or as after it, whole), and reads the same through its own mappings
 * (the kernel maps the frame the engine's page table names); the engine holds the live guests and no
 * other; {@link EngineInvariants} hold; the next write to each guest and the next guest work; and once
 * every guest is destroyed and the engine closed (what threw, again) no descriptor of the memfd is open
 * and nothing of it is mapped ({@code /proc/self/fd}, {@code /proc/self/maps}), nor left mapped by a
 * guest after its destroy, and no guest's range of address space is still reserved (the reservations
 * are made through a {@link GuestRangeCalls} that notes where). A memfd of its own each run (its name
 * has the run's number) tells a run's leaks from an earlier run's.
 *
 * <p>{@link #apply} returns the findings of one run, one line each ("" for none); {@link #getAsLong} the
 * allocations the last run's steps passed ({@link ArmedScenario}). Not thread safe.
 */
final class MappedMemoryAllocationScenario extends ArmedScenario {

    private static final int PAGE = MappedGuestMemory.PAGE_BYTES;
    /** Pages per guest. */
    private static final int PAGES = 16;
    private static final int POOL_FRAMES = 96;

    private final byte[] image = MappedEngineTest.image(PAGES, 11);
    /** Names this scenario's memfds: its own, as each test loads a scenario of its own and counts runs from 1. */
    private final String prefix = "allocfault-" + ProcessHandle.current().pid() + "-"
            + Integer.toHexString(System.identityHashCode(this)) + "-";
    /** Every allocation from the k-th on fails, not the k-th alone. */
    private final boolean heapStaysFull;
    private int runs;

    /**
     * @param shape {@code "one"}: the k-th allocation fails; {@code "full-heap"}: every one from the k-th on
     *              fails until the steps end (the heap stays full), so a clean-up that allocates fails too
     */
    MappedMemoryAllocationScenario(String shape) {
        heapStaysFull = shape(shape, "one", "full-heap") == 1;
    }

    @Override
    protected String run(long failAt) {
        Run run = new Run(prefix + ++runs);
        try {
            run.run(failAt);
        } finally {
            run.closeAll();     // where the checks threw, what it finds goes unsaid: that throw is the run's finding
        }
        return String.join("\n", run.findings);
    }

    /** Ends the steps once one threw; made once, with no stack trace, so that throwing it allocates nothing. */
    private static final RuntimeException STOP = new RuntimeException("a step threw", null, false, false) {
    };

    /** One run's engine, guests, what each must read, and findings. */
    private final class Run {
        final String name;
        /** The kernel's calls, with each guest range's reservation noted. */
        final Reservations calls = new Reservations();
        final List<String> findings = new ArrayList<>();
        final Map<String, MappedGuest> guests = new LinkedHashMap<>();
        final Map<String, byte[]> written = new LinkedHashMap<>();
        EngineContext context;
        DedupEngine engine;
        MergeDomain domain;
        boolean engineClosed;
        String where;
        /** The step that threw, the guest it was on (null for none), what it would have made that guest read, and what it threw. */
        String failedStep;
        String failedOn;
        byte[] failedAfter;
        Throwable thrown;

        Run(String name) {
            this.name = name;
        }

        void run(long failAt) {
            Throwable escaped = armed(() -> {
                if (heapStaysFull) {
                    AllocationFaults.failFrom(failAt);      // re-armed before the first allocation: from the k-th on
                }
                steps();
            });
            where = where() + (failedStep == null ? "" : " (" + failedStep + ")");
            if (escaped != STOP) {
                expectInjected(escaped, where, findings);   // a step's throw is kept in thrown, and ends them with STOP
            }
            expectInjected(thrown, where, findings);
            if (engine == null) {
                String left = memfdLeft();
                if (left != null) {
                    findings.add(where + ": the engine was not made, but " + left);
                }
                engine = newEngine();       // the next engine, to check that it goes well
                domain = engine.createDomain("d");
            } else if (!engineClosed && !"closing the engine".equals(failedStep)) {
                MappedGuest undone = failedStep != null && failedStep.startsWith("destroying") ? guests.get(failedOn) : null;
                if (undone != null && undone.guest().isDestroyed()) {
                    guests.remove(failedOn);       // it was destroyed, and what came after threw
                    written.remove(failedOn);
                }
                checkGuests();
                try {
                    EngineInvariants.assertConsistentWithHasherOf(context, engine, where);
                } catch (AssertionError e) {
                    findings.add(e.getMessage());
                }
            }
            if (findings.isEmpty() && !engineClosed && !"closing the engine".equals(failedStep)) {
                if (domain == null) {
                    domain = engine.createDomain("d");
                }
                next();
            }
        }

        private void steps() {
            step(null, "making the engine", () -> engine = newEngine());
            step(null, "making a domain", () -> domain = engine.createDomain("d"));
            create("vm0");
            create("vm1");
            write("vm0", "writing vm0 whole", 0, image);
            write("vm1", "writing vm1 whole", 0, image);
            step(null, "a full scan", () -> engine.scanner().scanFullPass());
            step(null, "a full scan that merges", () -> engine.scanner().scanFullPass());
            write("vm0", "a write into a merged page", 3L * PAGE + 10, new byte[] {1, 2, 3, 4});
            fill("vm1", "a fill of three merged pages", 5L * PAGE, 3L * PAGE, (byte) 0x44);
            change("vm0", "a fault's break of a merged page", () -> guests.get("vm0").breakSharing(7L * PAGE),
                    bytes -> { });
            step(null, "a third full scan", () -> engine.scanner().scanFullPass());
            fill("vm1", "a fill with zeros of every page", 0, (long) PAGES * PAGE, (byte) 0);
            destroy("vm0");
            destroy("vm1");
            try {
                engine.close();
                engineClosed = true;
            } catch (Throwable e) {
                failedStep = "closing the engine";
                thrown = e;
                throw STOP;
            }
        }

        private DedupEngine newEngine() {
            context = new EngineContext().poolBytes((long) POOL_FRAMES * PAGE).warmFrames(0).hashSeed(7)
                    .frameBacking(MappedGuest.memfdBacking(name, MappingBudget.host(), calls));
            context.knobs().smartScan(false);
            return DedupEngine.create(context.conclude());
        }

        private void create(String guest) {
            step(null, "making " + guest, () -> guests.put(guest,
                    MappedGuest.create(engine, domain, guest, (long) PAGES * PAGE)));
            written.put(guest, new byte[PAGES * PAGE]);
        }

        private void destroy(String guest) {
            step(guest, "destroying " + guest, () -> guests.get(guest).destroy());
            guests.remove(guest);
            written.remove(guest);
        }

        private void write(String guest, String what, long address, byte[] bytes) {
            change(guest, what, () -> guests.get(guest).guest().write(address, bytes, 0, bytes.length),
                    model -> System.arraycopy(bytes, 0, model, (int) address, bytes.length));
        }

        private void fill(String guest, String what, long address, long length, byte value) {
            change(guest, what, () -> guests.get(guest).guest().fill(address, length, value),
                    model -> Arrays.fill(model, (int) address, (int) (address + length), value));
        }

        /** {@code action} on {@code guest}, whose model {@code expect} changes as the action must. */
        private void change(String guest, String what, Runnable action, Consumer<byte[]> expect) {
            byte[] after = written.get(guest).clone();
            expect.accept(after);
            try {
                action.run();
            } catch (Throwable e) {
                failedStep = what;
                failedOn = guest;
                failedAfter = after;
                thrown = e;
                throw STOP;
            }
            written.put(guest, after);
        }

        private void step(String guest, String what, Runnable action) {
            try {
                action.run();
            } catch (Throwable e) {
                failedStep = what;
                failedOn = guest;
                thrown = e;
                throw STOP;
            }
        }

        /** Each live guest reads what was written, through the engine and through its mappings alike; the engine holds no other guest. */
        private void checkGuests() {
            for (Map.Entry<String, MappedGuest> e : guests.entrySet()) {
                String guest = e.getKey();
                byte[] engineRead = MappedEngineTest.readAll(e.getValue().guest());
                byte[] expected = written.get(guest);
                int at = Arrays.mismatch(engineRead, expected);
                if (at >= 0 && !(guest.equals(failedOn) && Arrays.equals(engineRead, failedAfter))) {
                    findings.add(where + ": " + guest + " reads " + engineRead[at] + " at byte " + at + " (page " + at / PAGE
                            + ") through the engine, not the " + expected[at] + " written there"
                            + (guest.equals(failedOn) ? ", neither before nor after the step" : ""));
                }
                try {
                    int apart = Arrays.mismatch(MappedEngineTest.readAll(e.getValue().memory()), engineRead);
                    if (apart >= 0) {
                        findings.add(where + ": " + guest + "'s mappings read otherwise than the engine at byte " + apart
                                + " (page " + apart / PAGE + "): the kernel maps another frame than the page table names");
                    }
                } catch (IllegalStateException refused) {
                    findings.add(where + ": " + guest + "'s mappings cannot be read: " + refused.getMessage());
                }
            }
            List<String> live = engine.guests().stream().map(Guest::name).toList();
            if (!live.equals(List.copyOf(guests.keySet()))) {
                findings.add(where + ": the engine holds guests " + live + ", not " + guests.keySet());
            }
        }

        /** The next write to each guest and the next guest; then every destroy, checked to leave no mapping of a guest. */
        private void next() {
            byte[] page = new byte[PAGE];
            Arrays.fill(page, (byte) 0x3c);
            create("next");
            for (Map.Entry<String, MappedGuest> e : guests.entrySet()) {
                e.getValue().guest().write(PAGE, page, 0, PAGE);
                System.arraycopy(page, 0, written.get(e.getKey()), PAGE, PAGE);
            }
            for (Map.Entry<String, MappedGuest> e : guests.entrySet()) {
                byte[] read = MappedEngineTest.readAll(e.getValue().guest());
                if (!Arrays.equals(read, written.get(e.getKey()))
                        || !Arrays.equals(read, MappedEngineTest.readAll(e.getValue().memory()))) {
                    findings.add(where + ": after the next write, " + e.getKey() + " reads otherwise than written, "
                            + "through the engine or its mappings");
                }
            }
            for (MappedGuest guest : List.copyOf(guests.values())) {
                guest.destroy();
            }
            guests.clear();
            long mapped = mappings();
            if (mapped != 1) {
                findings.add(where + ": with every guest destroyed, " + mapped + " mappings of the memfd are left, not "
                        + "its frame window alone");
            }
            EngineInvariants.assertConsistentWithHasherOf(context, engine, where + ", after the next guest");
        }

        /** Destroys what is left and closes the engine (again, if its close threw), then checks that nothing of the memfd is left. */
        void closeAll() {
            try {
                for (MappedGuest guest : guests.values()) {
                    guest.destroy();
                }
                if (engine != null) {
                    engine.close();
                }
            } catch (Throwable t) {
                findings.add(where + ": destroying what was left, or closing the engine, threw " + describe(t));
            }
            String left = memfdLeft();
            if (left != null) {
                findings.add(where + ": once the engine is closed, " + left);
            }
            List<String> reserved = calls.stillReserved();
            if (!reserved.isEmpty()) {
                findings.add(where + ": once the engine is closed, guest ranges are still reserved at " + reserved);
            }
        }

        /** Null if no descriptor of this run's memfd is open and nothing of it is mapped; else what is. */
        private String memfdLeft() {
            long fds = descriptors();
            long mapped = mappings();
            return fds == 0 && mapped == 0 ? null
                    : fds + " descriptors of memfd " + name + " are open and " + mapped + " mappings of it are left";
        }

        private long mappings() {
            try (var lines = Files.lines(Path.of("/proc/self/maps"))) {
                String memfd = "/memfd:" + name + " ";
                return lines.filter(line -> (line + " ").contains(memfd)).count();
            } catch (IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        }

        private long descriptors() {
            long open = 0;
            String memfd = "/memfd:" + name + " ";
            try (DirectoryStream<Path> fds = Files.newDirectoryStream(Path.of("/proc/self/fd"))) {
                for (Path fd : fds) {
                    try {
                        if ((Files.readSymbolicLink(fd) + " ").contains(memfd)) {
                            open++;
                        }
                    } catch (IOException closedMeanwhile) {
                        // the directory stream's own descriptor, or one closed since the listing
                    }
                }
            } catch (IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
            return open;
        }
    }

    /**
     * The kernel's calls ({@link GuestRangeCalls#KERNEL}), noting the address range of each reservation, so
     * that one left mapped can be found even where the kernel merged it with a neighbour.
     */
    private static final class Reservations implements GuestRangeCalls {
        private final List<long[]> ranges = new ArrayList<>();

        @Override
        public MemorySegment reserve(long bytes, Arena arena) {
            MemorySegment range = KERNEL.reserve(bytes, arena);
            if (range != null) {
                ranges.add(new long[] {range.address(), range.address() + bytes});
            }
            return range;
        }

        @Override
        public int map(MemorySegment range, long offset, long length, int fd, long fileOffset, boolean writable) {
            return KERNEL.map(range, offset, length, fd, fileOffset, writable);
        }

        @Override
        public int protect(MemorySegment range, long offset, boolean writable) {
            return KERNEL.protect(range, offset, writable);
        }

        @Override
        public int adviseSmallPages(MemorySegment range, long offset, long length) {
            return KERNEL.adviseSmallPages(range, offset, length);
        }

        @Override
        public int reserveAgain(MemorySegment range, long offset, long length) {
            return KERNEL.reserveAgain(range, offset, length);
        }

        @Override
        public int reserveIfFree(MemorySegment range, long offset, long length) {
            return KERNEL.reserveIfFree(range, offset, length);
        }

        @Override
        public int unmap(MemorySegment range, long offset, long length) {
            return KERNEL.unmap(range, offset, length);
        }

        /**
         * The ranges reserved that an anonymous {@code PROT_NONE} mapping still covers part of, as
         * {@code /proc/self/maps} shows them: a reservation nothing was mapped over and nothing unmapped.
         */
        List<String> stillReserved() {
            List<String> left = new ArrayList<>();
            try (var lines = Files.lines(Path.of("/proc/self/maps"))) {
                for (String line : (Iterable<String>) lines::iterator) {
                    String[] fields = line.trim().split("\\s+");
                    if (fields.length != 5 || !fields[1].equals("---p") || !fields[4].equals("0")) {
                        continue;
                    }
                    String[] bounds = fields[0].split("-");
                    long start = Long.parseUnsignedLong(bounds[0], 16);
                    long end = Long.parseUnsignedLong(bounds[1], 16);
                    for (long[] range : ranges) {
                        if (range[0] < end && start < range[1]) {
                            left.add(Long.toHexString(range[0]) + "-" + Long.toHexString(range[1]));
                        }
                    }
                }
            } catch (IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
            return left;
        }
    }

    private static String describe(Throwable t) {
        StackTraceElement[] at = t.getStackTrace();
        return t + (at.length == 0 ? "" : " at " + at[0]) + (t.getCause() == null ? "" : " (cause " + t.getCause() + ")");
    }
}
