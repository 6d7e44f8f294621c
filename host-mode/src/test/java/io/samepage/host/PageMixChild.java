package io.samepage.host;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.SplittableRandom;

/**
 * The child JVM of {@link ProcessMemoryTest}: memory with a known content and known residency.
 *
 * <ul>
 *   <li>{@code mix}: 8 MiB ({@value #MIX_PAGES} pages) from {@code Arena.ofShared().allocate}, every
 *       page written: the first half 256 contents 4 times each, then 256 zero pages, the rest unique
 *       ({@link #expectedPage}).</li>
 *   <li>{@code sparse}: 1 MiB of private anonymous memory mapped without touching it (no huge pages),
 *       of which the first 64 pages are written (byte 0 of page p is p + 1), the next 64 only read (they
 *       map the kernel's zero page, unless the kernel allocates a zeroed page on a read fault), the last
 *       128 never touched: not present.</li>
 * </ul>
 * It prints {@code mix HEX}, {@code sparse HEX} and {@code ready}, then waits for its stdin to close.
 */
public final class PageMixChild {

    static final int PAGE = 4096;
    static final int MIX_PAGES = 2048;
    static final int GROUPS = 256;
    static final int DUPLICATED_PAGES = 4 * GROUPS;
    static final int ZERO_PAGES = 256;
    static final int SPARSE_PAGES = 256;
    static final int SPARSE_WRITTEN = 64;
    static final int SPARSE_READ = 64;

    private PageMixChild() {
    }

    /** What page {@code page} of {@code mix} holds. */
    static byte[] expectedPage(int page) {
        byte[] bytes = new byte[PAGE];
        if (page < DUPLICATED_PAGES) {
            new SplittableRandom(1_000 + page % GROUPS).nextBytes(bytes);
        } else if (page >= DUPLICATED_PAGES + ZERO_PAGES) {
            new SplittableRandom(1_000_000 + page).nextBytes(bytes);
        }
        return bytes;
    }

    @SuppressWarnings("restricted")
    public static void main(String[] args) throws Throwable {
        MemorySegment mix = Arena.ofShared().allocate((long) MIX_PAGES * PAGE, PAGE);
        for (int page = 0; page < MIX_PAGES; page++) {
            MemorySegment.copy(expectedPage(page), 0, mix, ValueLayout.JAVA_BYTE, (long) page * PAGE, PAGE);
        }
        Linker linker = Linker.nativeLinker();
        MethodHandle mmap = linker.downcallHandle(linker.defaultLookup().findOrThrow("mmap"),
                FunctionDescriptor.of(ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG,
                        ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG));
        MethodHandle madvise = linker.downcallHandle(linker.defaultLookup().findOrThrow("madvise"),
                FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG,
                        ValueLayout.JAVA_INT));
        long bytes = (long) SPARSE_PAGES * PAGE;
        // PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS; MADV_NOHUGEPAGE so a write faults in one page.
        MemorySegment sparse = ((MemorySegment) mmap.invokeExact(MemorySegment.NULL, bytes, 3, 0x22, -1, 0L))
                .reinterpret(bytes);
        if (sparse.address() == -1L || (int) madvise.invokeExact(sparse, bytes, 15) != 0) {
            throw new IllegalStateException("mmap or madvise failed");
        }
        for (int page = 0; page < SPARSE_WRITTEN; page++) {
            sparse.set(ValueLayout.JAVA_BYTE, (long) page * PAGE, (byte) (page + 1));
        }
        int sum = 0;
        for (int page = SPARSE_WRITTEN; page < SPARSE_WRITTEN + SPARSE_READ; page++) {
            sum += sparse.get(ValueLayout.JAVA_BYTE, (long) page * PAGE);
        }
        System.out.println("mix " + Long.toHexString(mix.address()));
        System.out.println("sparse " + Long.toHexString(sparse.address()));
        System.out.println("ready " + sum);
        System.out.flush();
        waitForStdinToClose();
    }

    private static void waitForStdinToClose() throws IOException {
        while (System.in.read() >= 0) {
            // The parent closes stdin when it is done with this process.
        }
    }
}
