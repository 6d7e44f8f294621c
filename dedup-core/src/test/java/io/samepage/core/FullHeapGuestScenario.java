package io.samepage.core;

import io.samepage.testing.AllocationFaultLoader;
import io.samepage.testing.AllocationFaults;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * A guest created, or destroyed, on a heap that stays full: every allocation from the k-th on fails
 * ({@link AllocationFaults#failFrom}), so whatever the engine does to undo a failed step runs out of heap
 * too. For {@link AllocationFaultTest}, which loads this class through an {@link AllocationFaultLoader}.
 * The engine already holds a guest, {@code old}, whose page the unstable index names.
 *
 * <p>{@code "create"} and {@code "create mapped"}: a creation of {@code vm0} (software, or mapped over a
 * {@link RecordingMapping}) is all or nothing. Either it returns the guest, listed and live, or it throws
 * the injected {@link OutOfMemoryError} and nothing of it remains: the engine lists {@code old} alone, no
 * frame more is in use, the mapping it made is down, and its page ids are free or waiting for their release
 * as a destroy leaves them ({@link PageIdLedger}). Once the heap has room again a guest named {@code vm0}
 * can be made, and destroyed, leaving the frames as they were. {@code "create mapped refusing"}: the
 * same with a mapping that will not come down; where the creation threw after it was made, its run stays
 * taken, and is counted withheld ({@link FramePool#framesWithheld}), and nothing else of the guest remains.
 *
 * <p>{@code "destroy"} and {@code "destroy mapped"}: a destroy of {@code vm0}, one of whose pages shares
 * {@code old}'s frame, either leaves the guest as it was (live, listed, reading what it was written;
 * destroyed again once the heap has room, it goes) or takes it down whole: not listed, its name free, its
 * frames free and its mapping down, and the engine whole. It may throw past its point of no return only
 * where {@link DedupEngine#destroy} says it may: the skip list's marker node ({@link LiveGuests#remove}).
 *
 * <p>{@link #apply} returns the findings of one run, one line each ("" for none); {@link #getAsLong}
 * the allocations the armed step passed in the last run. Not thread safe.
 */
final class FullHeapGuestScenario extends FaultScenario {

    private static final int PAGES = 4;
    /** How the allocation site of the skip list's marker node is named ({@link AllocationFaultLoader}). */
    private static final String MARKER_NODE = ", after remove";

    private final boolean destroying;
    private final boolean mapped;
    /** Mappings made in the armed step refuse to come down. */
    private final boolean refusing;
    /** The mappings made now refuse to come down: {@link #refusing}, while the step is armed. */
    private boolean refuse;
    private final List<RecordingMapping> mappings = new ArrayList<>();

    /**
     * @param shape {@code "create"}, {@code "create mapped"}, {@code "create mapped refusing"}, {@code "destroy"}
     *              or {@code "destroy mapped"}
     */
    FullHeapGuestScenario(String shape) {
        switch (shape) {
            case "create", "create mapped", "create mapped refusing", "destroy", "destroy mapped" -> { }
            default -> throw new IllegalArgumentException("no shape '" + shape + "': create, create mapped, create mapped refusing, destroy or destroy mapped");
        }
        destroying = shape.startsWith("destroy");
        mapped = shape.contains(" mapped");
        refusing = shape.endsWith(" refusing");
    }

    @Override
    public String apply(long failAt) {
        mappings.clear();
        return onSmallEngine(failAt, destroying ? this::destroy : this::create);
    }

    private PageMapping.Factory factory() {
        return !mapped ? null : (first, count) -> {
            RecordingMapping mapping = new RecordingMapping(first, count);
            mapping.refuseUnmap = refuse;
            mappings.add(mapping);
            return mapping;
        };
    }

    /** The engine with {@code old}, one page written and filed in the unstable index. */
    private static MergeDomain withOld(DedupEngine engine) {
        MergeDomain domain = engine.createDomain("a");
        Guest old = engine.createGuest(domain, "old", PAGE);
        old.write(0, AllocationFaultShapes.content(3), 0, PAGE);
        engine.scanner().scanFullPass();        // first visit: hashes only
        engine.scanner().scanFullPass();        // files the page in the unstable index
        return domain;
    }

    private String create(DedupEngine engine, long failAt) {
        MergeDomain domain = withOld(engine);
        long framesBefore = engine.framesInUse();
        refuse = refusing;
        AllocationFaults.failFrom(failAt);
        Guest made = null;
        Throwable thrown = null;
        try {
            made = engine.createGuest(domain, "vm0", (long) PAGES * PAGE, factory());
        } catch (Throwable t) {
            thrown = t;
        }
        String where = endArmed(failAt);
        refuse = false;
        long withheld = made == null && refusing && !mappings.isEmpty() ? PAGES : 0;      // a run whose mapping stays up
        List<String> found = new ArrayList<>();
        if (thrown != null && !(thrown instanceof OutOfMemoryError)) {
            found.add(where + ": the creation threw " + thrown + " instead of the OutOfMemoryError");
        }
        List<String> listed = engine.guests().stream().map(Guest::name).toList();
        if (made != null) {
            if (made.isDestroyed() || !listed.equals(List.of("old", "vm0"))) {
                found.add(where + ": the creation returned " + (made.isDestroyed() ? "a destroyed guest" : "its guest")
                        + ", and the engine lists " + listed);
            }
        } else {
            if (!listed.equals(List.of("old"))) {
                found.add(where + ": the creation threw, yet the engine lists " + listed + ", not [old]");
            }
            if (engine.framesInUse() != framesBefore + withheld || engine.counters().framesWithheld() != withheld) {
                found.add(where + ": the creation threw, yet " + engine.framesInUse() + " frames are in use, "
                        + engine.counters().framesWithheld() + " withheld, not " + (framesBefore + withheld) + ", " + withheld);
            }
            for (RecordingMapping mapping : mappings) {
                if (!mapping.unmapped && !refusing) {
                    found.add(where + ": the creation threw, yet the mapping it made is still up");
                }
            }
        }
        found.addAll(whole(engine, where));
        mappings.forEach(mapping -> mapping.refuseUnmap = false);      // vm0's destroy below goes
        if (made == null) {
            try {
                made = engine.createGuest(domain, "vm0", (long) PAGES * PAGE, factory());
            } catch (RuntimeException e) {
                found.add(where + ": with the heap back, a guest named vm0 cannot be made: " + e);
                return String.join("\n", found);
            }
        }
        made.destroy();
        if (engine.framesInUse() != framesBefore + withheld) {
            found.add(where + ": vm0 made and destroyed, " + engine.framesInUse() + " frames are in use, not " + (framesBefore + withheld));
        }
        found.addAll(whole(engine, where + ", vm0 made and destroyed"));
        return String.join("\n", found);
    }

    private String destroy(DedupEngine engine, long failAt) {
        MergeDomain domain = withOld(engine);
        long framesBefore = engine.framesInUse();
        Guest vm = engine.createGuest(domain, "vm0", (long) PAGES * PAGE, factory());
        byte[] bytes = new byte[PAGES * PAGE];
        for (int page = 0; page < PAGES - 1; page++) {        // the last page stays as it was made
            System.arraycopy(AllocationFaultShapes.content(page == 0 ? 3 : 10 + page), 0, bytes, page * PAGE, PAGE);
        }
        vm.write(0, bytes, 0, bytes.length);
        engine.scanner().scanUntilStable(8);        // page 0 merges with old's
        AllocationFaults.failFrom(failAt);
        Throwable thrown = null;
        try {
            vm.destroy();
        } catch (Throwable t) {
            thrown = t;
        }
        String where = endArmed(failAt);
        List<String> found = new ArrayList<>();
        List<String> listed = engine.guests().stream().map(Guest::name).toList();
        if (thrown != null && !vm.isDestroyed()) {
            if (!listed.equals(List.of("old", "vm0"))) {
                found.add(where + ": the destroy threw " + thrown + ", its guest not destroyed, yet the engine lists " + listed);
            }
            byte[] read = AllocationFaultScenario.read(vm, 0, PAGES);
            if (!Arrays.equals(read, bytes)) {
                found.add(where + ": the destroy threw, its guest not destroyed, yet it reads otherwise at 0x"
                        + Integer.toHexString(Arrays.mismatch(read, bytes)));
            }
            found.addAll(whole(engine, where + ", the destroy undone"));
            vm.destroy();       // with the heap back it goes
        } else if (thrown != null) {
            String site = AllocationFaults.injectedAt();
            boolean mayThrow = site != null && site.startsWith("LiveGuests.remove:") && site.endsWith(MARKER_NODE);
            if (!mayThrow && thrown instanceof OutOfMemoryError) {
                found.add(where + ": the destroy threw " + thrown + ", though its guest was down");
            }
        }
        if (!engine.guests().stream().map(Guest::name).toList().equals(List.of("old"))) {
            found.add(where + ": after the destroy the engine lists " + engine.guests() + ", not [old]");
        }
        if (engine.framesInUse() != framesBefore) {
            found.add(where + ": after the destroy " + engine.framesInUse() + " frames are in use, not " + framesBefore);
        }
        for (RecordingMapping mapping : mappings) {
            if (!mapping.unmapped || mapping.unmapAllCalls != 1) {
                found.add(where + ": after the destroy its mapping was taken down " + mapping.unmapAllCalls + " times, not once");
            }
        }
        found.addAll(whole(engine, where + ", destroyed"));
        try {
            engine.createGuest(domain, "vm0", PAGE).destroy();
        } catch (RuntimeException e) {
            found.add(where + ": after the destroy, a guest named vm0 cannot be made: " + e);
        }
        return String.join("\n", found);
    }

    /** The engine's invariants and page ids, and old's page as it was written. */
    private static List<String> whole(DedupEngine engine, String where) {
        List<String> found = new ArrayList<>();
        try {
            EngineInvariants.assertConsistentWithHasherOf(engine.context(), engine, where);
        } catch (AssertionError e) {
            found.add(e.getMessage());
        }
        String ids = PageIdLedger.differences(engine);
        if (ids != null) {
            found.add(where + ": " + ids);
        }
        List<Guest> guests = engine.guests();
        Guest old = guests.isEmpty() ? null : guests.getFirst();
        if (old == null || !old.name().equals("old") || !Arrays.equals(AllocationFaultScenario.read(old, 0, 1), AllocationFaultShapes.content(3))) {
            found.add(where + ": old is not as it was written");
        }
        return found;
    }
}
