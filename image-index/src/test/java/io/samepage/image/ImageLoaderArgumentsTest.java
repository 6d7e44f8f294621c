package io.samepage.image;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.samepage.core.DedupEngine;
import io.samepage.core.DedupException;
import io.samepage.core.EngineContext;
import io.samepage.core.Guest;
import io.samepage.core.MergeDomain;
import io.samepage.hashing.Pages;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * A load that could only fail part way is refused before it changes anything: a guest of another
 * engine, a guest address off a page, blocks that do not fit the guest. On one thread and on two.
 */
class ImageLoaderArgumentsTest {

    private static final int PAGE = Pages.PAGE_SIZE;

    @TempDir
    Path temp;

    /** A zero block, then a random one: the zero block is filled first, through the guest. */
    private ImageIndex zeroThenData() throws IOException {
        byte[] bytes = new byte[2 * PAGE];
        System.arraycopy(ImageIndexTest.randomBytes(PAGE, 5), 0, bytes, PAGE, PAGE);
        return ImageIndex.build(Files.write(temp.resolve("disk.img"), bytes));
    }

    private static byte[] contentOf(Guest guest) {
        byte[] bytes = new byte[(int) guest.sizeBytes()];
        guest.read(0, bytes, 0, bytes.length);
        return bytes;
    }

    /**
     * A loader made for one engine read another guest's private page into a guest of another engine
     * (its frame numbers named that engine's frames), and broke that engine's counters.
     */
    @ParameterizedTest(name = "{0} threads")
    @ValueSource(ints = {1, 2})
    void aGuestOfAnotherEngineIsRefused(int threads) throws IOException {
        try (DedupEngine mine = DedupEngine.create(new EngineContext().poolBytes(16L << 20).conclude());
                DedupEngine other = DedupEngine.create(new EngineContext().poolBytes(16L << 20).conclude());
                ImageIndex index = zeroThenData(); ImageLoader loader = new ImageLoader(index, mine, threads)) {
            MergeDomain domain = other.createDomain("b");
            other.createGuest(domain, "victim", 4L * PAGE).fill(0, 4L * PAGE, (byte) 0x5A);
            Guest target = other.createGuest(domain, "target", 4L * PAGE);
            target.fill(0, 4L * PAGE, (byte) 0x11);
            byte[] before = contentOf(target);
            long frames = other.framesInUse();
            DedupException refused = assertThrows(DedupException.class, () -> loader.loadAll(target, 0));
            assertEquals(DedupException.Kind.INVALID_ARGUMENT, refused.kind());
            assertEquals("guest target belongs to another engine than the loader of " + index.origin()
                    + "; load it with a loader of its own engine", refused.getMessage());
            assertArrayEquals(before, contentOf(target), "the guest is as it was");
            assertEquals(frames, other.framesInUse());
            assertEquals(0, other.counters().pagesShared());
        }
    }

    /** A load at an address off a page zeroed the guest's bytes there before its data block was refused. */
    @ParameterizedTest(name = "{0} threads")
    @ValueSource(ints = {1, 2})
    void anAddressOffAPageOrBlocksThatDoNotFitAreRefusedBeforeAnythingChanges(int threads) throws IOException {
        try (DedupEngine engine = DedupEngine.create(new EngineContext().poolBytes(16L << 20).conclude());
                ImageIndex index = zeroThenData(); ImageLoader loader = new ImageLoader(index, engine, threads)) {
            Guest guest = engine.createGuest(engine.createDomain("d"), "g", 3L * PAGE);
            guest.fill(0, 3L * PAGE, (byte) 0xFF);
            byte[] before = contentOf(guest);
            DedupException offPage = assertThrows(DedupException.class, () -> loader.loadAll(guest, 100));
            assertEquals("guest g: 0x64 is not the start of a page", offPage.getMessage());
            DedupException tooFar = assertThrows(DedupException.class, () -> loader.loadAll(guest, 2L * PAGE));
            assertEquals("guest g: 2 blocks at 0x2000 do not fit its 12288 bytes", tooFar.getMessage());
            assertThrows(DedupException.class, () -> loader.loadAll(guest, 4L * PAGE));
            assertThrows(DedupException.class, () -> loader.loadAll(guest, -PAGE));
            assertArrayEquals(before, contentOf(guest), "nothing was written");
            byte[] expected = Arrays.copyOf(new byte[0], 3 * PAGE);
            Arrays.fill(expected, 2 * PAGE, 3 * PAGE, (byte) 0xFF);
            System.arraycopy(ImageIndexTest.randomBytes(PAGE, 5), 0, expected, PAGE, PAGE);
            loader.loadAll(guest, 0);
            assertArrayEquals(expected, contentOf(guest), "and the load that fits loads");
        }
    }
}
