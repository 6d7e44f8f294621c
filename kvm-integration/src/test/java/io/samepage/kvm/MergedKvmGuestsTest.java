package io.samepage.kvm;

import static io.samepage.kvm.RealModeGuest.FIRST_SHARED;
import static io.samepage.kvm.RealModeGuest.ID_ADDRESS;
import static io.samepage.kvm.RealModeGuest.SHARED_PAGES;
import static io.samepage.kvm.RealModeGuest.WRITES_MERGED_PAGES;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.BitSet;
import java.util.List;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Several KVM guests with identical memory, merged by hand with the mapped-memory primitives (the
 * engine's scanner drives the same calls): the host's frames drop, each guest's write to a merged page
 * exits and is broken by the VMM, every guest reads back its own bytes, and the others are unaffected.
 */
@Tag("kvm")
@Timeout(30)
class MergedKvmGuestsTest {

    private static final int GUESTS = 3;
    private static final int PAGE = MappedGuestMemory.PAGE_BYTES;


    @BeforeEach
    void kvmIsUsable() {
        RealModeGuest.assumeKvm();
    }

    @Test
    void mergedGuestsBreakOnWriteAndEachSeesOnlyItsOwnBytes() {
        int spareFrames = GUESTS * 2;
        try (Kvm kvm = Kvm.open();
             MemfdFrames frames = MemfdFrames.create("merged-guests", GUESTS * RealModeGuest.PAGES + spareFrames)) {
            List<RealModeGuest> guests = new ArrayList<>();
            try {
                for (int g = 0; g < GUESTS; g++) {
                    RealModeGuest guest = new RealModeGuest(kvm, frames, g * RealModeGuest.PAGES, WRITES_MERGED_PAGES);
                    guest.memory.write(ID_ADDRESS, new byte[] {(byte) (0xA0 + g)}, 0, 1);
                    for (int p = FIRST_SHARED; p < FIRST_SHARED + SHARED_PAGES; p++) {
                        guest.memory.write((long) p * PAGE, content(p), 0, PAGE);
                    }
                    guests.add(guest);
                }
                long before = frames.allocatedBytes();
                merge(frames, guests);
                assertEquals(before - (long) (GUESTS - 1) * SHARED_PAGES * PAGE, frames.allocatedBytes(),
                        "the later guests' copies of the shared pages are freed");

                int nextSpare = GUESTS * RealModeGuest.PAGES;
                for (int g = 0; g < GUESTS; g++) {
                    RealModeGuest guest = guests.get(g);
                    List<Integer> outs = new ArrayList<>();
                    int breaks = 0;
                    for (VcpuExit exit = guest.vcpu.run(); !(exit instanceof VcpuExit.Hlt); exit = guest.vcpu.run()) {
                        switch (exit) {
                            case VcpuExit.Mmio mmio when mmio.write() -> {
                                breakAndApply(frames, guest.memory, mmio, nextSpare++);
                                breaks++;
                            }
                            case VcpuExit.Io io -> outs.add(io.data()[0] & 0xFF);
                            default -> throw new AssertionError("guest " + g + " exited unexpectedly: " + exit);
                        }
                    }
                    int id = 0xA0 + g;
                    assertEquals(2, breaks, "guest " + g + ": one copy-on-write exit per merged page written");
                    assertEquals(List.of(id, id, content(5)[0x20] & 0xFF), outs, "guest " + g + " reads its own bytes");
                    BitSet dirty = BitSet.valueOf(guest.vm.dirtyLog(0));
                    assertEquals(BitSet.valueOf(new long[] {1L << 4}), dirty,
                            "guest " + g + ": after the break its write to page 4 went straight to its own frame");
                }
                for (int g = 0; g < GUESTS; g++) {
                    byte[] page4 = new byte[PAGE];
                    guests.get(g).memory.read(4L * PAGE, page4, 0, PAGE);
                    byte[] expected = content(4);
                    expected[0x20] = (byte) (0xA0 + g);
                    expected[0x21] = (byte) (0xA0 + g);
                    assertArrayEquals(expected, page4, "guest " + g + "'s page 4 holds its own writes only");
                }
                byte[] shared = new byte[PAGE];
                frames.read(4, 0, shared, 0, PAGE);
                assertArrayEquals(content(4), shared, "the once shared frame is unchanged");
                assertEquals(before - (long) (GUESTS - 1) * SHARED_PAGES * PAGE + (long) GUESTS * 2 * PAGE,
                        frames.allocatedBytes(), "each break allocated one frame");
            } finally {
                guests.forEach(RealModeGuest::close);
            }
        }
    }

    /** Guest 0's frames become the shared frames; the others map them read-only and free their own. */
    private static void merge(MemfdFrames frames, List<RealModeGuest> guests) {
        MappedGuestMemory first = guests.getFirst().memory;
        for (int p = FIRST_SHARED; p < FIRST_SHARED + SHARED_PAGES; p++) {
            first.protect(p, false);
            int shared = first.frame(p);
            for (RealModeGuest other : guests.subList(1, guests.size())) {
                int own = other.memory.frame(p);
                if (!frames.equal(shared, own)) {
                    throw new AssertionError("page " + p + " differs: the hash only filters, equality decides");
                }
                other.memory.map(p, shared, false);
                frames.release(own);
            }
        }
    }

    /** The VMM's copy-on-write: copy the shared frame to a spare, map it writable, apply the guest's write. */
    private static void breakAndApply(MemfdFrames frames, MappedGuestMemory memory, VcpuExit.Mmio write, int spare) {
        int page = (int) (write.physAddr() / PAGE);
        frames.copy(memory.frame(page), spare);
        memory.map(page, spare, true);
        memory.write(write.physAddr(), write.data(), 0, write.data().length);
    }

    private static byte[] content(int page) {
        byte[] bytes = new byte[PAGE];
        Arrays.fill(bytes, (byte) (0xC0 + page));
        return bytes;
    }
}
