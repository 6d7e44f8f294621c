package io.samepage.core;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.samepage.hashing.ContentDigest;
import io.samepage.hashing.Pages;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * A host that refuses a remap (a mapped guest's mmap failing with ENOMEM at vm.max_map_count) leaves the
 * engine exactly as it was: no freed frame stays in an index or the resident registry, no frame leaks,
 * and the counters return to zero once the guests are gone.
 */
class FailingMappingTest {

    private static final int PAGE = Pages.PAGE_SIZE;

    /**
     * A {@link RecordingMapping} whose {@link #map} throws while {@link #refuse} is set, and whose
     * {@link #unmapAll} throws while {@link #refuseUnmap} is set, changing nothing.
     */
    static final class RefusingMapping extends ForwardingMapping {
        volatile boolean refuse;
        volatile boolean refuseUnmap;
        volatile boolean refuseUnprotect;
        volatile boolean throwOnProtect;
        /** Maps that still go through before every later one is refused. */
        final java.util.concurrent.atomic.AtomicInteger mapsBeforeRefusing =
                new java.util.concurrent.atomic.AtomicInteger(Integer.MAX_VALUE);

        RefusingMapping(int first, int pages) {
            super(first, pages);
        }

        @Override
        public void map(int page, int frame, boolean writable) {
            if (refuse || mapsBeforeRefusing.getAndDecrement() <= 0) {
                throw new IllegalStateException("mmap: Cannot allocate memory (injected)");
            }
            super.map(page, frame, writable);
        }

        @Override
        public boolean writeProtect(int page) {
            if (throwOnProtect) {
                recorded.calls.add("writeProtect " + page + " refused");
                throw new IllegalStateException("mprotect(PROT_READ): Cannot allocate memory (injected)");
            }
            return super.writeProtect(page);
        }

        @Override
        public void unprotect(int page) {
            if (refuseUnprotect) {
                recorded.calls.add("unprotect " + page + " refused");
                throw new IllegalStateException("mprotect: Cannot allocate memory (injected)");
            }
            super.unprotect(page);
        }

        @Override
        public void unmapAll() {
            if (refuseUnmap) {
                throw new IllegalStateException("munmap: the VMM still holds the memory (injected)");
            }
            super.unmapAll();
        }
    }

    private static DedupEngine engine() {
        return DedupEngine.create(new EngineContext().poolBytes(8L << 20).warmFrames(0).hashSeed(5).conclude());
    }

    private static Guest mapped(DedupEngine engine, MergeDomain domain, String name, int pages, RefusingMapping[] into) {
        return engine.createGuest(domain, name, (long) pages * PAGE, (first, count) -> into[0] = new RefusingMapping(first, count));
    }

    private static byte[] content(int tag) {
        byte[] bytes = new byte[PAGE];
        Arrays.fill(bytes, (byte) tag);
        bytes[7] = 1;
        return bytes;
    }

    private static byte[] read(Guest guest, long address) {
        byte[] bytes = new byte[PAGE];
        guest.read(address, bytes, 0, PAGE);
        return bytes;
    }

    /**
     * A mapped guest whose mapping the host refuses is not created, and its run of never-used frames is
     * left for the next one: in a pool with room for one such run, the same guest is created on the
     * second try, and writes and reads back.
     */
    @Test
    void aMappedGuestWhoseMappingIsRefusedLeavesItsRunToTheNext() {
        try (DedupEngine engine = engine()) {
            MergeDomain domain = engine.createDomain("d");
            FramePool pool = engine.pool();
            int pages = pool.framesAvailable() - 8;     // more than half: the pool has room for one run
            DedupException refused = assertThrows(DedupException.class, () -> engine.createGuest(domain, "vm",
                    (long) pages * PAGE, (first, count) -> {
                        throw new IllegalStateException("mmap: Cannot allocate memory (injected)");
                    }));
            assertEquals(DedupException.Kind.HOST_REFUSED, refused.kind());
            assertEquals(pages + 8, pool.framesAvailable(), "every frame is available again");
            assertEquals(1, engine.framesInUse(), "only the zero frame is in use");
            RefusingMapping[] mapping = new RefusingMapping[1];
            Guest guest = mapped(engine, domain, "vm", pages, mapping);
            guest.write((long) (pages - 1) * PAGE, content(3), 0, PAGE);
            assertArrayEquals(content(3), read(guest, (long) (pages - 1) * PAGE));
            EngineInvariants.assertConsistent(engine, null, "after the second try");
        }
    }

    /**
     * A destroy whose mapping the host will not take down leaves the guest live and unchanged: still
     * listed, its merged and private pages reading as before, the counters and frames as they were;
     * the next destroy goes through and frees what the guest held.
     */
    @Test
    void aDestroyWhoseUnmapIsRefusedLeavesTheGuestLiveAndCanBeRetried() {
        try (DedupEngine engine = engine()) {
            MergeDomain domain = engine.createDomain("d");
            RefusingMapping[] map = new RefusingMapping[1];
            Guest vm = mapped(engine, domain, "vm", 4, map);
            Guest twin = engine.createGuest(domain, "twin", 4L * PAGE);
            for (Guest g : new Guest[] {vm, twin}) {
                g.write(0, content(3), 0, PAGE);                // merges with the twin's page
            }
            vm.write(PAGE, content(5), 0, PAGE);                // the guest's own
            engine.scanner().scanFullPass();
            engine.scanner().scanFullPass();
            assertEquals(1, engine.counters().pagesSharing(), "the two pages share a frame");
            EngineCounters before = engine.counters();
            long framesBefore = engine.framesInUse();
            map[0].refuseUnmap = true;
            DedupException refused = assertThrows(DedupException.class, vm::destroy);
            assertEquals(DedupException.Kind.HOST_REFUSED, refused.kind());
            assertTrue(refused.getMessage().startsWith("guest vm was not destroyed"), refused.getMessage());
            assertFalse(vm.isDestroyed());
            assertEquals(java.util.List.of(vm, twin), engine.guests());
            assertEquals(before, engine.counters());
            assertEquals(framesBefore, engine.framesInUse());
            assertArrayEquals(content(3), read(vm, 0));
            assertArrayEquals(content(5), read(vm, PAGE));
            EngineInvariants.assertConsistent(engine, null, "after the refused destroy");
            vm.write(2L * PAGE, content(7), 0, PAGE);           // and it is still writable
            assertArrayEquals(content(7), read(vm, 2L * PAGE));

            map[0].refuseUnmap = false;
            vm.destroy();
            assertTrue(vm.isDestroyed());
            assertEquals(java.util.List.of(twin), engine.guests());
            assertArrayEquals(content(3), read(twin, 0));
            EngineInvariants.assertConsistent(engine, null, "after the second destroy");
            twin.destroy();
            assertEquals(1, engine.framesInUse(), "only the zero frame is left");
        }
    }

    /**
     * A host that will not make a page writable again after a compare that found no twin (mprotect
     * failing with ENOMEM): the scan throws {@code HOST_REFUSED}, no page lock is left held, and the
     * page stays read-only until its next write fault makes it writable.
     */
    @Test
    void aRefusedUnprotectLeavesNoLockHeldAndTheNextWriteFaultMakesThePageWritable() {
        // Pages whose first bytes are 1 and 3 hash alike (and unlike the zero page): the compare decides.
        DedupEngine engine = DedupEngine.create(new EngineContext().poolBytes(8L << 20).warmFrames(0)
                .customHasher(new WeakHashers.Few(2)).conclude());
        boolean lockHeld = true;        // then closing would wait for it forever: the test fails instead of hanging
        try {
            MergeDomain domain = engine.createDomain("d");
            RefusingMapping[] first = new RefusingMapping[1];
            RefusingMapping[] second = new RefusingMapping[1];
            Guest vm = mapped(engine, domain, "vm", 2, first);
            Guest vm2 = mapped(engine, domain, "vm2", 2, second);
            vm.write(0, content(1), 0, PAGE);
            vm2.write(0, content(3), 0, PAGE);              // same key, other bytes: compared, not merged
            engine.scanner().scanFullPass();                // first visits: nothing is read
            first[0].refuseUnprotect = true;
            second[0].refuseUnprotect = true;
            DedupException refused = assertThrows(DedupException.class, () -> engine.scanner().scanFullPass());
            assertEquals(DedupException.Kind.HOST_REFUSED, refused.kind(), refused.getMessage());
            assertTrue(first[0].recorded.calls.contains("unprotect 0 refused"), first[0].recorded.calls::toString);
            assertFalse(vm.stripeOf(0).isWriteLocked(), "the candidate's page lock was released");
            assertFalse(vm2.stripeOf(0).isWriteLocked(), "the visited page's lock was released");
            lockHeld = false;
            assertFalse(first[0].recorded.writable[0], "left read-only by the refusal");

            first[0].refuseUnprotect = false;
            second[0].refuseUnprotect = false;
            vm.breakSharing(0);                             // the VMM's handling of the write fault that follows
            assertTrue(first[0].recorded.writable[0], "writable again after the write fault");
            assertArrayEquals(content(1), read(vm, 0));
            EngineInvariants.assertConsistent(engine, null, "after the refused unprotect");
        } finally {
            if (!lockHeld) {
                engine.close();
            }
        }
    }

    /**
     * A candidate whose write-protect the host refused was never made read-only, so it is not made
     * writable again: it was, and a refusal of that needless call replaced the refusal that happened.
     */
    @Test
    void aCandidateWhoseProtectWasRefusedIsNotUnprotected() {
        try (DedupEngine engine = engine()) {
            MergeDomain domain = engine.createDomain("d");
            RefusingMapping[] first = new RefusingMapping[1];
            RefusingMapping[] second = new RefusingMapping[1];
            mapped(engine, domain, "vm", 2, first).write(0, content(1), 0, PAGE);     // the candidate
            mapped(engine, domain, "vm2", 2, second).write(0, content(1), 0, PAGE);   // visited after it
            engine.scanner().scanFullPass();                // first visits: nothing is read
            first[0].throwOnProtect = true;
            first[0].refuseUnprotect = true;
            DedupException refused = assertThrows(DedupException.class, () -> engine.scanner().scanFullPass());
            assertTrue(refused.getMessage().startsWith("guest vm: the host refused to write-protect page 0 for a compare"),
                    refused.getMessage());
            assertFalse(first[0].recorded.calls.contains("unprotect 0 refused"), first[0].recorded.calls::toString);
            EngineInvariants.assertConsistent(engine, null, "after the refused protect");
        }
    }

    /**
     * A merge whose remap the host refused reports that refusal, with the refused clean-ups after it
     * attached: a refused unprotect in the clean-up replaced it, so the cause was lost.
     */
    @Test
    void aRefusedRemapIsReportedEvenWhenItsCleanUpIsRefusedToo() {
        try (DedupEngine engine = engine()) {
            MergeDomain domain = engine.createDomain("d");
            RefusingMapping[] first = new RefusingMapping[1];
            RefusingMapping[] second = new RefusingMapping[1];
            mapped(engine, domain, "vm", 2, first).write(0, content(1), 0, PAGE);
            mapped(engine, domain, "vm2", 2, second).write(0, content(1), 0, PAGE);
            engine.scanner().scanFullPass();
            second[0].refuse = true;                        // the visited page moves onto the candidate's frame
            first[0].refuseUnprotect = true;
            second[0].refuseUnprotect = true;
            DedupException refused = assertThrows(DedupException.class, () -> engine.scanner().scanFullPass());
            assertTrue(refused.getMessage().startsWith(
                    "guest vm2 (d, 2 pages): the host refused to remap page 0 onto a shared frame"),
                    refused.getMessage());
            assertEquals(2, refused.getSuppressed().length, "both refused unprotects, attached");
            EngineInvariants.assertConsistent(engine, null, "after the refused remap");
        }
    }

    /**
     * After the host refused to make a page writable again (here after the check that found a mapped
     * page all zeros, which gives its memory back in place), the next merge still write-protects its
     * page before it compares it: a KVM guest's store during an unprotected compare would go to a frame
     * the merge then frees.
     */
    @Test
    void theMergeAfterARefusedUnprotectStillProtectsItsPage() {
        try (DedupEngine engine = engine()) {
            MergeDomain domain = engine.createDomain("d");
            Guest s1 = engine.createGuest(domain, "s1", PAGE);
            Guest s2 = engine.createGuest(domain, "s2", PAGE);
            RefusingMapping[] map = new RefusingMapping[1];
            Guest vm = mapped(engine, domain, "vm", 2, map);
            s1.write(0, content(5), 0, PAGE);
            s2.write(0, content(5), 0, PAGE);               // a stable frame, once merged
            vm.write(0, new byte[PAGE], 0, PAGE);           // all zeros: protected, checked, given back
            vm.write(PAGE, content(5), 0, PAGE);            // merges into the stable frame
            engine.scanner().scanFullPass();                // first visits: nothing is read
            map[0].refuseUnprotect = true;
            int logged = map[0].recorded.calls.size();      // the merge may follow the refusal in its batch
            DedupException refused = assertThrows(DedupException.class, () -> engine.scanner().scanFullPass());
            assertEquals(DedupException.Kind.HOST_REFUSED, refused.kind(), refused.getMessage());
            map[0].refuseUnprotect = false;
            engine.scanner().scanFullPass();
            engine.scanner().scanFullPass();
            assertTrue(vm.isMerged(1), "vm's page 1 merged");
            List<String> calls = map[0].recorded.calls.subList(logged, map[0].recorded.calls.size());
            int refusal = calls.indexOf("unprotect 0 refused");
            int mapped = calls.indexOf("map 1 " + vm.frameAt(1) + " ro");
            int protect = calls.indexOf("protect 1");
            assertTrue(refusal >= 0 && protect > refusal && protect < mapped,
                    "after the refusal, protected before its compare: " + calls);
            assertArrayEquals(content(5), read(vm, PAGE));
            EngineInvariants.assertConsistent(engine, null, "after the merge");
        }
    }

    @Test
    void installWhoseMapFailsLeavesNoFreedFrameInTheRegistry() {
        try (DedupEngine engine = engine()) {
            MergeDomain domain = engine.createDomain("d");
            RefusingMapping[] map = new RefusingMapping[1];
            Guest loader = mapped(engine, domain, "loader", 2, map);
            Guest other = engine.createGuest(domain, "other", 2L * PAGE);
            Guest victim = engine.createGuest(domain, "victim", 2L * PAGE);
            byte[] block = content(3);
            byte[] digest = new ContentDigest().digest(MemorySegment.ofArray(block), 0);
            PageInstaller installer = engine.newPageInstaller();
            long before = engine.framesInUse();
            map[0].refuse = true;
            DedupException refused = assertThrows(DedupException.class, () -> installer.install(loader, 0, page ->
                    MemorySegment.copy(MemorySegment.ofArray(block), 0, page, 0, PAGE), digest, 0));
            assertEquals(DedupException.Kind.HOST_REFUSED, refused.kind());
            assertEquals(0, domain.residentFrames(), "nothing unmapped is registered");
            assertEquals(before, engine.framesInUse(), "the frame went back");
            other.write(0, content(9), 0, PAGE);            // takes the freed frame again
            if (engine.newPageInstaller().mapResident(victim, 0, digest, 0)) {
                assertArrayEquals(block, read(victim, 0), "a resident mapping holds the block, not another guest's bytes");
            }
            assertArrayEquals(content(9), read(other, 0));
            EngineInvariants.assertConsistent(engine, null, "after the refused install");
        }
    }

    @Test
    void mapResidentWhoseMapFailsTakesNoReference() {
        try (DedupEngine engine = engine()) {
            MergeDomain domain = engine.createDomain("d");
            Guest first = engine.createGuest(domain, "first", 2L * PAGE);
            RefusingMapping[] map = new RefusingMapping[1];
            Guest second = mapped(engine, domain, "second", 2, map);
            byte[] block = content(4);
            byte[] digest = new ContentDigest().digest(MemorySegment.ofArray(block), 0);
            PageInstaller installer = engine.newPageInstaller();
            assertTrue(installer.install(first, 0, page ->
                    MemorySegment.copy(MemorySegment.ofArray(block), 0, page, 0, PAGE), digest, 0));
            map[0].refuse = true;
            assertEquals(DedupException.Kind.HOST_REFUSED,
                    assertThrows(DedupException.class, () -> installer.mapResident(second, 0, digest, 0)).kind());
            assertEquals(0, engine.counters().pagesSharing(), "no sharing was counted");
            EngineInvariants.assertConsistent(engine, null, "after the refused mapResident");
            first.destroy();
            second.destroy();
            assertEquals(0, engine.counters().pagesShared(), "the frame left the index with its last mapper");
            assertEquals(1, engine.framesInUse(), "only the zero frame is left");
        }
    }

    @Test
    void mergeWhoseRemapFailsLeavesBothPagesAndTheIndexAsTheyWere() {
        try (DedupEngine engine = engine()) {
            MergeDomain domain = engine.createDomain("d");
            RefusingMapping[] a = new RefusingMapping[1];
            RefusingMapping[] b = new RefusingMapping[1];
            RefusingMapping[] c = new RefusingMapping[1];
            Guest ga = mapped(engine, domain, "a", 1, a);
            Guest gb = mapped(engine, domain, "b", 1, b);
            Guest gc = mapped(engine, domain, "c", 1, c);
            byte[] same = content(6);
            ga.write(0, same, 0, PAGE);
            gb.write(0, same, 0, PAGE);
            gc.write(0, same, 0, PAGE);
            engine.scanner().scanFullPass();
            b[0].refuse = true;          // the pair a+b cannot form: b's remap is refused
            c[0].refuse = true;          // and c cannot join a stable frame either
            for (int i = 0; i < 3; i++) {
                try {
                    engine.scanner().scanFullPass();
                } catch (DedupException refused) {
                    assertEquals(DedupException.Kind.HOST_REFUSED, refused.kind(), "the scanner reports the refusal");
                }
                EngineInvariants.assertConsistent(engine, null, "after refused merges, pass " + i);
            }
            assertArrayEquals(same, read(gb, 0));
            ga.destroy();
            gb.destroy();
            gc.destroy();
            assertEquals(0, engine.counters().pagesShared(), "pages_shared returns to 0");
            assertEquals(1, engine.framesInUse(), "no frame leaked");
            engine.knobs().maxPageSharing(8);           // refused while anything is still counted as shared
        }
    }

    @Test
    void unmergeWhoseRemapFailsLeaksNoFrame() {
        try (DedupEngine engine = engine()) {
            MergeDomain domain = engine.createDomain("d");
            RefusingMapping[] a = new RefusingMapping[1];
            RefusingMapping[] b = new RefusingMapping[1];
            Guest ga = mapped(engine, domain, "a", 1, a);
            Guest gb = mapped(engine, domain, "b", 1, b);
            byte[] same = content(8);
            ga.write(0, same, 0, PAGE);
            gb.write(0, same, 0, PAGE);
            engine.scanner().scanFullPass();
            engine.scanner().scanFullPass();
            assertEquals(1, engine.counters().pagesSharing(), "merged");
            a[0].refuse = true;
            b[0].refuse = true;
            engine.knobs().run(ScanKnobs.RUN_UNMERGE);
            DedupException refused = assertThrows(DedupException.class, () -> engine.scanner().doWork());
            assertEquals(DedupException.Kind.HOST_REFUSED, refused.kind(), "reported; nothing may leak");
            EngineInvariants.assertConsistent(engine, null, "after a refused unmerge");
            assertArrayEquals(same, read(ga, 0));
            ga.destroy();
            gb.destroy();
            assertEquals(1, engine.framesInUse(), "no frame leaked");
            assertFalse(engine.knobs().run() == ScanKnobs.RUN_UNMERGE, "the unmerge is not retried forever");
        }
    }

    /**
     * A write of 40 merged pages takes its 40 frames ahead of its pages; the host refuses the remap of
     * the 26th. The write stops there (the 25 pages before it hold the new bytes, the rest the old), the
     * refused page's frame and the 14 taken for the pages after it go back, nothing stays reserved, and
     * once both guests are gone only the zero frame is in use.
     */
    @Test
    void aLargeWriteWhoseRemapIsRefusedGivesBackTheFramesItTookAhead() {
        int pages = 40;
        try (DedupEngine engine = engine()) {
            MergeDomain domain = engine.createDomain("d");
            RefusingMapping[] a = new RefusingMapping[1];
            RefusingMapping[] b = new RefusingMapping[1];
            Guest ga = mapped(engine, domain, "a", pages, a);
            Guest gb = mapped(engine, domain, "b", pages, b);
            byte[] old = new byte[pages * PAGE];
            byte[] fresh = new byte[pages * PAGE];
            for (int p = 0; p < pages; p++) {
                System.arraycopy(content(p + 1), 0, old, p * PAGE, PAGE);
                System.arraycopy(content(p + 101), 0, fresh, p * PAGE, PAGE);
            }
            ga.write(0, old, 0, old.length);
            gb.write(0, old, 0, old.length);
            engine.scanner().scanFullPass();
            engine.scanner().scanFullPass();
            assertEquals(pages, engine.counters().pagesSharing(), "every page of a merged with b's");
            a[0].mapsBeforeRefusing.set(25);
            DedupException refused = assertThrows(DedupException.class, () -> ga.write(0, fresh, 0, fresh.length));
            assertEquals(DedupException.Kind.HOST_REFUSED, refused.kind());
            assertTrue(refused.getMessage().contains("remap page 25 "), refused.getMessage());
            EngineInvariants.assertConsistent(engine, null, "after the refused write");
            FramePool pool = engine.pool();
            assertEquals(pool.capacityFrames() - 1, pool.framesAvailable() + pool.framesInUse(), "nothing stays reserved");
            for (int p = 0; p < pages; p++) {
                assertArrayEquals(p < 25 ? content(p + 101) : content(p + 1), read(ga, (long) p * PAGE), "page " + p);
                assertArrayEquals(content(p + 1), read(gb, (long) p * PAGE), "b's page " + p);
            }
            ga.destroy();
            gb.destroy();
            assertEquals(1, engine.framesInUse(), "no frame leaked");
        }
    }
}
