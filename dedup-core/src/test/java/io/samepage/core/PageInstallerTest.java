package io.samepage.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.samepage.hashing.ContentDigest;
import io.samepage.hashing.Pages;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Consumer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** Loading by identity: verified installs, resident mapping without reads, and the registry's lifetime. */
class PageInstallerTest {

    private static final int PAGE = Pages.PAGE_SIZE;

    private final DedupEngine engine = DedupEngine.create(new EngineContext().poolBytes(16L << 20).hashSeed(3).conclude());
    private final PageInstaller installer = engine.newPageInstaller();

    @AfterEach
    void close() {
        engine.close();
    }

    private static byte[] block(int tag) {
        byte[] bytes = new byte[PAGE];
        Arrays.fill(bytes, (byte) tag);
        bytes[PAGE - 1] = 1;
        return bytes;
    }

    private static byte[] digestOf(byte[] bytes) {
        return new ContentDigest().digest(MemorySegment.ofArray(bytes), 0);
    }

    private static PageInstaller.PageFill copyOf(byte[] bytes, AtomicInteger reads) {
        return page -> {
            reads.incrementAndGet();
            MemorySegment.copy(MemorySegment.ofArray(bytes), 0, page, 0, PAGE);
        };
    }

    /**
     * An installer refuses a guest of another engine before it takes a frame: its frames are its own
     * pool's, so one mapped into a guest of another engine named some frame of that pool, and the guest
     * read another guest's private page (an image loader made for one engine, loading another's guest).
     */
    @Test
    void aGuestOfAnotherEngineIsRefusedAndNothingChanges() {
        try (DedupEngine other = DedupEngine.create(new EngineContext().poolBytes(16L << 20).hashSeed(3).conclude())) {
            MergeDomain domain = other.createDomain("b");
            Guest victim = other.createGuest(domain, "victim", 4L * PAGE);
            victim.fill(0, 4L * PAGE, (byte) 0x5A);
            Guest target = other.createGuest(domain, "target", 4L * PAGE);
            byte[] bytes = block(7);
            byte[] digest = digestOf(bytes);
            long framesHere = engine.framesInUse();
            long framesThere = other.framesInUse();
            DedupException refused = assertThrows(DedupException.class,
                    () -> installer.install(target, 0, copyOf(bytes, new AtomicInteger()), digest, 0));
            assertEquals(DedupException.Kind.INVALID_ARGUMENT, refused.kind());
            assertEquals("guest target belongs to another engine than this installer's; load it with an installer "
                    + "of its own engine", refused.getMessage());
            installer.install(engine.createGuest(engine.createDomain("a"), "a", PAGE), 0, copyOf(bytes, new AtomicInteger()),
                    digest, 0);
            assertThrows(DedupException.class, () -> installer.mapResident(target, 0, digest, 0), "resident here, not there");
            assertEquals(0, target.readByte(0), "the target reads as it was");
            assertEquals(framesHere + 1, engine.framesInUse(), "only the own guest's install took a frame");
            assertEquals(framesThere, other.framesInUse());
            EngineInvariants.assertConsistent(other, null, "the other engine after the refusals");
            EngineInvariants.assertConsistent(engine, null, "this engine after the refusals");
        }
    }

    @Test
    void aResidentBlockIsMappedWithoutReadingAndWritesStayPrivate() {
        MergeDomain domain = engine.createDomain("tenant");
        Guest first = engine.createGuest(domain, "first", 2 * PAGE);
        Guest second = engine.createGuest(domain, "second", 2 * PAGE);
        byte[] content = block(5);
        byte[] digest = digestOf(content);
        AtomicInteger reads = new AtomicInteger();
        assertFalse(installer.mapResident(first, PAGE, digest, 0), "nothing is resident yet");
        assertTrue(installer.install(first, PAGE, copyOf(content, reads), digest, 0));
        long frames = engine.framesInUse();
        assertTrue(installer.mapResident(second, 0, digest, 0));
        assertEquals(1, reads.get(), "the second guest read nothing");
        assertEquals(frames, engine.framesInUse(), "and took no frame");
        assertEquals(1, engine.counters().pagesShared());
        assertEquals(1, engine.counters().pagesSharing());
        second.write(10, new byte[] {42}, 0, 1);
        assertEquals(42, second.readByte(10));
        assertEquals(5, first.readByte(PAGE + 10), "the write broke sharing, it did not leak");
        assertEquals(1, domain.residentFrames());
    }

    @Test
    void aBlockWhoseBytesDoNotMatchItsDigestIsNeverInstalled() {
        Guest guest = engine.createGuest(engine.createDomain("tenant"), "g", PAGE);
        guest.write(0, block(9), 0, PAGE);
        long frames = engine.framesInUse();
        byte[] wrongDigest = digestOf(block(6));
        assertFalse(installer.install(guest, 0, copyOf(block(7), new AtomicInteger()), wrongDigest, 0));
        assertEquals(9, guest.readByte(0), "the page keeps its old bytes");
        assertEquals(frames, engine.framesInUse(), "the frame went back");
        assertFalse(installer.mapResident(guest, 0, wrongDigest, 0));
        assertFalse(installer.mapResident(guest, 0, digestOf(block(7)), 0), "unverified bytes are not registered");
    }

    @Test
    void aFillThatFailsChangesNothing() {
        Guest guest = engine.createGuest(engine.createDomain("tenant"), "g", PAGE);
        long frames = engine.framesInUse();
        assertThrows(IllegalStateException.class, () -> installer.install(guest, 0, page -> {
            throw new IllegalStateException("disk on fire");
        }, digestOf(block(1)), 0));
        assertEquals(frames, engine.framesInUse());
        assertEquals(0, guest.readByte(0));
    }

    @Test
    void aFrameLeavesTheRegistryWhenItsLastMappingGoes() {
        MergeDomain domain = engine.createDomain("tenant");
        Guest guest = engine.createGuest(domain, "g", PAGE);
        byte[] content = block(3);
        byte[] digest = digestOf(content);
        installer.install(guest, 0, copyOf(content, new AtomicInteger()), digest, 0);
        guest.write(0, new byte[] {1}, 0, 1);
        assertEquals(0, domain.residentFrames());
        assertEquals(0, engine.counters().pagesShared());
        Guest other = engine.createGuest(domain, "other", PAGE);
        assertFalse(installer.mapResident(other, 0, digest, 0), "the changed frame is no longer resident");
    }

    @Test
    void residentContentIsOnlyMappedWithinItsDomain() {
        Guest a = engine.createGuest(engine.createDomain("one"), "a", PAGE);
        Guest b = engine.createGuest(engine.createDomain("two"), "b", PAGE);
        byte[] content = block(8);
        byte[] digest = digestOf(content);
        installer.install(a, 0, copyOf(content, new AtomicInteger()), digest, 0);
        assertFalse(installer.mapResident(b, 0, digest, 0));
    }

    @Test
    void theScannerMergesAWrittenPageIntoAnInstalledFrame() {
        MergeDomain domain = engine.createDomain("tenant");
        Guest loaded = engine.createGuest(domain, "loaded", PAGE);
        Guest written = engine.createGuest(domain, "written", PAGE);
        byte[] content = block(4);
        installer.install(loaded, 0, copyOf(content, new AtomicInteger()), digestOf(content), 0);
        written.write(0, content, 0, PAGE);
        engine.scanner().scanFullPass();
        engine.scanner().scanFullPass();
        assertEquals(1, engine.counters().pagesShared());
        assertEquals(1, engine.counters().pagesSharing());
    }

    @Test
    void aResidentFrameMapsAtMostMaxPageSharingPagesThenANewCopyTakesOver() {
        DedupEngine small = DedupEngine.create(new EngineContext().poolBytes(16L << 20).hashSeed(3).conclude());
        try {
            small.knobs().maxPageSharing(2);
            PageInstaller loader = small.newPageInstaller();
            MergeDomain domain = small.createDomain("tenant");
            byte[] content = block(2);
            byte[] digest = digestOf(content);
            AtomicInteger reads = new AtomicInteger();
            Guest[] guests = new Guest[5];
            for (int i = 0; i < guests.length; i++) {
                guests[i] = small.createGuest(domain, "g" + i, PAGE);
                if (!loader.mapResident(guests[i], 0, digest, 0)) {
                    assertTrue(loader.install(guests[i], 0, copyOf(content, reads), digest, 0));
                }
            }
            assertEquals(3, reads.get(), "frames of 2, 2 and 1 mappers");
            assertEquals(3, small.counters().pagesShared());
            assertEquals(2, small.counters().pagesSharing());
            assertEquals(1, domain.residentFrames(), "only the newest copy is registered");
            for (Guest guest : guests) {
                assertEquals(2, guest.readByte(7));
            }
        } finally {
            small.close();
        }
    }

    @Test
    void onlyWholePagesOfALiveGuestCanBeLoaded() {
        Guest guest = engine.createGuest(engine.createDomain("tenant"), "g", PAGE);
        byte[] digest = digestOf(block(1));
        assertThrows(DedupException.class, () -> installer.mapResident(guest, 100, digest, 0));
        assertThrows(DedupException.class, () -> installer.mapResident(guest, PAGE, digest, 0));
        guest.destroy();
        assertThrows(DedupException.class, () -> installer.install(guest, 0, p -> { }, digest, 0));
    }

    /**
     * Frames taken ahead: the installs that follow fill them, in the order taken, a mismatch gives its
     * frame back, and {@link PageInstaller#returnFramesAhead()} gives back the rest, so the frames in use
     * are as if each install had taken its own. A pool that cannot spare as many takes none, and the
     * installs take theirs one at a time as before.
     */
    @Test
    void framesTakenAheadAreUsedFirstAndTheRestGoBack() {
        MergeDomain domain = engine.createDomain("tenant");
        Guest guest = engine.createGuest(domain, "g", 8L * PAGE);
        long before = engine.framesInUse();
        installer.takeFramesAhead(32);
        assertEquals(before + 32, engine.framesInUse(), "taken ahead");
        assertTrue(installer.install(guest, 0, copyOf(block(11), new AtomicInteger()), digestOf(block(11)), 0));
        assertFalse(installer.install(guest, PAGE, copyOf(block(12), new AtomicInteger()), digestOf(block(13)), 0));
        assertTrue(installer.install(guest, 2 * PAGE, copyOf(block(14), new AtomicInteger()), digestOf(block(14)), 0));
        assertEquals(before + 31, engine.framesInUse(), "the mismatch gave its frame back");
        installer.returnFramesAhead();
        assertEquals(before + 2, engine.framesInUse(), "two installed, the rest given back");
        assertEquals(11, guest.readByte(0));
        assertEquals(0, guest.readByte(PAGE), "the mismatch installed nothing");
        assertEquals(14, guest.readByte(2 * PAGE));
        installer.returnFramesAhead();
        assertEquals(before + 2, engine.framesInUse(), "returning twice gives back nothing more");

        try (DedupEngine small = DedupEngine.create(new EngineContext().poolBytes(24L * PAGE).hashSeed(3).conclude())) {
            PageInstaller smallInstaller = small.newPageInstaller();
            Guest g = small.createGuest(small.createDomain("tenant"), "g", PAGE);
            long smallBefore = small.framesInUse();
            smallInstaller.takeFramesAhead(32);
            assertEquals(smallBefore, small.framesInUse(), "23 frames cannot spare 32: none taken");
            assertTrue(smallInstaller.install(g, 0, copyOf(block(15), new AtomicInteger()), digestOf(block(15)), 0));
            assertEquals(smallBefore + 1, small.framesInUse());
            assertEquals(15, g.readByte(0));
        }
    }

    /** Injects {@code injected} through {@code seam} until the returned reference is cleared. */
    private static AtomicReference<OutOfMemoryError> failing(Consumer<Runnable> seam, OutOfMemoryError injected) {
        AtomicReference<OutOfMemoryError> fail = new AtomicReference<>(injected);
        seam.accept(() -> {
            OutOfMemoryError e = fail.get();
            if (e != null) {
                throw e;
            }
        });
        return fail;
    }

    /**
     * The stable index cannot grow for an installed frame (a second frame of a content already filed, the
     * duplicates' first lists): the install throws the {@link OutOfMemoryError} and nothing changed, the
     * page still its own. Before, the frame was filed after the page was mapped onto it: the page was left
     * stable on a frame the index did not hold ({@code merging_pages} counted, {@code pages_shared} not), and
     * its next write threw IllegalStateException ("frame N is not in the stable index").
     */
    @Test
    void anInstallWhoseStableIndexCannotGrowChangesNothing() {
        MergeDomain domain = engine.createDomain("d");
        Guest first = engine.createGuest(domain, "first", PAGE);
        Guest second = engine.createGuest(domain, "second", PAGE);
        byte[] bytes = block(7);
        byte[] digest = digestOf(bytes);
        assertTrue(installer.install(first, 0, copyOf(bytes, new AtomicInteger()), digest, 0));
        second.fill(0, PAGE, (byte) 3);
        long framesBefore = engine.framesInUse();
        String countersBefore = engine.counters().toString();
        OutOfMemoryError injected = new OutOfMemoryError("injected: the stable index cannot grow");
        AtomicReference<OutOfMemoryError> fail = failing(domain::beforeStableIndexGrows, injected);

        assertSame(injected, assertThrows(OutOfMemoryError.class,
                () -> installer.install(second, 0, copyOf(bytes, new AtomicInteger()), digest, 0)));
        EngineInvariants.assertConsistent(engine, null, "after the install the index could not grow for");
        assertEquals(3, second.readByte(0), "the page is its own still");
        assertEquals(framesBefore, engine.framesInUse(), "the frame taken went back");
        assertEquals(countersBefore, engine.counters().toString());
        second.fill(0, PAGE, (byte) 4);
        assertEquals(4, second.readByte(0));
        assertEquals(7, first.readByte(0), "the write stayed in its page");

        fail.set(null);
        assertTrue(installer.install(second, 0, copyOf(bytes, new AtomicInteger()), digest, 0));
        EngineInvariants.assertConsistent(engine, null, "once the index can grow");
        assertEquals(2, engine.counters().pagesShared(), "two frames of the content: " + engine.counters());
        assertEquals(7, second.readByte(0));
    }

    /**
     * The resident registry cannot grow for an installed frame: the install throws the {@link
     * OutOfMemoryError} and nothing changed, the frames installed before it registered and mapped.
     */
    @Test
    void anInstallWhoseRegistryCannotGrowChangesNothing() {
        MergeDomain domain = engine.createDomain("d");
        int pages = 80;
        Guest guest = engine.createGuest(domain, "g", (long) pages * PAGE);
        OutOfMemoryError injected = new OutOfMemoryError("injected: the registry cannot grow");
        AtomicReference<OutOfMemoryError> fail = failing(domain::beforeRegistryGrows, injected);
        int installed = 0;
        OutOfMemoryError thrown = null;
        while (thrown == null && installed < pages) {
            byte[] bytes = block(installed + 1);
            try {
                assertTrue(installer.install(guest, (long) installed * PAGE, copyOf(bytes, new AtomicInteger()),
                        digestOf(bytes), 0));
                installed++;
            } catch (OutOfMemoryError e) {
                thrown = e;
            }
        }
        assertSame(injected, thrown, "the registry had to grow within " + pages + " installs");
        EngineInvariants.assertConsistent(engine, null, "after the install the registry could not grow for");
        assertEquals(installed, domain.residentFrames());
        assertEquals(installed, engine.counters().pagesShared(), engine.counters().toString());
        assertEquals(0, guest.readByte((long) installed * PAGE), "the page failed is as it was");

        fail.set(null);
        for (int p = installed; p < pages; p++) {
            byte[] bytes = block(p + 1);
            assertTrue(installer.install(guest, (long) p * PAGE, copyOf(bytes, new AtomicInteger()), digestOf(bytes), 0));
        }
        EngineInvariants.assertConsistent(engine, null, "once the registry can grow");
        assertEquals(pages, domain.residentFrames());
        for (int p = 0; p < pages; p++) {
            byte[] bytes = block(p + 1);
            assertTrue(installer.mapResident(guest, (long) p * PAGE, digestOf(bytes), 0), "page " + p + " is resident");
        }
    }
}
