package io.samepage.core;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.samepage.hashing.Pages;
import java.time.Duration;
import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.IntConsumer;
import org.junit.jupiter.api.Test;

/**
 * The embedder access path ({@link GuestAccess}) on its own: widths and byte order, copy-on-write on
 * the first write, translations the scanner's merges must invalidate, and refused breaks that change
 * nothing.
 */
class GuestAccessTest {

    private static final int PAGE = Pages.PAGE_SIZE;

    private static DedupEngine engine(long poolPages, int warmFrames) {
        return DedupEngine.create(new EngineContext().poolBytes(poolPages * PAGE).warmFrames(warmFrames).hashSeed(9)
                .conclude());
    }

    private static byte[] content(int tag) {
        byte[] bytes = new byte[PAGE];
        new SplittableRandom(tag).nextBytes(bytes);
        return bytes;
    }

    private static byte[] read(Guest guest, long address, int length) {
        byte[] bytes = new byte[length];
        guest.read(address, bytes, 0, length);
        return bytes;
    }

    @Test
    void everyWidthReadsAndWritesLittleEndianAtAnyAlignmentAcrossPages() {
        try (DedupEngine engine = engine(64, 8)) {
            Guest guest = engine.createGuest(engine.createDomain("d"), "g", 4L * PAGE);
            GuestAccess access = guest.access();
            long[] addresses = {0, 1, 3, 4093, 4094, 4095, 4096, 2 * PAGE - 3, 4 * PAGE - 8};
            for (long at : addresses) {
                access.writeLong(at, 0x0102_0304_0506_0708L);
                byte[] expected = {8, 7, 6, 5, 4, 3, 2, 1};
                assertArrayEquals(expected, read(guest, at, 8), "writeLong at " + at);
                assertEquals(0x0102_0304_0506_0708L, access.readLong(at), "readLong at " + at);
                assertEquals(0x0506_0708, access.readInt(at));
                assertEquals(0x0708, access.readShort(at));
                assertEquals(8, access.readByte(at));
                access.writeInt(at, 0xA1B2_C3D4);
                access.writeShort(at + 4, (short) 0x1122);
                access.writeByte(at + 6, (byte) 0x33);
                assertArrayEquals(new byte[] {(byte) 0xD4, (byte) 0xC3, (byte) 0xB2, (byte) 0xA1, 0x22, 0x11, 0x33, 1},
                        read(guest, at, 8), "narrow writes at " + at);
            }
            byte[] bulk = content(1);
            access.write(PAGE / 2, bulk, 0, PAGE);      // spans two pages
            byte[] back = new byte[PAGE];
            access.read(PAGE / 2, back, 0, PAGE);
            assertArrayEquals(bulk, back);
            assertArrayEquals(bulk, read(guest, PAGE / 2, PAGE));
            assertThrows(DedupException.class, () -> access.readInt(4 * PAGE - 2), "past the end");
            assertThrows(DedupException.class, () -> access.writeByte(-1, (byte) 0), "before the start");
        }
    }

    @Test
    void firstWriteToAMergedPageBreaksSharingOnceAndLeavesItsTwinAlone() {
        try (DedupEngine engine = engine(64, 8)) {
            MergeDomain domain = engine.createDomain("d");
            Guest a = engine.createGuest(domain, "a", PAGE);
            Guest b = engine.createGuest(domain, "b", PAGE);
            byte[] bytes = content(2);
            a.write(0, bytes, 0, PAGE);
            b.write(0, bytes, 0, PAGE);
            engine.scanner().scanUntilStable(8);
            assertEquals(1, a.counters().mergingPages());
            GuestAccess access = a.access();
            assertEquals(bytes[100], access.readByte(100), "a read through the shared frame");
            long frames = engine.framesInUse();
            access.writeByte(100, (byte) (bytes[100] + 1));
            assertEquals(frames + 1, engine.framesInUse(), "the first write took one frame");
            assertEquals(0, a.counters().mergingPages());
            for (int i = 0; i < 50; i++) {
                access.writeInt(200 + 4 * i, i);
            }
            assertEquals(frames + 1, engine.framesInUse(), "later writes go to the cached private frame");
            assertArrayEquals(bytes, read(b, 0, PAGE), "the twin never sees a's writes");
            bytes[100]++;
            for (int i = 0; i < 50; i++) {
                bytes[200 + 4 * i] = (byte) i;
                bytes[201 + 4 * i] = 0;
                bytes[202 + 4 * i] = 0;
                bytes[203 + 4 * i] = 0;
            }
            assertArrayEquals(bytes, read(a, 0, PAGE));
            EngineInvariants.assertConsistent(engine, engine.context().newScannerHasher(), "after the writes");
        }
    }

    @Test
    void aCachedTranslationNeverReadsAFrameThatAMergeFreedAndAnotherGuestReused() {
        try (DedupEngine engine = engine(64, 0)) {     // no warm list: the freed frame is the next one taken
            MergeDomain domain = engine.createDomain("d");
            Guest a = engine.createGuest(domain, "a", PAGE);
            Guest b = engine.createGuest(domain, "b", PAGE);
            Guest other = engine.createGuest(domain, "other", 4L * PAGE);
            byte[] bytes = content(3);
            a.write(0, bytes, 0, PAGE);
            b.write(0, bytes, 0, PAGE);
            engine.scanner().scanFullPass();            // both hashed once: the next pass merges them
            GuestAccess readA = a.access();
            GuestAccess readB = b.access();
            assertEquals(bytes[5], readA.readByte(5));
            assertEquals(bytes[5], readB.readByte(5));
            engine.scanner().scanFullPass();
            assertEquals(1, engine.counters().pagesSharing(), "a and b merged: one of their frames was freed");
            byte[] foreign = new byte[PAGE];
            Arrays.fill(foreign, (byte) (bytes[5] + 1));
            for (int page = 0; page < 4; page++) {      // takes the freed frame back off the warm list
                other.write((long) page * PAGE, foreign, 0, PAGE);
            }
            assertEquals(bytes[5], readA.readByte(5), "a reads its own bytes, not another guest's");
            assertEquals(bytes[5], readB.readByte(5), "b reads its own bytes, not another guest's");
            assertArrayEquals(bytes, bulk(readA), "a's bulk read");
            assertArrayEquals(bytes, bulk(readB), "b's bulk read");
        }
    }

    /**
     * A frame leaves a page only after the page's epoch moved: here the frame's release stands for its
     * reuse (it fills the frame with foreign bytes), and meanwhile another thread reads the page through
     * its cached translation. That read must not return the foreign bytes: it sees the moved epoch and
     * waits for the page's lock, then reads the page's new bytes.
     */
    @Test
    void aFrameIsDroppedOnlyAfterThePageTableMovedTheEpochOfItsPage() throws InterruptedException {
        AtomicReference<IntConsumer> onRelease = new AtomicReference<>();
        FrameBacking.Factory hooked = frames -> new ForwardingBacking(frames) {
            @Override
            public void release(int frame) {
                super.release(frame);
                IntConsumer hook = onRelease.getAndSet(null);
                if (hook != null) {
                    hook.accept(frame);
                }
            }
        };
        try (DedupEngine engine = DedupEngine.create(new EngineContext().poolBytes(64L * PAGE).warmFrames(0)
                .frameBacking(hooked).hashSeed(9).conclude())) {
            Guest a = engine.createGuest(engine.createDomain("d"), "a", PAGE);
            byte[] bytes = content(7);
            bytes[5] = 1;
            a.write(0, bytes, 0, PAGE);
            GuestAccess access = a.access();
            AtomicInteger read = new AtomicInteger(-1);
            Thread cache = Thread.ofPlatform().start(() -> access.readByte(5));
            cache.join();
            Thread[] reader = new Thread[1];
            onRelease.set(frame -> {
                engine.pool().memory().asSlice(FramePool.offsetOf(frame), PAGE).fill((byte) 0x5A);
                reader[0] = Thread.ofPlatform().start(() -> read.set(access.readByte(5)));
                try {
                    reader[0].join(Duration.ofMillis(300));   // a correct reader waits for the page's lock
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            });
            a.fill(0, PAGE, (byte) 0);                  // drops the page's frame
            reader[0].join();
            assertEquals(0, read.get(), "the reader saw the page's new bytes, not the dropped frame's");
        }
    }

    @Test
    void aCachedWritableTranslationIsRevokedWhenTheScannerMergesThePage() {
        try (DedupEngine engine = engine(64, 8)) {
            MergeDomain domain = engine.createDomain("d");
            Guest a = engine.createGuest(domain, "a", PAGE);
            Guest b = engine.createGuest(domain, "b", PAGE);
            byte[] bytes = content(4);
            GuestAccess writeA = a.access();
            writeA.write(0, bytes, 0, PAGE);
            b.write(0, bytes, 0, PAGE);
            engine.scanner().scanFullPass();            // both hashed once
            engine.scanner().scanBatch(1);              // a is unchanged: it becomes b's merge candidate
            writeA.writeByte(9, bytes[9]);              // a writable translation, cached; a stays the candidate
            engine.scanner().scanBatch(1);              // b pairs with a: a's own frame becomes the shared one
            assertEquals(1, a.counters().mergingPages(), "a merged while its writable translation was cached");
            writeA.writeByte(9, (byte) (bytes[9] + 1));
            assertArrayEquals(bytes, read(b, 0, PAGE), "the store did not go into the shared frame");
            assertEquals((byte) (bytes[9] + 1), a.readByte(9));
            EngineInvariants.assertConsistent(engine, engine.context().newScannerHasher(), "after the write");
        }
    }

    @Test
    void aWriteThroughTheAccessPathIsSeenByTheScannerAfterItsRehash() {
        try (DedupEngine engine = engine(64, 8)) {
            engine.knobs().useZeroPages(true);
            MergeDomain domain = engine.createDomain("d");
            Guest a = engine.createGuest(domain, "a", PAGE);
            GuestAccess access = a.access();
            access.writeByte(0, (byte) 1);
            access.writeByte(0, (byte) 0);              // all zeros again: the scanner remembers it saw zeros
            engine.scanner().scanFullPass();
            engine.scanner().scanFullPass();
            access.writeByte(1, (byte) 5);              // through the cached translation, after the rehash
            engine.scanner().scanFullPass();
            engine.scanner().scanFullPass();
            assertEquals(5, access.readByte(1), "a page written after its rehash is not merged into zeros");
            assertEquals(5, a.readByte(1));
        }
    }

    @Test
    void aBreakThePoolRefusesChangesNothing() {
        try (DedupEngine engine = engine(4, 0)) {
            MergeDomain domain = engine.createDomain("d");
            Guest a = engine.createGuest(domain, "a", 8L * PAGE);
            byte[] bytes = content(5);
            a.write(0, bytes, 0, PAGE);
            a.write(PAGE, bytes, 0, PAGE);
            a.write(2 * PAGE, bytes, 0, PAGE);
            GuestAccess access = a.access();
            DedupException e = assertThrows(DedupException.class, () -> access.writeByte(3 * PAGE, (byte) 1));
            assertEquals(DedupException.Kind.POOL_EXHAUSTED, e.kind());
            assertEquals(0, access.readByte(3 * PAGE), "nothing was written");
            assertEquals(4, engine.framesInUse());
            EngineInvariants.assertConsistent(engine, engine.context().newScannerHasher(), "after the refusal");
        }
    }

    @Test
    void aBreakTheHostRefusesChangesNothing() {
        try (DedupEngine engine = engine(64, 0)) {
            MergeDomain domain = engine.createDomain("d");
            FailingMappingTest.RefusingMapping[] mapping = new FailingMappingTest.RefusingMapping[1];
            Guest a = engine.createGuest(domain, "a", PAGE, (first, count) -> mapping[0] =
                    new FailingMappingTest.RefusingMapping(first, count));
            Guest b = engine.createGuest(domain, "b", PAGE);
            byte[] bytes = content(6);
            a.write(0, bytes, 0, PAGE);
            b.write(0, bytes, 0, PAGE);
            engine.scanner().scanUntilStable(8);
            assertEquals(1, a.counters().mergingPages());
            GuestAccess access = a.access();
            long frames = engine.framesInUse();
            mapping[0].refuse = true;
            DedupException e = assertThrows(DedupException.class, () -> access.writeInt(8, 77));
            assertEquals(DedupException.Kind.HOST_REFUSED, e.kind());
            assertEquals(frames, engine.framesInUse(), "the frame the break took went back");
            assertEquals(1, a.counters().mergingPages(), "still merged");
            assertArrayEquals(bytes, bulk(access), "nothing was written");
            EngineInvariants.assertConsistent(engine, engine.context().newScannerHasher(), "after the refusal");
            mapping[0].refuse = false;
            access.writeInt(8, 77);
            assertEquals(77, access.readInt(8));
            assertArrayEquals(bytes, read(b, 0, PAGE));
        }
    }

    @Test
    void anAccessToADestroyedGuestThrowsDestroyed() {
        try (DedupEngine engine = engine(64, 8)) {
            Guest a = engine.createGuest(engine.createDomain("d"), "a", PAGE);
            GuestAccess access = a.access();
            access.writeByte(0, (byte) 1);
            assertEquals(1, access.readByte(0));
            a.destroy();
            assertEquals(DedupException.Kind.DESTROYED, assertThrows(DedupException.class, () -> access.readByte(0)).kind());
            assertEquals(DedupException.Kind.DESTROYED,
                    assertThrows(DedupException.class, () -> access.writeByte(0, (byte) 2)).kind());
        }
    }

    private static byte[] bulk(GuestAccess access) {
        byte[] bytes = new byte[PAGE];
        access.read(0, bytes, 0, PAGE);
        return bytes;
    }
}
