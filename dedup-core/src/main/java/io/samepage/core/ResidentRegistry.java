package io.samepage.core;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;
import org.agrona.collections.Int2IntHashMap;
import org.agrona.collections.IntArrayList;
import org.agrona.collections.Long2LongHashMap;

/**
 * A {@link MergeDomain}'s resident registry: SHA-256 digest to frame, for the stable frames loaded from
 * verified image blocks ({@link PageInstaller}). Lookups compare all 32 bytes of the digest: the first 8
 * find the frame, the full digests sit in an array by slot.
 *
 * <p>Failure atomicity: it grows only in {@link #makeRoom}, each part replaced whole, so {@link #register}
 * and {@link #unregister} allocate nothing; the domain makes room before it changes anything a lookup sees.
 *
 * <p>Thread safety: none; the owning domain's lock guards every call.
 */
final class ResidentRegistry {

    private static final long NONE = MergeDomain.NONE;
    private static final float LOAD = 0.65f;
    private static final VarHandle DIGEST_WORD =
            MethodHandles.byteArrayViewVarHandle(long[].class, ByteOrder.LITTLE_ENDIAN);

    /** The first 8 bytes of a digest to the frame. */
    private Long2LongHashMap frames = new Long2LongHashMap(64, LOAD, NONE);
    private Int2IntHashMap slotOfFrame = new Int2IntHashMap(-1);
    /** Runs before the registry allocates to grow: nothing, but a test's fault injection. */
    private Runnable beforeGrowth = () -> { };
    private final IntArrayList freeSlots = new IntArrayList();
    /** Four words of digest per slot. */
    private long[] digests = new long[4 * 64];
    private int slotsUsed;

    /** The registered frame whose content has SHA-256 {@code digest[offset..offset+32)}, or -1. */
    int frameOf(byte[] digest, int offset) {
        int frame = (int) frames.get(digestWord(digest, offset, 0));
        if (frame == NONE) {
            return frame;
        }
        int slot = slotOfFrame.get(frame);
        for (int w = 0; w < 4; w++) {
            if (digests[4 * slot + w] != digestWord(digest, offset, w)) {
                return (int) NONE;
            }
        }
        return frame;
    }

    /**
     * Runs {@code hook} from now on before the registry allocates to grow. For tests: a hook that throws
     * {@link OutOfMemoryError} stands for the allocation failing.
     */
    void beforeGrowth(Runnable hook) {
        beforeGrowth = hook;
    }

    /**
     * Makes room for one more frame, so that {@link #register} and every {@link #unregister} allocate
     * nothing until then. If the registry cannot grow it throws, and what it holds has not changed (a part
     * grown already stays grown).
     */
    void makeRoom() {
        boolean digestsFull = freeSlots.isEmpty() && 4 * (slotsUsed + 1) > digests.length;
        boolean framesFull = frames.size() + 1 > frames.resizeThreshold();
        boolean slotsFull = slotOfFrame.size() + 1 > slotOfFrame.resizeThreshold();
        if (!digestsFull && !framesFull && !slotsFull && freeSlots.capacity() > slotsUsed) {
            return;
        }
        beforeGrowth.run();
        freeSlots.ensureCapacity(slotsUsed + 1);      // room to free every slot: unregister never grows it
        if (digestsFull) {
            digests = java.util.Arrays.copyOf(digests, digests.length * 2);
        }
        if (framesFull) {
            Long2LongHashMap grown = new Long2LongHashMap(2 * frames.capacity(), LOAD, NONE);
            frames.forEachLong(grown::put);
            frames = grown;
        }
        if (slotsFull) {
            Int2IntHashMap grown = new Int2IntHashMap(2 * slotOfFrame.capacity(), LOAD, -1);
            slotOfFrame.forEachInt(grown::put);
            slotOfFrame = grown;
        }
    }

    /**
     * Registers {@code frame} under its verified digest. Another frame registered under the same first 8
     * digest bytes keeps its place (this one is then simply not registered). Room was made since the last
     * registration ({@link #makeRoom}).
     */
    void register(int frame, byte[] digest, int offset) {
        long key = digestWord(digest, offset, 0);
        if (frames.get(key) != NONE || slotOfFrame.get(frame) != -1) {
            return;
        }
        int slot;
        if (freeSlots.isEmpty()) {
            slot = slotsUsed++;
        } else {
            slot = freeSlots.popInt();
        }
        for (int w = 0; w < 4; w++) {
            digests[4 * slot + w] = digestWord(digest, offset, w);
        }
        slotOfFrame.put(frame, slot);
        frames.put(key, frame);
    }

    /**
     * Takes {@code frame} out, if it is registered. Allocates nothing. Lookups stop finding it first, and it
     * is known registered until its slot's entry goes, so a call cut short part way is finished by calling
     * again ({@link StableRelease}); cut short after that, its slot is not reused.
     */
    void unregister(int frame) {
        int slot = slotOfFrame.get(frame);
        if (slot == -1) {
            return;
        }
        long key = digests[4 * slot];
        if (frames.get(key) == frame) {
            frames.remove(key);
        }
        slotOfFrame.remove(frame);
        freeSlots.addInt(slot);
    }

    /** Calls {@code action} with every registered frame. */
    void forEach(java.util.function.IntConsumer action) {
        slotOfFrame.keySet().forEach(action::accept);
    }

    /** Frames registered. */
    int size() {
        return slotOfFrame.size();
    }

    /**
     * Bytes of the registry ({@link MetadataSizes}): its object (frames, slotOfFrame, beforeGrowth,
     * freeSlots, digests; slotsUsed) and its maps, list and digests, as allocated.
     */
    long metadataBytes() {
        return MetadataSizes.object(5 * MetadataSizes.REFERENCE + Integer.BYTES)
                + MetadataSizes.long2LongMap(frames.capacity()) + MetadataSizes.int2IntMap(slotOfFrame.capacity())
                + MetadataSizes.intList(freeSlots.capacity()) + MetadataSizes.array(digests.length, Long.BYTES);
    }

    private static long digestWord(byte[] digest, int offset, int word) {
        return (long) DIGEST_WORD.get(digest, offset + 8 * word);
    }
}
