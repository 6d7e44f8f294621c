package io.samepage.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.samepage.hashing.Pages;
import java.lang.management.ManagementFactory;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * Many guests created and destroyed, as an embedder with one small guest per WebAssembly instance does:
 * names stay unique among live guests, {@link DedupEngine#guests} stays in creation order, a destroyed
 * guest's page ids never resolve to another guest while an unstable index may name them, and a creation
 * and destroy cost no memory per live guest.
 */
class GuestChurnTest {

    private static final int PAGE = Pages.PAGE_SIZE;

    @Test
    void namesStayUniqueAndGuestsInCreationOrderThroughThousandsOfCreatesAndDestroys() {
        SplittableRandom random = new SplittableRandom(7);
        try (DedupEngine engine = DedupEngine.create(new EngineContext().poolBytes(16L << 20).conclude())) {
            MergeDomain domain = engine.createDomain("d");
            Map<String, Guest> live = new LinkedHashMap<>();        // the model: live guests in creation order
            Map<Guest, RecordingMapping> mappings = new HashMap<>();
            for (int step = 0; step < 6000; step++) {
                String name = "g" + random.nextInt(300);
                if (random.nextInt(3) > 0) {
                    long bytes = (random.nextInt(8) == 0 ? PageIds.CHUNK_PAGES + 1 : 1 + random.nextInt(16)) * (long) PAGE;
                    if (live.containsKey(name)) {
                        DedupException taken = assertThrows(DedupException.class, () -> engine.createGuest(domain, name, bytes));
                        assertEquals(DedupException.Kind.INVALID_ARGUMENT, taken.kind(), "step " + step);
                    } else if (random.nextInt(10) == 0) {
                        RecordingMapping[] made = new RecordingMapping[1];
                        Guest guest = engine.createGuest(domain, name, PAGE, (first, pages) -> made[0] = new RecordingMapping(first, pages));
                        mappings.put(guest, made[0]);
                        live.put(name, guest);
                    } else {
                        live.put(name, engine.createGuest(domain, name, bytes));
                    }
                } else if (live.containsKey(name)) {
                    Guest guest = live.get(name);
                    RecordingMapping mapping = mappings.remove(guest);
                    if (mapping != null && random.nextBoolean()) {
                        mapping.refuseUnmap = true;                 // the destroy fails: the guest and its name stay
                        assertThrows(DedupException.class, guest::destroy, "step " + step);
                        mapping.refuseUnmap = false;
                        mappings.put(guest, mapping);
                        continue;
                    }
                    guest.destroy();
                    live.remove(name);
                }
                if (step % 50 == 0) {
                    assertEquals(new ArrayList<>(live.values()), engine.guests(), "step " + step);
                    assertEquals(new ArrayList<>(live.values()), Arrays.asList(engine.liveGuests()), "step " + step);
                }
            }
            List<Guest> guests = engine.guests();
            assertEquals(new ArrayList<>(live.values()), guests);
            for (int g = 1; g < guests.size(); g++) {
                assertTrue(guests.get(g - 1).id() < guests.get(g).id(), "creation order: " + guests.get(g - 1) + ", " + guests.get(g));
            }
        }
    }

    /**
     * A destroyed guest whose pages the unstable index names keeps its page ids: guests created meanwhile
     * take other ids, across more than one segment of the owner table ({@link PageIds#SEGMENT_CHUNKS}
     * chunks); once the next full scan starts, the freed ids go to the next guests, lowest first. Guests
     * made meanwhile are never visited before that scan, so no index names their pages, and each gives
     * its ids back at its destroy: the next guest takes them.
     */
    @Test
    void aDestroyedGuestsIdsResolveToItAndToNoNewGuestUntilTheNextFullScanStarts() {
        int guests = PageIds.SEGMENT_CHUNKS + 100;
        try (DedupEngine engine = DedupEngine.create(new EngineContext().poolBytes(64L << 20).conclude())) {
            MergeDomain domain = engine.createDomain("d");
            List<Guest> first = new ArrayList<>();
            byte[] unique = new byte[PAGE];
            SplittableRandom random = new SplittableRandom(3);
            for (int g = 0; g < guests; g++) {
                Guest guest = engine.createGuest(domain, "first-" + g, PAGE);
                random.nextBytes(unique);
                guest.write(0, unique, 0, PAGE);
                first.add(guest);
            }
            engine.scanner().scanFullPass();
            engine.scanner().scanFullPass();
            assertTrue(engine.counters().pagesUnshared() > 0, "pages filed in the unstable index: " + engine.counters());

            Map<Integer, Guest> quarantined = new HashMap<>();
            for (int g = 0; g < guests; g += 2) {
                Guest guest = first.get(g);
                guest.destroy();
                quarantined.put(guest.table().basePageId(), guest);
            }
            Set<Integer> churned = new HashSet<>();
            List<Guest> kept = new ArrayList<>();
            for (int c = 0; c < 2000; c++) {
                Guest guest = engine.createGuest(domain, "churn-" + c, PAGE);
                int base = guest.table().basePageId();
                assertFalse(quarantined.containsKey(base), "churn guest " + c + " took the quarantined id " + base);
                churned.add(base);
                assertSame(guest, engine.pageOwner(base));
                if (c % 3 == 0) {
                    kept.add(guest);
                } else {
                    guest.destroy();
                }
            }
            assertEquals(kept.size() + 1, churned.size(), "each churn guest destroyed gave its id to the next: "
                    + kept.size() + " kept ids and one reused, not one id per guest");
            for (Map.Entry<Integer, Guest> id : quarantined.entrySet()) {
                assertSame(id.getValue(), engine.pageOwner(id.getKey()), "quarantined id " + id.getKey());
            }

            engine.scanner().scanFullPass();       // its start empties the unstable indexes: the ids come back
            Set<Integer> freed = new HashSet<>(quarantined.keySet());
            for (int base : churned) {
                Guest owner = engine.pageOwner(base);
                if (owner == null) {
                    freed.add(base);
                } else {
                    assertTrue(kept.contains(owner), "id " + base + " resolves to " + owner);
                }
            }
            assertEquals(quarantined.size() + churned.size() - kept.size(), freed.size(), "every destroyed guest's id is free");
            Set<Integer> reused = new HashSet<>();
            for (int g = 0; g < freed.size(); g++) {
                reused.add(engine.createGuest(domain, "next-" + g, PAGE).table().basePageId());
            }
            Set<Integer> elsewhere = new HashSet<>(reused);
            elsewhere.removeAll(freed);
            assertEquals(Set.of(), elsewhere, "the next " + freed.size() + " guests take the freed ids, lowest first, not these");
            EngineInvariants.assertConsistent(engine, null, "after the churn");
        }
    }

    /**
     * A guest destroyed while a batch runs (the batch lock is held: the destroy cannot tell whether the
     * batch is filing its pages) gives its ids back when that batch ends if no page of it was filed in
     * the current full scan, and keeps them until the next full scan starts if one was.
     */
    @Test
    void aGuestDestroyedWhileABatchRunsGetsItsIdsBackAtTheBatchEndUnlessItWasFiled() throws Exception {
        try (DedupEngine engine = DedupEngine.create(new EngineContext().poolBytes(16L << 20).conclude())) {
            MergeDomain domain = engine.createDomain("d");
            SplittableRandom random = new SplittableRandom(11);
            byte[] unique = new byte[PAGE];
            Guest[] guests = new Guest[3];
            for (int g = 0; g < guests.length; g++) {
                if (g == 2) {
                    engine.scanner().scanFullPass();
                    engine.scanner().scanFullPass();        // the first two are filed in the unstable index
                    assertEquals(2, engine.counters().pagesUnshared(), engine.counters().toString());
                }
                guests[g] = engine.createGuest(domain, "g" + g, PAGE);
                random.nextBytes(unique);
                guests[g].write(0, unique, 0, PAGE);
            }
            Guest filed = guests[1];
            Guest unvisited = guests[2];
            int filedBase = filed.table().basePageId();
            int unvisitedBase = unvisited.table().basePageId();
            Throwable[] failed = new Throwable[1];
            engine.scanner().runIfIdle(() -> {
                Thread destroyer = new Thread(() -> {
                    try {
                        filed.destroy();
                        unvisited.destroy();
                    } catch (Throwable t) {
                        failed[0] = t;
                    }
                });
                destroyer.start();
                try {
                    destroyer.join();
                } catch (InterruptedException e) {
                    throw new AssertionError(e);
                }
            });
            assertNull(failed[0]);
            assertSame(unvisited, engine.pageOwner(unvisitedBase), "destroyed during a batch: its ids wait for the batch's end");
            assertSame(filed, engine.pageOwner(filedBase));
            engine.scanner().scanBatch(0);
            assertNull(engine.pageOwner(unvisitedBase), "never filed: its ids came back at the batch's end");
            assertSame(filed, engine.pageOwner(filedBase), "filed: its ids stay its own until the next full scan starts");
            assertEquals(unvisitedBase, engine.createGuest(domain, "next", PAGE).table().basePageId());
            engine.scanner().scanBatch(1);      // starts the next full scan
            assertNull(engine.pageOwner(filedBase));
        }
    }

    /**
     * A creation and destroy of a small guest allocate the same with 10 guests live as with 10,010. With
     * copy-on-write lists of guests and an owner table copied at each creation and release, each cost
     * four array copies of an entry per live guest, about 200 KB here (and the creation walked every
     * live guest's name). Counted in bytes this thread allocated, not in time.
     */
    @Test
    void aCreateAndDestroyAllocateNothingPerLiveGuest() {
        var threads = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        try (DedupEngine engine = DedupEngine.create(new EngineContext().poolBytes(16L << 20).conclude())) {
            MergeDomain domain = engine.createDomain("d");
            int held = 0;
            for (; held < 10; held++) {
                engine.createGuest(domain, "held-" + held, 16L * PAGE);
            }
            createAndDestroy(engine, domain, 2000);                  // compiled, and the tables at their size
            long allocated = threads.getCurrentThreadAllocatedBytes();
            createAndDestroy(engine, domain, 1000);
            long fewLive = (threads.getCurrentThreadAllocatedBytes() - allocated) / 1000;

            for (; held < 10_010; held++) {
                engine.createGuest(domain, "held-" + held, 16L * PAGE);
            }
            createAndDestroy(engine, domain, 100);
            allocated = threads.getCurrentThreadAllocatedBytes();
            createAndDestroy(engine, domain, 1000);
            long manyLive = (threads.getCurrentThreadAllocatedBytes() - allocated) / 1000;
            System.out.printf("bytes allocated per create and destroy: %d with 10 guests live, %d with %d%n",
                    fewLive, manyLive, held);
            assertTrue(manyLive - fewLive < held / 8, "a create and destroy allocated " + fewLive + " bytes with 10 guests live, "
                    + manyLive + " with " + held + ": one reference per live guest would be 4 bytes each");
        }
    }

    private static void createAndDestroy(DedupEngine engine, MergeDomain domain, int times) {
        for (int i = 0; i < times; i++) {
            engine.createGuest(domain, "churn", 16L * PAGE).destroy();
        }
    }

    @Test
    void aGuestOfAnotherEnginesDomainWithTheSameIdIsRefused() {
        try (DedupEngine one = DedupEngine.create(new EngineContext().poolBytes(8L << 20).conclude());
             DedupEngine other = DedupEngine.create(new EngineContext().poolBytes(8L << 20).conclude())) {
            one.createDomain("d");
            MergeDomain foreign = other.createDomain("d");
            assertEquals(0, foreign.id());
            DedupException refused = assertThrows(DedupException.class, () -> one.createGuest(foreign, "g", PAGE));
            assertEquals(DedupException.Kind.INVALID_ARGUMENT, refused.kind());
            assertTrue(one.guests().isEmpty());
            assertNull(one.pageOwner(0));
        }
    }
}
