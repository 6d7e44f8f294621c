package io.samepage.hashing;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * {@link SegmentViews}: views of the segment asked for, never of the one before it, even after an
 * {@link OutOfMemoryError} while it made that segment's table of views.
 */
class SegmentViewsTest {

    /**
     * A segment whose table of views would be an array of {@code Integer.MAX_VALUE} entries, which no JVM
     * makes ("Requested array size exceeds VM limit"): the table cannot be made, as with a full heap. It
     * starts at address 0, and is never read: a view is made of it only once its table is.
     */
    private static final MemorySegment NO_TABLE =
            MemorySegment.NULL.reinterpret(((long) Integer.MAX_VALUE - 1) << 30);

    @Test
    void aSegmentWhoseViewsCouldNotBeMadeIsNotGivenTheLastSegmentsViews() {
        SegmentViews views = new SegmentViews();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment last = arena.allocate(2 * Pages.PAGE_SIZE);
            last.set(ValueLayout.JAVA_BYTE, 0, (byte) 7);
            assertEquals(7, views.viewOf(last, 0).get(0));

            assertThrows(OutOfMemoryError.class, () -> views.viewOf(NO_TABLE, 0));
            // Before, the first attempt kept the segment and not its table: the second returned a view of
            // the last segment.
            assertThrows(OutOfMemoryError.class, () -> views.viewOf(NO_TABLE, 0), "a view of another segment");
        }
    }

    /** The hashers that view a segment through {@link SegmentViews}: one whose views failed hashes no other. */
    @Test
    void aHasherThatCouldNotViewASegmentNeverHashesTheLastSegmentsPageInItsPlace() {
        for (HashAlgorithm algorithm : List.of(HashAlgorithm.XXH64, HashAlgorithm.CRC32C)) {
            PageHasher hasher = algorithm.newHasher(1);
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment last = arena.allocate(2 * Pages.PAGE_SIZE);
                last.fill((byte) 7);
                hasher.hash(last, 0);
                assertThrows(OutOfMemoryError.class, () -> hasher.hash(NO_TABLE, 0), algorithm + ": its views");
                assertThrows(OutOfMemoryError.class, () -> hasher.hash(NO_TABLE, 0),
                        algorithm + ": hashed the last segment's page in its place");
            }
        }
    }
}
