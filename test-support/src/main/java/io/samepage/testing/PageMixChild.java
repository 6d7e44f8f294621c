package io.samepage.testing;

import io.samepage.linux.AnonymousMemory;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;

/**
 * A child JVM (run it with {@link ChildJvm}) with memory of known content and known residency, for
 * host mode's process reader and the end-to-end {@code samepage scan --pid}.
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

    public static final int PAGE = 4096;
    public static final int MIX_PAGES = 2048;
    public static final int GROUPS = 256;
    public static final int DUPLICATED_PAGES = 4 * GROUPS;
    public static final int ZERO_PAGES = 256;
    public static final int SPARSE_PAGES = 256;
    public static final int SPARSE_WRITTEN = 64;
    public static final int SPARSE_READ = 64;

    private PageMixChild() {
    }

    /** What page {@code page} of {@code mix} holds. */
    public static byte[] expectedPage(int page) {
        byte[] bytes = new byte[PAGE];
        if (page < DUPLICATED_PAGES) {
            new SplittableRandom(1_000 + page % GROUPS).nextBytes(bytes);
        } else if (page >= DUPLICATED_PAGES + ZERO_PAGES) {
            new SplittableRandom(1_000_000 + page).nextBytes(bytes);
        }
        return bytes;
    }

    public static void main(String[] args) throws IOException {
        MemorySegment mix = Arena.ofShared().allocate((long) MIX_PAGES * PAGE, PAGE);
        for (int page = 0; page < MIX_PAGES; page++) {
            MemorySegment.copy(expectedPage(page), 0, mix, ValueLayout.JAVA_BYTE, (long) page * PAGE, PAGE);
        }
        // Private anonymous memory, no huge pages, so a write faults in exactly one page. Never closed:
        // the process exits when its stdin closes.
        @SuppressWarnings("resource")
        AnonymousMemory mapping = AnonymousMemory.map((long) SPARSE_PAGES * PAGE);
        mapping.adviseNoHugePage();
        MemorySegment sparse = mapping.segment();
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
