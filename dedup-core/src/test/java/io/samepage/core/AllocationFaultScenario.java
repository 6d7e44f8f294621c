package io.samepage.core;

import io.samepage.testing.AllocationFaultLoader;
import io.samepage.testing.AllocationFaults;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

/**
 * An engine driven through the steps of one shape ({@link AllocationFaultShapes}) with its k-th
 * allocation failing, for {@link AllocationFaultTest}, which loads this class through an
 * {@link AllocationFaultLoader} so that it drives the rewritten engine.
 *
 * <p>The step where the injected {@link OutOfMemoryError} comes out (caught here: JUnit treats it as
 * fatal) must have changed nothing or everything the guests and the engine show: the domains and guests,
 * every byte each guest reads, {@link EngineInvariants}, the page ids taken, only the ids of the guests
 * live or waiting for their release ({@link PageIdLedger}), and the host's view of a mapped guest. A step
 * found undone is done again, which must work. After the last step every guest must read what it was
 * written, no write may reach a page other than its own, a scan until stable must merge as much as in
 * the run that failed nothing, and once every guest is destroyed only the zero frames may be in use,
 * every page id must be free again, whichever guest it was given to, and every name usable again.
 *
 * <p>{@link #apply} returns the findings of one run, one line each ("" for none); {@link #getAsLong} the
 * allocations the steps of the last run passed. Not thread safe.
 */
final class AllocationFaultScenario extends FaultScenario {

    /** A step: what it does to the engine, and what it does to what the engine must show. */
    record Step(String name, EngineStep run, Consumer<Model> expect) {
    }

    @FunctionalInterface
    interface EngineStep {
        void run(World world);
    }

    /** What the engine must show: its domains, and each live guest's bytes. */
    static final class Model {
        final List<String> domains = new ArrayList<>();
        final Map<String, byte[]> guests = new LinkedHashMap<>();

        Model copy() {
            Model copy = new Model();
            copy.domains.addAll(domains);
            guests.forEach((name, bytes) -> copy.guests.put(name, bytes.clone()));
            return copy;
        }
    }

    /** The engine and the handles the steps hold on it. */
    static final class World {
        final EngineContext context;
        final DedupEngine engine;
        /** The scanner hashes with {@link WeakHashers.Few}. */
        final boolean weakHash;
        final Map<String, MergeDomain> domains = new LinkedHashMap<>();
        final Map<String, Guest> guests = new LinkedHashMap<>();
        final Map<String, RecordingMapping> mappings = new LinkedHashMap<>();
        /** Each guest's first page id and page count, destroyed guests' too. */
        final Map<String, int[]> pageIds = new LinkedHashMap<>();
        PageInstaller installer;

        World(boolean crowded, int scanThreads) {
            weakHash = crowded;
            context = new EngineContext().poolBytes(8L << 20).hashSeed(11).warmFrames(4);
            context.knobs().smartScan(false).scanThreads(scanThreads).useZeroPages(!crowded).maxPageSharing(crowded ? 2 : 3);
            if (crowded) {
                context.customHasher(new WeakHashers.Few(256));
            }
            engine = DedupEngine.create(context.conclude());
        }

        /**
         * {@link EngineInvariants}; stable frames' hashes are checked again only with the engine's own hash:
         * installed frames are filed under it, not under a test's weak hasher.
         */
        void assertInvariants(String where) {
            if (!weakHash) {
                EngineInvariants.assertConsistentWithHasherOf(context, engine, where);
            } else {
                EngineInvariants.assertConsistent(engine, null, where);
            }
        }

        Guest guest(String name) {
            return guests.get(name);
        }

        /** The handles as the engine has them, whether or not the step that failed made them. */
        void resync() {
            domains.clear();
            engine.domains().forEach(d -> domains.put(d.name(), d));
            guests.clear();
            engine.guests().forEach(this::add);
        }

        void add(Guest guest) {
            guests.put(guest.name(), guest);
            pageIds.put(guest.name(), new int[] {guest.table().basePageId(), guest.pageCount()});
        }
    }

    private final boolean crowded;
    /** The scanner's threads: 2 for {@code "threads"}, else 1. */
    private final int scanThreads;
    /** Its last step closes the engine: then the checks are that close, called again, finished. */
    private final boolean closing;
    private final List<Step> steps;
    private long[] cleanOutcome;

    /**
     * @param shape {@code "life"}, {@code "crowded"} or {@code "closing"} ({@link AllocationFaultShapes}), or
     *              {@code "threads"}: the life with {@code scan_threads} 2, where which allocation is the k-th
     *              depends on how the scanner's threads interleave; after {@code "closing"}, every guest must
     *              be destroyed, every mapping down and the pool's memory released, by its close or, where
     *              that threw, by a second
     */
    AllocationFaultScenario(String shape) {
        crowded = shape.equals("crowded");
        closing = shape.equals("closing");
        scanThreads = shape.equals("threads") ? 2 : 1;
        steps = switch (shape) {
            case "life", "threads" -> AllocationFaultShapes.life();
            case "crowded" -> AllocationFaultShapes.crowded();
            case "closing" -> AllocationFaultShapes.closing();
            default -> throw new IllegalArgumentException("no shape '" + shape + "': life, threads, crowded or closing");
        };
    }

    /** Runs the whole life failing the {@code failAt}-th allocation of its steps (0: none); its findings. */
    @Override
    public String apply(long failAt) {
        List<String> findings = new ArrayList<>();
        World world = new World(crowded, scanThreads);
        try {
            run(world, failAt, findings);
        } catch (Throwable t) {        // an OutOfMemoryError too: this run is over, the next one is not
            findings.add("k=" + failAt + " " + AllocationFaults.injectedAt() + ": the checks threw " + describe(t));
        } finally {
            AllocationFaults.disarm();
            world.engine.close();
        }
        return String.join("\n", findings);
    }

    private void run(World world, long failAt, List<String> findings) {
        Model model = new Model();
        boolean faulted = false;
        AllocationFaults.failAt(failAt);
        for (Step step : steps) {
            Throwable thrown = null;
            try {
                step.run.run(world);
            } catch (Throwable t) {
                thrown = t;
            }
            String site = AllocationFaults.injectedAt();
            if (faulted || site == null) {
                if (thrown != null) {
                    findings.add("k=" + failAt + " " + (site == null ? "" : "after " + site + ", ") + "step '"
                            + step.name + "' threw " + describe(thrown));
                    return;
                }
                step.expect.accept(model);
                continue;
            }
            faulted = true;
            if (step.name.equals(AllocationFaultShapes.CLOSE)) {
                continue;       // nothing to read in a closed engine: checkClosed checks what the close left
            }
            Model after = model.copy();
            step.expect.accept(after);
            String where = "k=" + failAt + " at " + site + " in step '" + step.name + "'";
            if (thrown != null && !injected(thrown)) {
                findings.add(where + ": threw " + describe(thrown) + " instead of the OutOfMemoryError");
            }
            world.resync();
            String asBefore = differences(world, model);
            String asAfter = differences(world, after);
            if (asBefore != null && asAfter != null) {
                findings.add(where + ": " + (thrown == null ? "returned" : "threw") + " half done: against before, "
                        + asBefore + "; against after, " + asAfter);
                return;
            }
            checkStructure(world, where, findings);
            if (asAfter != null) {
                try {
                    step.run.run(world);
                } catch (Throwable t) {
                    findings.add(where + ": done again, it threw " + describe(t));
                    return;
                }
            }
            model = after;
        }
        String where = endArmed(failAt);
        if (closing) {
            checkClosed(world, where + ", closed", findings);
        } else {
            checkWhole(world, model, failAt, where + ", at the end", findings);
        }
    }

    /** A close that threw is called again, as its caller would; then every guest and mapping is down, and the pool. */
    private static void checkClosed(World world, String where, List<String> findings) {
        world.engine.close();
        world.guests.forEach((name, guest) -> {
            if (!guest.isDestroyed()) {
                findings.add(where + ": guest " + name + " is not destroyed");
            }
        });
        world.mappings.forEach((name, mapping) -> {
            if (!mapping.unmapped) {
                findings.add(where + ": guest " + name + "'s mapping is still up");
            }
        });
        if (!world.engine.guests().isEmpty()) {
            findings.add(where + ": the engine still lists " + world.engine.guests());
        }
        if (world.engine.pool().memory().scope().isAlive()) {
            findings.add(where + ": the pool's memory is still mapped");
        }
    }

    /** The engine's structure, its page ids and the host's view of the mapped guest. */
    private static void checkStructure(World world, String where, List<String> findings) {
        try {
            world.assertInvariants(where);
            world.mappings.forEach((name, mapping) -> {
                Guest guest = world.guest(name);
                if (guest != null) {
                    mapping.assertAgreesWith(guest, where);
                } else if (!mapping.unmapped) {
                    throw new AssertionError(where + ": guest " + name + " is not there, but its mapping is still up");
                }
            });
        } catch (AssertionError e) {
            findings.add(e.getMessage());
        }
        String ids = PageIdLedger.differences(world.engine);
        if (ids != null) {
            findings.add(where + ": " + ids);
        }
    }

    /**
     * Writes a marker to each page, and checks it and every page that mapped its frame before; then
     * writes every page's bytes back. A page left private on a shared frame would be written in place.
     */
    private static void writesStayInTheirPage(World world, String where) {
        List<Guest> guests = List.copyOf(world.guests.values());
        Map<Guest, byte[]> saved = new LinkedHashMap<>();
        Map<Integer, List<int[]>> mappers = new HashMap<>();       // frame to the pages that map it
        for (int g = 0; g < guests.size(); g++) {
            Guest guest = guests.get(g);
            saved.put(guest, read(guest, 0, guest.pageCount()));
            for (int p = 0; p < guest.pageCount(); p++) {
                mappers.computeIfAbsent(guest.frameAt(p), f -> new ArrayList<>()).add(new int[] {g, p});
            }
        }
        int marker = 0x4000;
        for (int g = 0; g < guests.size(); g++) {
            Guest writer = guests.get(g);
            for (int page = 0; page < writer.pageCount(); page++) {
                int frame = writer.frameAt(page);
                List<int[]> sharers = mappers.get(frame);
                int self = g;
                int own = page;
                sharers.removeIf(at -> at[0] == self && at[1] == own);
                List<byte[]> expected = new ArrayList<>();
                for (int[] at : sharers) {
                    expected.add(read(guests.get(at[0]), at[1], 1));
                }
                byte[] written = AllocationFaultShapes.content(marker++);
                writer.write((long) page * PAGE, written, 0, PAGE);
                if (!Arrays.equals(written, read(writer, page, 1))) {
                    throw new AssertionError(where + ": " + writer.name() + " page " + page + " does not read what was written");
                }
                for (int i = 0; i < sharers.size(); i++) {
                    Guest reader = guests.get(sharers.get(i)[0]);
                    if (!Arrays.equals(expected.get(i), read(reader, sharers.get(i)[1], 1))) {
                        throw new AssertionError(where + ": a write to " + writer.name() + " page " + page
                                + " changed what " + reader.name() + " page " + sharers.get(i)[1] + " reads (frame " + frame + ")");
                    }
                }
                mappers.computeIfAbsent(writer.frameAt(page), f -> new ArrayList<>()).add(new int[] {g, page});
            }
        }
        saved.forEach((guest, bytes) -> guest.write(0, bytes, 0, bytes.length));
    }

    /**
     * After the last step: every guest reads its bytes; merged until stable, the engine shares as much as
     * in the run that failed nothing; once every guest is destroyed, only the zero frames are in use, no
     * page id of theirs is taken, and {@link PageIdLedger} finds no other taken: ids kept by a creation
     * that failed are in none of the world's lists.
     */
    private void checkWhole(World world, Model model, long failAt, String where, List<String> findings) {
        world.resync();
        String differs = differences(world, model);
        if (differs != null) {
            findings.add(where + ": " + differs);
            return;
        }
        checkStructure(world, where, findings);
        try {
            writesStayInTheirPage(world, where);
        } catch (AssertionError e) {
            findings.add(e.getMessage());
            return;
        }
        world.engine.scanner().scanUntilStable(16);
        world.assertInvariants(where + ", merged until stable");
        EngineCounters c = world.engine.counters();
        long[] outcome = {c.pagesShared(), c.pagesSharing(), c.framesInUse()};
        if (failAt == 0) {
            cleanOutcome = outcome;
        } else if (cleanOutcome != null && !Arrays.equals(cleanOutcome, outcome)) {
            findings.add(where + ": merged until stable, [pages_shared, pages_sharing, frames in use] are "
                    + Arrays.toString(outcome) + ", not " + Arrays.toString(cleanOutcome) + " as without the failure");
        }
        for (Guest guest : List.copyOf(world.guests.values())) {
            guest.destroy();
        }
        world.engine.knobs().run(ScanKnobs.RUN_UNMERGE);
        world.engine.scanner().doWork();        // empties the unstable indexes: every destroyed guest's ids go back
        if (world.engine.framesInUse() != world.engine.domains().size()) {
            findings.add(where + ": with every guest destroyed " + world.engine.framesInUse() + " frames are in use, not "
                    + world.engine.domains().size() + " zero frames");
        }
        world.pageIds.forEach((name, ids) -> {
            for (int id = ids[0]; id < ids[0] + ids[1]; id++) {
                if (world.engine.pageOwner(id) != null) {
                    findings.add(where + ": with every guest destroyed and the indexes empty, page id " + id + " of "
                            + name + " is still taken");
                    return;
                }
            }
        });
        String ids = PageIdLedger.differences(world.engine);
        if (ids != null) {
            findings.add(where + ": with every guest destroyed and the indexes empty, " + ids);
        }
        for (String name : world.pageIds.keySet()) {
            try {
                world.engine.createGuest(world.domains.get("a"), name, PAGE).destroy();
            } catch (DedupException e) {
                findings.add(where + ": with every guest destroyed, a guest named " + name + " cannot be made: " + e.getMessage());
            }
        }
    }

    /** How the engine differs from {@code model} (domains, guests, bytes), or null if it does not. */
    private static String differences(World world, Model model) {
        List<String> domains = world.engine.domains().stream().map(MergeDomain::name).toList();
        if (!domains.equals(model.domains)) {
            return "domains " + domains + ", not " + model.domains;
        }
        List<String> names = world.engine.guests().stream().map(Guest::name).sorted().toList();
        List<String> expected = model.guests.keySet().stream().sorted().toList();
        if (!names.equals(expected)) {
            return "guests " + names + ", not " + expected;
        }
        for (Map.Entry<String, byte[]> e : model.guests.entrySet()) {
            Guest guest = world.guest(e.getKey());
            if (guest.isDestroyed()) {
                return "guest " + guest.name() + " is destroyed, yet the engine lists it";
            }
            byte[] bytes = read(guest, 0, guest.pageCount());
            int at = Arrays.mismatch(bytes, e.getValue());
            if (at >= 0) {
                return e.getKey() + " reads 0x" + Integer.toHexString(bytes[at] & 0xff) + " at 0x" + Integer.toHexString(at)
                        + ", not 0x" + Integer.toHexString(e.getValue()[at] & 0xff);
            }
        }
        return null;
    }

    private static boolean injected(Throwable t) {
        for (Throwable c = t; c != null; c = c.getCause()) {
            if (c instanceof OutOfMemoryError && String.valueOf(c.getMessage()).startsWith(AllocationFaults.MESSAGE_PREFIX)) {
                return true;
            }
        }
        return false;
    }

    private static String describe(Throwable t) {
        StackTraceElement[] trace = t.getStackTrace();
        return t + (trace.length > 0 ? " at " + trace[0] : "") + (t.getCause() != null ? ", caused by " + t.getCause() : "");
    }

    static byte[] read(Guest guest, int page, int pages) {
        byte[] bytes = new byte[pages * PAGE];
        guest.read((long) page * PAGE, bytes, 0, bytes.length);
        return bytes;
    }
}
