package io.samepage.e2e;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;

/**
 * The child JVM of {@link ScanPidCommandTest}: 8 MiB from {@code Arena.ofShared().allocate}, every page
 * written: pages 0-1023 hold 256 contents 4 times each, pages 1024-1279 are zeros, the other 768 are
 * unique. It prints {@code ready}, then waits for its stdin to close.
 */
public final class PageMixProcess {

    static final int PAGE = 4096;
    static final int PAGES = 2048;
    static final int GROUPS = 256;
    static final int DUPLICATED = 4 * GROUPS;
    static final int ZEROS = 256;

    private PageMixProcess() {
    }

    public static void main(String[] args) throws IOException {
        MemorySegment mix = Arena.ofShared().allocate((long) PAGES * PAGE, PAGE);
        byte[] page = new byte[PAGE];
        for (int p = 0; p < PAGES; p++) {
            if (p >= DUPLICATED && p < DUPLICATED + ZEROS) {
                continue;
            }
            new SplittableRandom(p < DUPLICATED ? 1_000 + p % GROUPS : 1_000_000 + p).nextBytes(page);
            MemorySegment.copy(page, 0, mix, ValueLayout.JAVA_BYTE, (long) p * PAGE, PAGE);
        }
        System.out.println("ready " + Long.toHexString(mix.address()));
        System.out.flush();
        while (System.in.read() >= 0) {
            // The test closes stdin when it is done with this process.
        }
    }
}
