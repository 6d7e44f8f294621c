package io.samepage.kvm;

import io.samepage.testing.AllocationFaultLoader;
import io.samepage.testing.AllocationFaults;
import java.util.function.Supplier;

/**
 * The public {@link MappedGuestMemory#map} and {@link MappedGuestMemory#protect} a VMM calls, made with
 * every allocation failing, for {@link KvmAllocationFaultTest}, which loads this class through an
 * {@link AllocationFaultLoader} that rewrites the module's classes: a run of pages laid out, a page merged
 * read-only onto another's frame, made writable, a page protected read-only and back, a run mapped again
 * onto its own frames (advising its neighbours). Each of them once unarmed first, so that classes are
 * loaded and the budget has counted the mappings; then all of them again, armed with
 * {@link AllocationFaults#failFrom} the first allocation on: none may throw, and none may pass an
 * allocation site.
 *
 * <p>{@link #get} returns what went wrong, "" if nothing.
 */
final class MapAndProtectProbe implements Supplier<String> {

    private static final int PAGES = 8;

    @Override
    public String get() {
        try (MemfdFrames frames = MemfdFrames.create("alloc-free-remaps", PAGES, MappingBudget.of(1_000_000, 1_000))) {
            MappedGuestMemory guest = frames.mapGuest(PAGES);
            guest.map(0, 0, PAGES, true);
            remaps(guest);
            AllocationFaults.failFrom(1);
            try {
                remaps(guest);
            } catch (Throwable t) {         // the injected OutOfMemoryError among others
                return "map or protect threw " + t;
            } finally {
                AllocationFaults.disarm();
            }
            long count = AllocationFaults.count();
            return count == 0 ? "" : "map and protect passed " + count + " allocation sites";
        }
    }

    private static void remaps(MappedGuestMemory guest) {
        guest.map(3, 5, false);             // a merge: read-only onto another page's frame
        guest.protect(3, true);
        guest.protect(6, false);
        guest.protect(6, true);
        guest.map(2, 2, 3, true);           // back onto its own frames, continuing its neighbours
    }
}
