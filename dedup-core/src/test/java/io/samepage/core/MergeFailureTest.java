package io.samepage.core;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.samepage.hashing.Pages;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.atomic.AtomicReference;
import org.agrona.LangUtil;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * A merge that fails partway, whatever it throws, leaves the engine consistent and no guest page written
 * in place while another maps its frame: an allocation of the stable index that fails while a new pair is
 * filed, a remap onto a stable frame that throws an error or a checked exception, and a release of freed
 * frames that fails in the middle of a merge. Each time the engine's invariants hold, a write to any
 * page reaches no other, the counters agree with the pages, and the merge goes through once the fault
 * is gone.
 */
class MergeFailureTest {

    private static final int PAGE = Pages.PAGE_SIZE;

    /** The part of the stable index that must grow to file a new pair's frame. */
    enum Growth {
        /** A second frame of a content whose first is full (max_page_sharing 2): the duplicates' first lists. */
        DUPLICATES,
        /** A content whose key another content holds (every page hashes alike): the collision tree's first node. */
        COLLISION_TREE,
        /** The 129th content chained: the bucket table doubles. */
        BUCKETS
    }

    static List<Arguments> growthsAndThreads() {
        List<Arguments> cases = new ArrayList<>();
        for (Growth growth : Growth.values()) {
            cases.add(Arguments.of(growth, 1));
            cases.add(Arguments.of(growth, 2));
        }
        return cases;
    }

    private static byte[] content(int tag) {
        byte[] bytes = new byte[PAGE];
        Arrays.fill(bytes, (byte) tag);
        bytes[1] = (byte) (tag >>> 8);
        bytes[7] = 1;
        return bytes;
    }

    private static byte[] read(Guest guest, int page) {
        byte[] bytes = new byte[PAGE];
        guest.read((long) page * PAGE, bytes, 0, PAGE);
        return bytes;
    }

    /**
     * The stable index cannot grow for the last new pair of a full scan: the scan throws the
     * {@link OutOfMemoryError}, and that pair is left as it was, unmerged, while every other pair merged.
     * Before, the index grew after one page of the pair was remapped onto the other's frame: the other
     * page was left private on a shared frame, so a write to it went in place into both guests' page.
     */
    @ParameterizedTest(name = "{0}, {1} scan thread(s)")
    @MethodSource("growthsAndThreads")
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aNewPairWhoseStableIndexCannotGrowIsNotMerged(Growth growth, int threads) {
        EngineContext context = new EngineContext().poolBytes(16L << 20).hashSeed(3);
        context.knobs().smartScan(false).scanThreads(threads);
        int pairs = 1;
        if (growth == Growth.DUPLICATES) {
            context.knobs().maxPageSharing(2);
        } else if (growth == Growth.COLLISION_TREE) {
            context.customHasher(new WeakHashers.Constant());
        } else {
            pairs = 128;
        }
        try (DedupEngine engine = DedupEngine.create(context.conclude())) {
            MergeDomain domain = engine.createDomain("tenant");
            List<byte[][]> written = new ArrayList<>();
            if (growth == Growth.BUCKETS) {
                for (int g = 0; g < 2; g++) {       // page i of each: content i
                    written.add(new byte[pairs + 1][]);
                    Arrays.setAll(written.get(g), p -> content(p + 1));
                }
            } else {
                for (int tag : growth == Growth.DUPLICATES ? new int[] {5, 5, 5, 5} : new int[] {5, 5, 6, 6}) {
                    written.add(new byte[][] {content(tag)});
                }
            }
            List<Guest> guests = new ArrayList<>();
            for (int g = 0; g < written.size(); g++) {
                Guest guest = engine.createGuest(domain, "vm" + g, (long) written.get(g).length * PAGE);
                for (int p = 0; p < written.get(g).length; p++) {
                    guest.write((long) p * PAGE, written.get(g)[p], 0, PAGE);
                }
                guests.add(guest);
            }
            engine.scanner().scanFullPass();        // first visits: no page merges yet
            OutOfMemoryError injected = new OutOfMemoryError("injected: the stable index cannot grow");
            AtomicReference<OutOfMemoryError> fail = new AtomicReference<>(injected);
            domain.beforeStableIndexGrows(() -> {
                OutOfMemoryError e = fail.get();
                if (e != null) {
                    throw e;
                }
            });
            assertSame(injected, assertThrows(OutOfMemoryError.class, () -> engine.scanner().scanFullPass()));

            EngineInvariants.assertConsistentWithHasherOf(context, engine, growth + ": after the failed filing");
            EngineCounters c = engine.counters();
            assertEquals(pairs, c.pagesShared(), "only the pairs filed before the failure share: " + c);
            assertEquals(pairs, c.pagesSharing(), c.toString());
            assertWritesStayInTheirPage(guests, growth + ": after the failed filing");

            fail.set(null);
            for (int g = 0; g < guests.size(); g++) {       // the contents they had, so the failed pair merges now
                for (int p = 0; p < guests.get(g).pageCount(); p++) {
                    guests.get(g).write((long) p * PAGE, written.get(g)[p], 0, PAGE);
                }
            }
            engine.scanner().scanUntilStable(16);
            EngineInvariants.assertConsistentWithHasherOf(context, engine, growth + ": once the index can grow");
            c = engine.counters();
            assertEquals(pairs + 1, c.pagesShared(), "every pair shares: " + c);
            assertEquals(pairs + 1, c.pagesSharing(), c.toString());
        }
    }

    /**
     * A mapped guest's remap onto a stable frame throws an error, or a checked exception a host written
     * in a language without checked exceptions throws undeclared: the scan throws it unchanged, and the
     * reference taken on the frame for the page is dropped again. Before, only an unchecked exception
     * dropped it: the frame kept one reference more than it had mappers, so it was never freed.
     */
    @ParameterizedTest
    @MethodSource("remapFailures")
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aRemapOntoAStableFrameThatThrowsKeepsNoReference(Throwable injected) {
        EngineContext context = new EngineContext().poolBytes(8L << 20).hashSeed(5);
        context.knobs().smartScan(false).scanThreads(1);
        try (DedupEngine engine = DedupEngine.create(context.conclude())) {
            MergeDomain domain = engine.createDomain("tenant");
            Guest a = engine.createGuest(domain, "a", PAGE);
            Guest b = engine.createGuest(domain, "b", PAGE);
            ThrowingMapping[] mapping = new ThrowingMapping[1];
            Guest vm = engine.createGuest(domain, "vm", PAGE, (first, pages) -> mapping[0] = new ThrowingMapping(first, pages));
            for (Guest guest : List.of(a, b, vm)) {
                guest.write(0, content(9), 0, PAGE);
            }
            engine.scanner().scanFullPass();
            mapping[0].toThrow = injected;
            assertSame(injected, assertThrows(Throwable.class, () -> engine.scanner().scanFullPass()));

            EngineInvariants.assertConsistentWithHasherOf(context, engine, injected + ": after the failed remap");
            EngineCounters c = engine.counters();
            assertEquals(1, c.pagesShared(), c.toString());
            assertEquals(1, c.pagesSharing(), "a and b share; vm does not: " + c);
            assertFalse(vm.isMerged(0));
            mapping[0].recorded.assertAgreesWith(vm, "after the failed remap");
            assertWritesStayInTheirPage(List.of(a, b, vm), injected + ": after the failed remap");

            mapping[0].toThrow = null;
            for (Guest guest : List.of(a, b, vm)) {
                guest.write(0, content(9), 0, PAGE);
            }
            engine.scanner().scanUntilStable(16);
            EngineInvariants.assertConsistentWithHasherOf(context, engine, injected + ": once the remap goes through");
            assertEquals(2, engine.counters().pagesSharing(), engine.counters().toString());
            assertTrue(vm.isMerged(0));
        }
    }

    static List<Throwable> remapFailures() {
        return List.of(new OutOfMemoryError("injected: mmap"), new java.io.IOException("injected: mmap, undeclared"));
    }

    /**
     * The merge that fills its visitor's list of freed frames ({@link FreedFrames#CAPACITY}) hands them
     * back to the pool, whose release of their memory throws an error (the pool frees them all the same,
     * zeroed in place, and counts the failure instead of throwing it: {@link FramePool}'s "Release
     * failures"). That merge, a new pair's or a zero page's, is whole and counted. Before, the frames were
     * handed back from within the remap: a pair was left half merged (the kept page private on a shared
     * frame), or a zero page merged but not counted in ksm_zero_pages; and then the scan threw the error.
     */
    @ParameterizedTest(name = "a pair merged last: {0}")
    @ValueSource(booleans = {true, false})
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aMergeWhoseFreedFramesCannotBeReleasedIsWhole(boolean pairLast) {
        OutOfMemoryError injected = new OutOfMemoryError("injected: process_madvise");
        AtomicReference<OutOfMemoryError> fail = new AtomicReference<>();
        EngineContext context = new EngineContext().poolBytes(32L << 20).warmFrames(0).hashSeed(7)
                .frameBacking(frames -> new ForwardingBacking(frames) {
                    @Override
                    public void release(int[] batch, int count) {
                        OutOfMemoryError e = fail.getAndSet(null);
                        if (e != null) {
                            throw e;
                        }
                        super.release(batch, count);
                    }
                });
        context.knobs().smartScan(false).scanThreads(1).useZeroPages(true);
        int zeros = FreedFrames.CAPACITY - (pairLast ? 1 : 0);
        try (DedupEngine engine = DedupEngine.create(context.conclude())) {
            Guest guest = engine.createGuest(engine.createDomain("tenant"), "vm", (zeros + 2L) * PAGE);
            guest.write(0, content(4), 0, PAGE);    // with the last page a pair, merged last; or no pair
            guest.write((zeros + 1L) * PAGE, content(pairLast ? 4 : 8), 0, PAGE);
            for (int p = 1; p <= zeros; p++) {
                guest.write((long) p * PAGE, new byte[PAGE], 0, PAGE);
            }
            engine.scanner().scanFullPass();
            fail.set(injected);
            engine.scanner().scanBatch(zeros + 2);
            assertNull(fail.get(), "the batch release was reached");

            EngineInvariants.assertConsistentWithHasherOf(context, engine, "after the failed release");
            EngineCounters c = engine.counters();
            assertEquals(zeros, c.ksmZeroPages(), c.toString());
            assertEquals(pairLast ? 1 : 0, c.pagesShared(), c.toString());
            assertEquals(pairLast ? 1 : 0, c.pagesSharing(), c.toString());
            assertEquals(FreedFrames.CAPACITY, c.frameReleaseFailures(), "the frames of the failed release");
            byte[] last = read(guest, zeros + 1);
            guest.write(0, content(2), 0, PAGE);
            assertArrayEquals(last, read(guest, zeros + 1), "a write to page 0 reaches no other page");
            EngineInvariants.assertConsistentWithHasherOf(context, engine, "after a write");
        }
    }

    /**
     * Writes take the last mappings of many stable frames while the stable index cannot allocate: every
     * write goes through, each frame whole out of the index and freed, and the next merge, whose filing
     * rebuilds the filter, throws the {@link OutOfMemoryError} and changes nothing. Before, the removal
     * that passed half the frames filed rebuilt the filter midway, after the frame was unlinked and before
     * the chain counts, {@code pages_shared} and the registry were, so the write threw and the frame leaked.
     */
    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void writesThatTakeStableFramesOutCannotFailMidway() {
        EngineContext context = new EngineContext().poolBytes(16L << 20).hashSeed(3);
        context.knobs().smartScan(false).scanThreads(1);
        int pairs = 200;
        try (DedupEngine engine = DedupEngine.create(context.conclude())) {
            MergeDomain domain = engine.createDomain("tenant");
            List<Guest> guests = new ArrayList<>();
            for (int g = 0; g < 2; g++) {
                Guest guest = engine.createGuest(domain, "vm" + g, (long) pairs * PAGE);
                for (int p = 0; p < pairs; p++) {
                    guest.write((long) p * PAGE, content(p + 1), 0, PAGE);
                }
                guests.add(guest);
            }
            engine.scanner().scanUntilStable(16);
            assertEquals(pairs, engine.counters().pagesShared(), engine.counters().toString());
            OutOfMemoryError injected = new OutOfMemoryError("injected: the stable index cannot allocate");
            AtomicReference<OutOfMemoryError> fail = new AtomicReference<>(injected);
            domain.beforeStableIndexGrows(() -> {
                OutOfMemoryError e = fail.get();
                if (e != null) {
                    throw e;
                }
            });

            List<String> thrown = new ArrayList<>();       // caught here: JUnit lets no OutOfMemoryError fail a test
            for (int p = 0; p < pairs; p++) {
                for (Guest guest : guests) {
                    try {
                        guest.fill((long) p * PAGE, PAGE, (byte) (p + 2));
                    } catch (OutOfMemoryError e) {
                        thrown.add(guest + " page " + p + ": " + e.getMessage());
                    }
                }
            }
            EngineInvariants.assertConsistentWithHasherOf(context, engine, "after the writes");
            assertEquals(List.of(), thrown, "no write throws");
            assertEquals(0, engine.counters().pagesShared(), "every frame out: " + engine.counters());
            assertEquals(0, engine.counters().pagesSharing(), engine.counters().toString());
            assertEquals((byte) (pairs + 1), guests.get(1).readByte((long) (pairs - 1) * PAGE));
            assertSame(injected, assertThrows(OutOfMemoryError.class, () -> engine.scanner().scanUntilStable(16)),
                    "the next filing rebuilds the filter first");
            EngineInvariants.assertConsistentWithHasherOf(context, engine, "after the filing that could not rebuild");
            assertWritesStayInTheirPage(guests, "after the filing that could not rebuild");

            fail.set(null);
            for (int p = 0; p < pairs; p++) {
                for (Guest guest : guests) {
                    guest.write((long) p * PAGE, content(p + 1), 0, PAGE);
                }
            }
            engine.scanner().scanUntilStable(16);
            EngineInvariants.assertConsistentWithHasherOf(context, engine, "once the index can allocate");
            assertEquals(pairs, engine.counters().pagesShared(), "every pair shares again: " + engine.counters());
        }
    }

    /**
     * Writes each page of {@code guests} in turn, the pages not merged first (one left private on a
     * shared frame would be written in place), and fails if the write changed what any other page reads.
     */
    private static void assertWritesStayInTheirPage(List<Guest> guests, String where) {
        List<int[]> pages = new ArrayList<>();
        for (int g = 0; g < guests.size(); g++) {
            for (int p = 0; p < guests.get(g).pageCount(); p++) {
                pages.add(new int[] {g, p});
            }
        }
        pages.sort((x, y) -> Boolean.compare(guests.get(x[0]).isMerged(x[1]), guests.get(y[0]).isMerged(y[1])));
        List<byte[]> before = new ArrayList<>();
        for (int[] at : pages) {
            before.add(read(guests.get(at[0]), at[1]));
        }
        for (int i = 0; i < pages.size(); i++) {
            Guest writer = guests.get(pages.get(i)[0]);
            int written = pages.get(i)[1];
            byte[] marker = content(0x4000 + i);
            writer.write((long) written * PAGE, marker, 0, PAGE);
            before.set(i, marker);
            for (int j = 0; j < pages.size(); j++) {
                Guest reader = guests.get(pages.get(j)[0]);
                assertArrayEquals(before.get(j), read(reader, pages.get(j)[1]), where + ": a write to "
                        + writer.name() + " page " + written + " changed what " + reader.name() + " page "
                        + pages.get(j)[1] + " reads");
            }
        }
    }

    /** A {@link RecordingMapping} whose {@link #map} throws {@link #toThrow}, changing nothing, while it is set. */
    static final class ThrowingMapping extends ForwardingMapping {
        volatile Throwable toThrow;

        ThrowingMapping(int first, int pages) {
            super(first, pages);
        }

        @Override
        public void map(int page, int frame, boolean writable) {
            Throwable t = toThrow;
            if (t != null) {
                LangUtil.rethrowUnchecked(t);
            }
            super.map(page, frame, writable);
        }
    }
}
