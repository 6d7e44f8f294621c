package io.samepage.host;

/**
 * A running QEMU process and the mapping in it that holds its guest's RAM, as {@link QemuGuests} found
 * them.
 *
 * @param pid         the QEMU process
 * @param commandLine what its command line says about the RAM
 * @param ram         the mapping scanned as the guest's RAM; null if {@link #foundBy()} is NOT_FOUND
 * @param foundBy     which rule found it
 * @param problem     why the RAM was not found, or null
 */
public record QemuGuest(int pid, QemuCommandLine commandLine, MemoryRegion ram, RamMatch foundBy, String problem) {

    /** Which rule of {@link QemuGuests} located the RAM mapping. */
    public enum RamMatch {
        /** The one private anonymous {@code rw-p} mapping of exactly the RAM size: QEMU's default. */
        ANONYMOUS_EXACT,
        /**
         * No single anonymous mapping of exactly the RAM size: the largest anonymous {@code rw-p} mapping
         * at least that large. A guess: it may hold more than the guest's RAM.
         */
        LARGEST_ANONYMOUS,
        /** The mapping of the {@code memory-backend-file} or {@code -mem-path} file. */
        MEMORY_BACKEND_FILE,
        /** The {@code /memfd:memory-backend-memfd} mapping of a {@code memory-backend-memfd}. */
        MEMORY_BACKEND_MEMFD,
        /** Nothing matched; {@link QemuGuest#problem()} says why. */
        NOT_FOUND
    }

    /** The guest's name from {@code -name}, or null. */
    public String name() {
        return commandLine.guestName();
    }
}
