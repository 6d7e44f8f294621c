package io.samepage.host;

import java.nio.ByteBuffer;

/** Receives the pages {@link ProcessMemory#copyResident} read, one run of contiguous pages at a time. */
@FunctionalInterface
public interface ResidentPageSink {

    /**
     * @param address the target-process address of the first page, page aligned
     * @param pages   whole 4 KiB pages, read-only, from position 0 to the limit; valid only during this
     *                call (the buffer is reused for the next run)
     */
    void accept(long address, ByteBuffer pages);
}
