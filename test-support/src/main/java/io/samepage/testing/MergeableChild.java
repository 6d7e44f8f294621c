package io.samepage.testing;

import io.samepage.linux.AnonymousMemory;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * A child JVM (run it with {@link ChildJvm}) holding {@value #PAGES} pages of one content in private
 * anonymous memory advised {@code MADV_MERGEABLE} and without huge pages, for tests of what kernel KSM
 * does with them: merged, they take one frame. It prints {@code mergeable HEX} and {@code ready}, then
 * waits for its stdin to close.
 */
public final class MergeableChild {

    public static final int PAGES = 4096;

    private MergeableChild() {
    }

    public static void main(String[] args) throws IOException {
        // Never closed: the process exits when its stdin closes.
        @SuppressWarnings("resource")
        AnonymousMemory mapping = AnonymousMemory.map((long) PAGES * PageMixChild.PAGE);
        mapping.adviseNoHugePage();
        mapping.adviseMergeable();
        MemorySegment memory = mapping.segment();
        for (long offset = 0; offset < memory.byteSize(); offset += 8) {
            memory.set(ValueLayout.JAVA_LONG_UNALIGNED, offset, 0x5361_6d65_7061_6765L + (offset % PageMixChild.PAGE));
        }
        System.out.println("mergeable " + Long.toHexString(memory.address()));
        System.out.println("ready");
        System.out.flush();
        while (System.in.read() >= 0) {
            // The parent closes stdin when it is done with this process.
        }
    }
}
