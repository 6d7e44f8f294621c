package io.samepage.core;

import io.samepage.hashing.Pages;
import java.nio.ByteBuffer;

/**
 * What one guest must read in {@link ModelRun}: its bytes, and per page whether it holds a frame when
 * nothing is merged (written, and not since filled whole with zeros).
 */
final class GuestModel {

    private static final int PAGE = Pages.PAGE_SIZE;

    final Guest guest;
    final int domain;
    final byte[] bytes;
    final boolean[] backed;

    GuestModel(Guest guest, int domain) {
        this.guest = guest;
        this.domain = domain;
        this.bytes = new byte[(int) guest.sizeBytes()];
        this.backed = new boolean[guest.pageCount()];
    }

    String name() {
        return guest.name();
    }

    int pages() {
        return backed.length;
    }

    long size() {
        return bytes.length;
    }

    ByteBuffer page(int page) {
        return ByteBuffer.wrap(bytes, page * PAGE, PAGE).slice();
    }

    /** A mutation holds a frame for each page it touches, except a whole page filled with zeros. */
    void markWritten(long address, long length, boolean zeroFill) {
        if (length == 0) {
            return;
        }
        for (long page = address / PAGE; page <= (address + length - 1) / PAGE; page++) {
            long start = page * PAGE;
            boolean whole = address <= start && address + length >= start + PAGE;
            backed[(int) page] = !(zeroFill && whole);
        }
    }
}
