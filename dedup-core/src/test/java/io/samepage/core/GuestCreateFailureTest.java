package io.samepage.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.reflect.Field;
import java.util.HashSet;
import java.util.List;
import java.util.concurrent.ConcurrentSkipListMap;
import org.junit.jupiter.api.Test;

/**
 * A {@code createGuest} that fails on the heap after its guest was made (the live guests' skip-list
 * node, the names' table growing) creates nothing: its name can be taken again, its ids go back, and a
 * mapped guest's mapping is taken down and its frames freed. It left the name taken for good, or the
 * ids, the mapping and 64 frames to a guest that was never live (a review's finding). The failures are
 * injected by replacing the engine's collections.
 */
class GuestCreateFailureTest {

    private static final long PAGE = 4096;

    private static void inject(Class<?> type, Object target, String field, Object value) throws Exception {
        Field f = type.getDeclaredField(field);
        f.setAccessible(true);
        f.set(target, value);
    }

    /** Sets {@code field} of the engine's {@code part} (a {@code type}) to {@code value}. */
    private static void injectInto(DedupEngine engine, String part, Class<?> type, String field, Object value)
            throws Exception {
        Field f = DedupEngine.class.getDeclaredField(part);
        f.setAccessible(true);
        inject(type, f.get(engine), field, value);
    }

    /** A live-guest map whose next {@code put} fails as the JVM does when the heap is full. */
    private static ConcurrentSkipListMap<Long, Guest> failingOnce() {
        return new ConcurrentSkipListMap<>() {
            private boolean failed;

            @Override
            public Guest put(Long key, Guest value) {
                if (!failed) {
                    failed = true;
                    throw new OutOfMemoryError("injected: the skip list's node");
                }
                return super.put(key, value);
            }
        };
    }

    @Test
    void aMappedGuestWhoseLiveEntryCannotBeMadeIsUndoneWhole() throws Exception {
        try (DedupEngine engine = DedupEngine.create(new EngineContext().poolBytes(8L << 20).conclude())) {
            MergeDomain domain = engine.createDomain("d");
            injectInto(engine, "guests", LiveGuests.class, "guests", failingOnce());
            long framesBefore = engine.framesInUse();
            RecordingMapping[] made = new RecordingMapping[1];
            assertThrows(OutOfMemoryError.class, () -> engine.createGuest(domain, "vm", 64 * PAGE,
                    (first, pages) -> made[0] = new RecordingMapping(first, pages)));
            assertTrue(made[0].unmapped, "the mapping was taken down");
            assertEquals(framesBefore, engine.framesInUse(), "its run of frames went back");
            assertEquals(List.of(), engine.guests());
            Guest again = engine.createGuest(domain, "vm", PAGE);
            assertEquals(List.of(again), engine.guests(), "the name is free again");
            EngineInvariants.assertConsistent(engine, null, "after the failed create");
        }
    }

    /**
     * Where the live-guest entry cannot be made and the host will not take the new guest's mapping down
     * either, the run stays taken for good, withheld (the host may still map it), but nothing else of the guest
     * remains: its name is free, its ids wait for their release, and a close does not take it down.
     * The undo was a destroy, which refused and left the name and ids to a guest no one held.
     */
    @Test
    void aGuestWhoseMappingWillNotComeDownIsUndoneAllButItsFrames() throws Exception {
        try (DedupEngine engine = DedupEngine.create(new EngineContext().poolBytes(8L << 20).conclude())) {
            MergeDomain domain = engine.createDomain("d");
            injectInto(engine, "guests", LiveGuests.class, "guests", failingOnce());
            long framesBefore = engine.framesInUse();
            RecordingMapping[] made = new RecordingMapping[1];
            assertThrows(OutOfMemoryError.class, () -> engine.createGuest(domain, "vm", 64 * PAGE, (first, pages) -> {
                made[0] = new RecordingMapping(first, pages);
                made[0].refuseUnmap = true;
                return made[0];
            }));
            assertEquals(framesBefore + 64, engine.framesInUse(), "its run of frames stays taken");
            assertEquals(64, engine.counters().framesWithheld(), "and is counted withheld");
            assertEquals(List.of(), engine.guests());
            assertNull(PageIdLedger.differences(engine), "its ids are free or wait for their release");
            Guest again = engine.createGuest(domain, "vm", PAGE);
            assertEquals(List.of(again), engine.guests(), "the name is free again");
            EngineInvariants.assertConsistent(engine, null, "after the failed create");
            made[0].refuseUnmap = false;
            engine.close();
            assertEquals(0, made[0].unmapAllCalls, "the close did not take the undone guest down");
        }
    }

    /**
     * A HashMap links a new entry before it grows its table, so a growth that fails leaves the name in
     * the set: the name was taken for good, by no guest.
     */
    @Test
    void aNameWhoseTableCannotGrowIsNotLeftTaken() throws Exception {
        try (DedupEngine engine = DedupEngine.create(new EngineContext().poolBytes(8L << 20).conclude())) {
            MergeDomain domain = engine.createDomain("d");
            injectInto(engine, "guestNames", GuestNames.class, "names", new HashSet<String>() {
                private boolean failed;

                @Override
                public boolean add(String name) {
                    boolean added = super.add(name);
                    if (!failed) {
                        failed = true;
                        throw new OutOfMemoryError("injected: the names' table growing, the name linked");
                    }
                    return added;
                }
            });
            assertThrows(OutOfMemoryError.class, () -> engine.createGuest(domain, "vm", PAGE));
            Guest again = engine.createGuest(domain, "vm", PAGE);
            assertEquals(List.of(again), engine.guests(), "the name is free again");
            EngineInvariants.assertConsistent(engine, null, "after the failed create");
        }
    }

    @Test
    void aGuestWhoseNameCannotBeFiledTakesNoIdsAndNoMapping() throws Exception {
        try (DedupEngine engine = DedupEngine.create(new EngineContext().poolBytes(8L << 20).conclude())) {
            MergeDomain domain = engine.createDomain("d");
            injectInto(engine, "guestNames", GuestNames.class, "names", new HashSet<String>() {
                private boolean failed;

                @Override
                public boolean add(String name) {
                    if (!failed) {
                        failed = true;
                        throw new OutOfMemoryError("injected: the names' table growing");
                    }
                    return super.add(name);
                }
            });
            boolean[] mapped = {false};
            assertThrows(OutOfMemoryError.class, () -> engine.createGuest(domain, "vm", 64 * PAGE,
                    (first, pages) -> {
                        mapped[0] = true;
                        return new RecordingMapping(first, pages);
                    }));
            assertEquals(false, mapped[0], "no mapping was made");
            assertNull(engine.pageOwner(0), "no id is owned");
            Guest next = engine.createGuest(domain, "vm", PAGE);
            assertEquals(0, next.table().basePageId(), "the ids were never taken");
            EngineInvariants.assertConsistent(engine, null, "after the failed create");
        }
    }
    /** An Error other than OutOfMemoryError (here a StackOverflowError) from the mapping factory undoes the create too. */
    @Test
    void anyErrorWhileTheGuestIsMadeLeavesItsNameAndIdsFree() throws Exception {
        try (DedupEngine engine = DedupEngine.create(new EngineContext().poolBytes(8L << 20).conclude())) {
            MergeDomain domain = engine.createDomain("d");
            long framesBefore = engine.framesInUse();
            StackOverflowError deep = new StackOverflowError("injected: the mapping factory");
            assertSame(deep, assertThrows(StackOverflowError.class, () -> engine.createGuest(domain, "vm", 64 * PAGE,
                    (first, pages) -> {
                        throw deep;
                    })));
            assertEquals(framesBefore, engine.framesInUse(), "its run of frames went back");
            Guest next = engine.createGuest(domain, "vm", PAGE);
            assertEquals(0, next.table().basePageId(), "its ids went back");
            EngineInvariants.assertConsistent(engine, null, "after the failed create");
        }
    }

    /** An Error other than OutOfMemoryError while the guest is filed as live undoes it as a destroy would. */
    @Test
    void anyErrorFilingTheLiveGuestUndoesItWhole() throws Exception {
        try (DedupEngine engine = DedupEngine.create(new EngineContext().poolBytes(8L << 20).conclude())) {
            MergeDomain domain = engine.createDomain("d");
            injectInto(engine, "guests", LiveGuests.class, "guests", new ConcurrentSkipListMap<Long, Guest>() {
                private boolean failed;

                @Override
                public Guest put(Long key, Guest value) {
                    if (!failed) {
                        failed = true;
                        throw new StackOverflowError("injected: the skip list's put");
                    }
                    return super.put(key, value);
                }
            });
            long framesBefore = engine.framesInUse();
            RecordingMapping[] made = new RecordingMapping[1];
            assertThrows(StackOverflowError.class, () -> engine.createGuest(domain, "vm", 64 * PAGE,
                    (first, pages) -> made[0] = new RecordingMapping(first, pages)));
            assertTrue(made[0].unmapped, "the mapping was taken down");
            assertEquals(framesBefore, engine.framesInUse(), "its run of frames went back");
            Guest again = engine.createGuest(domain, "vm", PAGE);
            assertEquals(List.of(again), engine.guests(), "the name is free again");
            EngineInvariants.assertConsistent(engine, null, "after the failed create");
        }
    }
}
