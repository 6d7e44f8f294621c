package io.samepage.linux;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * Finds the page frame numbers of the kernel's shared zero page and huge zero page, so that a page of
 * another process that maps one of them (an anonymous page read but never written) is not counted as
 * resident memory: it has no RAM of its own.
 *
 * <p>How: map 4 MiB of private anonymous memory read-only, read one byte from each of two 4 KiB pages
 * (the kernel maps its zero page there) and one from a 2 MiB-aligned part with {@code MADV_HUGEPAGE}
 * (the huge zero page, if transparent huge pages and {@code use_zero_page} are on), look them up in
 * {@code /proc/self/pagemap}, unmap. The kernel shows frame numbers only to CAP_SYS_ADMIN; without it
 * the probe finds nothing, and such pages count as resident zero pages.
 *
 * <p>Not every kernel maps the zero page on a read fault: some (e.g. guest kernels booted with
 * {@code pvm_no_zero_page=1}) allocate a fresh zeroed page for every read, which is then real resident
 * memory. So the probe only accepts a frame that both small pages map and that is not exclusively
 * mapped; two fresh pages never share a frame. Otherwise it finds nothing, rather than taking the frame
 * of a private page that is freed at unmap and may later hold anything.
 *
 * <p>The answer is computed once and kept: the zero page never moves, and once this process has mapped
 * the huge zero page the kernel keeps it allocated until this process exits.
 *
 * <p>Thread safe.
 */
// Restricted FFM methods are this package's purpose; each call site says why it is safe.
@SuppressWarnings("restricted")
public final class ZeroPageProbe {

    /** What the probe found; -1 for a frame it could not find. */
    public record Frames(long zeroPage, long hugeZeroPageFirst) {

        /** Frames in the huge zero page: 2 MiB of 4 KiB pages. */
        public static final long HUGE_PAGES = 512;

        /** True if {@code frame} is the zero page or one of the huge zero page's frames. */
        public boolean isZero(long frame) {
            return frame > 0 && (frame == zeroPage
                    || (hugeZeroPageFirst > 0 && frame >= hugeZeroPageFirst && frame < hugeZeroPageFirst + HUGE_PAGES));
        }
    }

    private static final int PAGE = 4096;
    private static final long HUGE = 2L << 20;
    private static final long SPAN = 2 * HUGE;
    private static final Frames NONE = new Frames(-1, -1);
    private static final Path USE_ZERO_PAGE = Path.of("/sys/kernel/mm/transparent_hugepage/use_zero_page");

    private static volatile Frames found;

    private ZeroPageProbe() {
    }

    /** The zero frames of this boot, probed on the first call. Never throws: {@code (-1, -1)} if unknown. */
    public static Frames frames() {
        Frames frames = found;
        if (frames == null) {
            synchronized (ZeroPageProbe.class) {
                frames = found;
                if (frames == null) {
                    frames = probe();
                    found = frames;
                }
            }
        }
        return frames;
    }

    private static Frames probe() {
        if (!Libc.bound("mmap", "madvise", "munmap")) {
            return NONE;
        }
        long base;
        try {
            // Safe: a null hint never replaces an existing mapping; read-only, private, anonymous, no
            // reserve: nothing is committed until read, and the result is checked before any use.
            base = Libc.mmap(0L, SPAN, Abi.PROT_READ, Abi.MAP_PRIVATE | Abi.MAP_ANONYMOUS | Abi.MAP_NORESERVE,
                    -1, 0L);
        } catch (IllegalStateException e) {
            return NONE;
        }
        if (base < 0) {
            return NONE;
        }
        try {
            long huge = (base + HUGE - 1) & -HUGE;
            // Two 4 KiB pages outside the huge range: before it if there is room, else after it.
            long small = huge - base >= 2 * PAGE ? base : huge + HUGE;
            boolean tryHuge = hugeZeroPageEnabled();
            // Safe: [base, base + SPAN) is the mapping just made for this probe and unmapped only below,
            // after the last access; every offset read is inside it.
            MemorySegment memory = MemorySegment.ofAddress(base).reinterpret(SPAN);
            // Safe: both ranges lie inside the mapping; madvise only changes how it is backed.
            int advised = Libc.madvise(memory.asSlice(small - base, 2 * PAGE), Abi.MADV_NOHUGEPAGE);
            if (tryHuge) {
                advised |= Libc.madvise(memory.asSlice(huge - base, HUGE), Abi.MADV_HUGEPAGE);
            }
            if (advised != 0) {
                return NONE;
            }
            byte smallByte = (byte) (memory.get(ValueLayout.JAVA_BYTE, small - base)
                    | memory.get(ValueLayout.JAVA_BYTE, small + PAGE - base));
            byte hugeByte = tryHuge ? memory.get(ValueLayout.JAVA_BYTE, huge - base) : 0;
            if (smallByte != 0 || hugeByte != 0) {
                return NONE;
            }
            return lookUp(small, tryHuge ? huge : -1);
        } catch (IOException | RuntimeException e) {
            return NONE;
        } finally {
            try {
                // Safe: exactly the address and length mmap returned, after the last access to it.
                Libc.munmap(base, SPAN);
            } catch (IllegalStateException notUnmapped) {
                // A failed munmap leaves 4 MiB of never-written address space mapped: harmless.
            }
        }
    }

    /** Reads this process's pagemap entries for the probe pages. */
    private static Frames lookUp(long small, long huge) throws IOException {
        try (FileChannel pagemap = FileChannel.open(Path.of("/proc/self/pagemap"), StandardOpenOption.READ)) {
            long first = entry(pagemap, small);
            long zero = PageMapEntry.frame(first);
            // The zero page is shared by every such page; a kernel that allocates on read faults gives
            // each page its own, exclusively mapped frame.
            if (zero <= 0 || PageMapEntry.exclusive(first)
                    || PageMapEntry.frame(entry(pagemap, small + PAGE)) != zero) {
                return NONE;
            }
            long hugeFirst = -1;
            if (huge >= 0) {
                long hugeEntry = entry(pagemap, huge);
                long firstFrame = PageMapEntry.frame(hugeEntry);
                // A freshly allocated huge page would be exclusively mapped; the huge zero page never is.
                if (firstFrame > 0 && firstFrame != zero && !PageMapEntry.exclusive(hugeEntry)
                        && PageMapEntry.frame(entry(pagemap, huge + PAGE)) == firstFrame + 1) {
                    hugeFirst = firstFrame;
                }
            }
            return new Frames(zero, hugeFirst);
        }
    }

    /** The raw pagemap entry of {@code address}; 0 (not present) if the read comes back short. */
    private static long entry(FileChannel pagemap, long address) throws IOException {
        ByteBuffer one = ByteBuffer.allocate(8).order(ByteOrder.nativeOrder());
        while (one.hasRemaining()) {
            if (pagemap.read(one, (address >>> 12) * 8 + one.position()) <= 0) {
                return 0;
            }
        }
        return one.getLong(0);
    }

    private static boolean hugeZeroPageEnabled() {
        try {
            return Files.readString(USE_ZERO_PAGE).trim().equals("1");
        } catch (IOException | RuntimeException e) {
            return false;
        }
    }
}
