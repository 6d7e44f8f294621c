package io.samepage.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.reflect.Field;
import java.util.List;
import java.util.concurrent.ConcurrentSkipListMap;
import org.junit.jupiter.api.Test;

/**
 * A destroy whose removal from the live guests fails on the heap still takes its guest down, and never
 * leaves it to be taken down again. The JDK's skip list makes a marker node as it unlinks an entry: an
 * {@link OutOfMemoryError} there leaves the node half unlinked, its value gone, and a later removal of
 * another guest that meets it helps unlink it, so may fail the same way before its own entry is out.
 * That guest stayed listed while destroyed, and {@code close} called its mapping's {@link PageMapping#unmapAll}
 * a second time (a review's finding). Both halves are injected by replacing the engine's skip list: a
 * removal that fails after its entry is out, and one that fails before.
 */
class GuestUnlistFailureTest {

    private static final long PAGE = 4096;

    /** A live-guest map whose next {@code remove} fails as the JVM does when the heap is full, before or after it removes. */
    private static ConcurrentSkipListMap<Long, Guest> failingRemove(boolean afterRemoving) {
        return new ConcurrentSkipListMap<>() {
            private boolean failed;

            @Override
            public Guest remove(Object key) {
                if (failed) {
                    return super.remove(key);
                }
                failed = true;
                if (afterRemoving) {
                    super.remove(key);
                }
                throw new OutOfMemoryError("injected: the skip list's marker node");
            }
        };
    }

    /** Puts {@code map}, holding the engine's guests now, in place of its live-guest map. */
    private static void inject(DedupEngine engine, ConcurrentSkipListMap<Long, Guest> map) throws Exception {
        Field live = DedupEngine.class.getDeclaredField("guests");
        live.setAccessible(true);
        Field f = LiveGuests.class.getDeclaredField("guests");
        f.setAccessible(true);
        for (Guest guest : engine.guests()) {
            map.put(guest.creation(), guest);
        }
        f.set(live.get(engine), map);
    }

    private static void destroyFailingOnTheHeap(DedupEngine engine, Guest victim, boolean afterRemoving) throws Exception {
        inject(engine, failingRemove(afterRemoving));
        assertThrows(OutOfMemoryError.class, victim::destroy);
        assertTrue(victim.isDestroyed(), "the destroy went on to the end");
    }

    private static void assertUnlistedAndClosedOnce(boolean afterRemoving) throws Exception {
        DedupEngine engine = DedupEngine.create(new EngineContext().poolBytes(8L << 20).conclude());
        MergeDomain domain = engine.createDomain("d");
        long framesBefore = engine.framesInUse();
        RecordingMapping[] mappings = new RecordingMapping[2];
        Guest victim = engine.createGuest(domain, "victim", 16 * PAGE, (first, pages) -> mappings[0] = new RecordingMapping(first, pages));
        Guest other = engine.createGuest(domain, "other", 16 * PAGE, (first, pages) -> mappings[1] = new RecordingMapping(first, pages));
        Guest software = engine.createGuest(domain, "software", 4 * PAGE);
        software.write(0, new byte[] {1}, 0, 1);
        destroyFailingOnTheHeap(engine, victim, afterRemoving);
        assertEquals(List.of(other, software), engine.guests(), "the destroyed guest is not listed");
        assertEquals(1, mappings[0].unmapAllCalls, "its mapping was taken down");
        EngineInvariants.assertConsistent(engine, null, "after the destroy that failed to unlist");
        assertEquals(20, engine.counters().pagesTotal(), "the destroyed guest's pages are not counted");

        victim.destroy();
        assertEquals(1, mappings[0].unmapAllCalls, "a second destroy is harmless");
        assertEquals(List.of(other, software), engine.guests(), "nor after a second destroy");
        Guest again = engine.createGuest(domain, "victim", PAGE);
        assertEquals(List.of(other, software, again), engine.guests(), "its name is free again");
        EngineInvariants.assertConsistent(engine, null, "after a second destroy and a create");
        for (Guest live : engine.liveGuests()) {
            assertFalse(live.isDestroyed(), "a later destroy or create left " + live.name() + " listed while destroyed");
        }

        again.destroy();
        software.destroy();
        other.destroy();
        assertEquals(List.of(), engine.guests());
        assertEquals(framesBefore, engine.framesInUse(), "every frame is free");
        EngineInvariants.assertConsistent(engine, null, "after every destroy");
        engine.close();
        assertEquals(1, mappings[0].unmapAllCalls, "close took the destroyed guest down a second time");
        assertEquals(1, mappings[1].unmapAllCalls, "the other guest's mapping went down once");
    }

    /** The guest's own node half unlinked: its entry is out, the marker node could not be had. */
    @Test
    void aRemovalFailingAfterItsEntryIsOutLeavesNothingListed() throws Exception {
        assertUnlistedAndClosedOnce(true);
    }

    /** Another guest's half-unlinked node met first: this guest's entry is still in. */
    @Test
    void aRemovalFailingBeforeItsEntryIsOutLeavesNothingListed() throws Exception {
        assertUnlistedAndClosedOnce(false);
    }

    /** Close, not a destroy, comes next: it takes every guest down once and unlists the destroyed one. */
    @Test
    void closeAfterARemovalFailedTakesEachGuestDownOnce() throws Exception {
        DedupEngine engine = DedupEngine.create(new EngineContext().poolBytes(8L << 20).conclude());
        MergeDomain domain = engine.createDomain("d");
        long framesBefore = engine.framesInUse();
        RecordingMapping[] mappings = new RecordingMapping[2];
        Guest victim = engine.createGuest(domain, "victim", 16 * PAGE, (first, pages) -> mappings[0] = new RecordingMapping(first, pages));
        engine.createGuest(domain, "other", 16 * PAGE, (first, pages) -> mappings[1] = new RecordingMapping(first, pages));
        destroyFailingOnTheHeap(engine, victim, false);
        assertEquals(framesBefore + 16, engine.framesInUse(), "the victim's frames are free, the other's run taken");
        engine.close();
        assertEquals(1, mappings[0].unmapAllCalls, "close took the destroyed guest down a second time");
        assertEquals(1, mappings[1].unmapAllCalls, "the live guest's mapping went down once");
        assertEquals(List.of(), engine.guests());
    }
}
