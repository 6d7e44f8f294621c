package io.samepage.density;

import io.samepage.core.DedupEngine;
import io.samepage.core.DedupException;
import io.samepage.core.EngineContext;
import io.samepage.core.EngineCounters;
import io.samepage.core.Guest;
import io.samepage.core.GuestCounters;
import io.samepage.core.MergeDomain;
import io.samepage.core.Scanner;
import io.samepage.hashing.Pages;
import java.util.ArrayList;
import java.util.List;

/**
 * The second part of {@code samepage demo}: guests that run the same operating system merge, then
 * write to merged pages.
 *
 * <p>The guests, in one merge domain, hold the demo's page mix ({@link PageMix#demo}). The engine
 * merges them with full scans until two in a row change nothing ({@link Scanner#scanUntilStable},
 * {@code use_zero_pages} on, {@code smart_scan} off); then the first guest writes to some of its shared
 * OS image pages and the second to some of its zero-merged pages ({@link DemoWorkload}), each write
 * breaking the sharing of one page. After merging, and again after the writes, every guest must read
 * back exactly the bytes it wrote. Host memory and the counters are taken before merging, after merging
 * and after the writes: the three {@link Stage}s. The CLI's {@code demo} command holds only its options
 * and prints the {@link Result}.
 *
 * <p>Not thread safe: one thread runs it.
 */
public final class DemoMerge {

    /** Frame pool beyond the guests' total size: the zero frame, and room for the copy-on-write writes. */
    private static final long POOL_SLACK_BYTES = 1 << 20;

    /**
     * Host memory and counters at one step.
     *
     * @param name        {@code before merging}, {@code after merging} or {@code after copy-on-write}
     * @param framesInUse host frames in use, the zero frame included
     * @param counters    the engine's counters
     * @param guests      each guest's counters, in order
     */
    public record Stage(String name, long framesInUse, EngineCounters counters, List<GuestCounters> guests) {

        public Stage {
            guests = List.copyOf(guests);
        }

        static Stage of(String name, DedupEngine engine) {
            List<GuestCounters> guests = new ArrayList<>();
            for (Guest guest : engine.guests()) {
                guests.add(guest.counters());
            }
            return new Stage(name, engine.framesInUse(), engine.counters(), guests);
        }

        public long frameBytes() {
            return framesInUse * Pages.PAGE_SIZE;
        }
    }

    /**
     * What the merge did.
     *
     * @param guests                guests merged
     * @param guestMib              size of each guest, in MiB
     * @param seed                  seed of the page mix
     * @param unchangedImagePages   each guest's OS image pages, identical in every guest
     * @param zeroPages             each guest's zeroed pages
     * @param uniquePages           each guest's own pages
     * @param writtenAfterBootPages each guest's OS image pages changed after boot
     * @param fullScans             full scans until two in a row changed nothing
     * @param writesAfterMerge      pages each of the first two guests wrote after merging
     * @param pagesVerified         guest pages compared with what the guest wrote, after merging and after
     *                              the writes
     * @param stages                before merging, after merging, after copy-on-write
     */
    public record Result(int guests, int guestMib, long seed, int unchangedImagePages, int zeroPages,
            int uniquePages, int writtenAfterBootPages, int fullScans, int writesAfterMerge, long pagesVerified,
            List<Stage> stages) {

        public Result {
            stages = List.copyOf(stages);
        }
    }

    private DemoMerge() {
    }

    /**
     * Refuses, before anything runs, guests that would not fit the host's memory: until they merge,
     * every page of every guest takes a frame of its own.
     *
     * @throws DensityException {@link DensityException.Kind#TOO_LARGE} naming the guests, as
     *                          {@code samepage demo}'s options do, and the memory they need
     */
    public static void checkFits(int guests, int guestMib, long hostMemoryBytes) {
        long neededMib = (long) guests * guestMib;
        long hostMib = hostMemoryBytes >> 20;
        if (neededMib > hostMib) {
            throw DensityException.tooLarge("--guests " + guests + " --guest-mib " + guestMib + ": the guests "
                    + "need " + neededMib + " MiB of host memory before merging; this host has " + hostMib + " MiB");
        }
    }

    /**
     * Runs the merge on {@code guests} guests of {@code guestMib} MiB.
     *
     * @throws IllegalArgumentException if {@code guests} is less than 2 or {@code guestMib} less than 1
     * @throws DensityException {@link DensityException.Kind#FAILED} if the engine refuses (an exhausted
     *                          frame pool) or a guest reads back other bytes than it wrote
     */
    public static Result run(int guests, int guestMib) {
        if (guests < 2 || guestMib < 1) {
            throw new IllegalArgumentException("guests " + guests + ", guestMib " + guestMib
                    + ": at least 2 guests, to share pages, of at least 1 MiB");
        }
        long guestBytes = (long) guestMib << 20;
        EngineContext context = new EngineContext().poolBytes(guests * guestBytes + POOL_SLACK_BYTES);
        context.knobs().useZeroPages(true).smartScan(false);
        try (PageMix mix = PageMix.demo(guests, (int) (guestBytes / Pages.PAGE_SIZE));
                DedupEngine engine = DedupEngine.create(context.conclude())) {
            DemoWorkload workload = new DemoWorkload(mix);
            MergeDomain domain = engine.createDomain("demo");
            List<Guest> loaded = new ArrayList<>();
            for (int g = 0; g < guests; g++) {
                Guest guest = engine.createGuest(domain, "vm-" + (g + 1), guestBytes);
                mix.load(g, guest);
                loaded.add(guest);
            }
            Stage before = Stage.of("before merging", engine);
            int scans = engine.scanner().scanUntilStable(Scanner.DEFAULT_MAX_FULL_SCANS_TO_SETTLE);
            long verified = workload.verify(loaded);
            Stage merged = Stage.of("after merging", engine);
            workload.writeAfterMerge(loaded);
            verified += workload.verify(loaded);
            Stage written = Stage.of("after copy-on-write", engine);
            return new Result(guests, guestMib, mix.seed(), mix.unchangedImagePages(), mix.zeroPages(),
                    mix.uniquePages(), mix.writtenAfterBootPages(), scans, workload.writesAfterMerge(), verified,
                    List.of(before, merged, written));
        } catch (DedupException e) {
            throw DensityException.failed(e.getMessage());
        }
    }
}
