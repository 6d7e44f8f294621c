package io.samepage.kvm;

import io.samepage.linux.MemfdCalls;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * The kernel calls a {@link MappedGuestMemory} makes on its reserved range, each returning 0 or
 * {@code -errno} as {@link MemfdCalls} does (the reservation itself returns the range, or null):
 * {@link #KERNEL} makes them. The seam exists so that a test can stand in for the kernel and fail a call
 * the way the kernel can but will not on demand (a {@code MAP_FIXED} that unmaps the old pages and then
 * fails), which a real host cannot be made to do safely in a test, and can see where ranges are reserved.
 *
 * <p>Implementations are stateless or synchronize themselves; a guest memory calls them under its lock.
 */
interface GuestRangeCalls {

    /**
     * {@link MemfdCalls#reserve}: {@code bytes} of address space reserved ({@code PROT_NONE}), unmapped when
     * {@code arena} closes; null if the kernel refused. The kernel's own unless a test watches it: a
     * stand-in that fails the other calls needs no other reservation.
     */
    default MemorySegment reserve(long bytes, Arena arena) {
        return MemfdCalls.reserve(bytes, arena);
    }

    /** {@link MemfdCalls#map}: maps {@code [offset, + length)} of the range onto the memfd, shared. */
    int map(MemorySegment range, long offset, long length, int fd, long fileOffset, boolean writable);

    /** {@link MemfdCalls#protect}: one page of the range read-only or read-write. */
    int protect(MemorySegment range, long offset, boolean writable);

    /** {@link MemfdCalls#adviseSmallPages}: {@code MADV_NOHUGEPAGE} on {@code [offset, + length)} of the range. */
    int adviseSmallPages(MemorySegment range, long offset, long length);

    /**
     * {@link MemfdCalls#reserveAgain}: {@code [offset, + length)} of the range reserved again
     * ({@code PROT_NONE}), replacing whatever is mapped there.
     */
    int reserveAgain(MemorySegment range, long offset, long length);

    /** {@link MemfdCalls#reserveIfFree}: the same, only where nothing is mapped; else {@code -EEXIST}. */
    int reserveIfFree(MemorySegment range, long offset, long length);

    /** {@link MemfdCalls#unmap}: {@code [offset, + length)} of the range unmapped. */
    int unmap(MemorySegment range, long offset, long length);

    /** The calls themselves, made on the host. */
    GuestRangeCalls KERNEL = new GuestRangeCalls() {
        @Override
        public int map(MemorySegment range, long offset, long length, int fd, long fileOffset, boolean writable) {
            return MemfdCalls.map(range, offset, length, fd, fileOffset, writable);
        }

        @Override
        public int protect(MemorySegment range, long offset, boolean writable) {
            return MemfdCalls.protect(range, offset, writable);
        }

        @Override
        public int adviseSmallPages(MemorySegment range, long offset, long length) {
            return MemfdCalls.adviseSmallPages(range, offset, length);
        }

        @Override
        public int reserveAgain(MemorySegment range, long offset, long length) {
            return MemfdCalls.reserveAgain(range, offset, length);
        }

        @Override
        public int reserveIfFree(MemorySegment range, long offset, long length) {
            return MemfdCalls.reserveIfFree(range, offset, length);
        }

        @Override
        public int unmap(MemorySegment range, long offset, long length) {
            return MemfdCalls.unmap(range, offset, length);
        }
    };
}
