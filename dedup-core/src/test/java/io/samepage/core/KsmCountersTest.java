package io.samepage.core;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.samepage.hashing.ContentDigest;
import io.samepage.hashing.Pages;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.api.Test;

/** The counters mean what Linux KSM's mean (Documentation/admin-guide/mm/ksm.rst, mm/ksm.c). */
class KsmCountersTest {

    private static final int PAGE = Pages.PAGE_SIZE;

    private static byte[] content(int tag) {
        byte[] bytes = new byte[PAGE];
        Arrays.fill(bytes, (byte) tag);
        bytes[PAGE - 1] = 1;
        return bytes;
    }

    /**
     * The kernel selftest's max_page_sharing cases (tools/testing/selftests/mm/ksm_tests.c,
     * check_ksm_merge with assert_ksm_pages_count): D identical pages under max_page_sharing M give
     * full frames of M mappers; a leftover of one page has no partner and stays unshared.
     */
    @ParameterizedTest(name = "{0} pages, max_page_sharing {1}")
    @CsvSource({"257, 256, 1, 255, 1", "256, 256, 1, 255, 0", "512, 256, 2, 510, 0", "513, 256, 2, 510, 1",
            "514, 256, 3, 511, 0", "5, 2, 2, 2, 1", "4, 2, 2, 2, 0"})
    void identicalPagesFillFramesOfMaxPageSharingAndALeftoverStaysUnshared(int pages, int maxSharing, long shared,
                                                                          long sharing, long unshared) {
        EngineContext context = new EngineContext().poolBytes(16L << 20).hashSeed(2);
        context.knobs().maxPageSharing(maxSharing).smartScan(false);
        try (DedupEngine engine = DedupEngine.create(context.conclude())) {
            Guest guest = engine.createGuest(engine.createDomain("d"), "g", (long) pages * PAGE);
            byte[] same = content(5);
            for (int p = 0; p < pages; p++) {
                guest.write((long) p * PAGE, same, 0, PAGE);
            }
            for (int i = 0; i < 4; i++) {
                engine.scanner().scanFullPass();
            }
            EngineCounters c = engine.counters();
            assertEquals(shared, c.pagesShared(), "pages_shared " + c);
            assertEquals(sharing, c.pagesSharing(), "pages_sharing " + c);
            assertEquals(unshared, c.pagesUnshared(), "pages_unshared " + c);
            EngineInvariants.assertConsistent(engine, null, "after merging");
        }
    }

    @Test
    void installedPagesAreTrackedSoVolatileCountsTheRest() {
        try (DedupEngine engine = DedupEngine.create(new EngineContext().poolBytes(8L << 20).hashSeed(2).conclude())) {
            MergeDomain domain = engine.createDomain("d");
            Guest a = engine.createGuest(domain, "a", 4L * PAGE);
            Guest b = engine.createGuest(domain, "b", 4L * PAGE);
            byte[] block = content(3);
            byte[] digest = new ContentDigest().digest(MemorySegment.ofArray(block), 0);
            PageInstaller installer = engine.newPageInstaller();
            installer.install(a, 0, page -> MemorySegment.copy(MemorySegment.ofArray(block), 0, page, 0, PAGE), digest, 0);
            installer.mapResident(b, 0, digest, 0);
            a.write(PAGE, content(7), 0, PAGE);
            engine.scanner().scanFullPass();            // a's page 1 is visited once: volatile
            EngineCounters c = engine.counters();
            assertEquals(1, c.pagesShared());
            assertEquals(1, c.pagesSharing());
            assertEquals(0, c.pagesUnshared());
            assertEquals(1, c.pagesVolatile(), "the page visited once is volatile: " + c);
        }
    }

    @Test
    void stableFramesWhoseHashesCollideAreNoChain() {
        EngineContext context = new EngineContext().poolBytes(8L << 20).customHasher(new WeakHashers.Constant());
        try (DedupEngine engine = DedupEngine.create(context.conclude())) {
            Guest guest = engine.createGuest(engine.createDomain("d"), "g", 6L * PAGE);
            for (int p = 0; p < 6; p++) {
                guest.write((long) p * PAGE, content(p / 2), 0, PAGE);   // three contents, two pages each
            }
            engine.scanner().scanFullPass();
            engine.scanner().scanFullPass();
            EngineCounters c = engine.counters();
            assertEquals(3, c.pagesShared());
            assertEquals(3, c.pagesSharing());
            assertEquals(0, c.stableNodeChains(), "three contents under one hash are three stable nodes, no chain: " + c);
            assertEquals(0, c.stableNodeDups());
        }
    }

    @Test
    void aFullFrameAndItsDuplicateAreOneChainOfTwo() {
        EngineContext context = new EngineContext().poolBytes(8L << 20).customHasher(new WeakHashers.Constant());
        context.knobs().maxPageSharing(2);
        try (DedupEngine engine = DedupEngine.create(context.conclude())) {
            Guest guest = engine.createGuest(engine.createDomain("d"), "g", 6L * PAGE);
            for (int p = 0; p < 4; p++) {
                guest.write((long) p * PAGE, content(1), 0, PAGE);
            }
            guest.write(4L * PAGE, content(2), 0, PAGE);
            guest.write(5L * PAGE, content(2), 0, PAGE);
            engine.scanner().scanFullPass();
            engine.scanner().scanFullPass();
            EngineCounters c = engine.counters();
            assertEquals(3, c.pagesShared(), c.toString());
            assertEquals(1, c.stableNodeChains(), "content 1's two frames are one chain: " + c);
            assertEquals(2, c.stableNodeDups(), c.toString());
            EngineInvariants.assertConsistent(engine, null, "after merging");
        }
    }
}
