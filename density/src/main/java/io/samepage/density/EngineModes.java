package io.samepage.density;

import io.samepage.core.DedupEngine;
import io.samepage.core.DedupException;
import io.samepage.core.EngineContext;
import io.samepage.core.Guest;
import io.samepage.core.MergeDomain;
import io.samepage.core.Scanner;
import io.samepage.hashing.Pages;
import io.samepage.image.ImageIndex;
import io.samepage.image.ImageIndexException;
import io.samepage.image.ImageLoader;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.util.ArrayList;
import java.util.List;
import java.util.function.UnaryOperator;

/**
 * Modes (a), (b) and (c): N guests in one engine and one merge domain, {@code use_zero_pages} on, the
 * scanner stepped in this thread ({@value #BATCH_PAGES} guest pages a batch) until two full scans in a
 * row change nothing ({@link Scanner#scanUntilStable}).
 *
 * <ul>
 *   <li><b>(b) post-load</b>: each guest gets the image's blocks by plain writes, as a guest without
 *       the index reads them, then its own writes (after boot, zeroed, unique; {@link PageMix}).
 *       <b>(a)</b> is this state before any scan: the frames the guests hold, one per guest page. The
 *       clock starts when scanning starts: loading costs the same with or without deduplication.</li>
 *   <li><b>(c) pre-load</b>: each guest loads the image through {@link ImageLoader} with the index
 *       (a zero block maps the zero frame, a resident block maps its frame copy-on-write, only the
 *       first copy of a block is read); then the same own writes, then scanning for what the index
 *       cannot know (zeroed and duplicate own pages). The clock runs during the index loads and again
 *       during scanning, not during the guests' own writes, which are the same in every mode.</li>
 * </ul>
 * Host bytes of (b) and (c): frames the guests hold x 4096 plus the engine's metadata
 * ({@link DedupEngine#metadataBytes()}: page tables, frame arrays, index tables), the real cost of
 * deduplicating. The engines keep no warm frames ({@code EngineContext.warmFrames(0)}): every frame
 * merging frees goes back to the operating system at once, so frames in use are exactly the guests'
 * resident memory (by default some free frames stay resident for cheaper copy-on-write). Each result of
 * (a), (b) and (c) carries what the kernel says of that memory at the same moment ({@link KernelView}:
 * the pool mapping's pages, and MemAvailable and the cgroup's charge since before the engine was made),
 * read with the clock stopped; a test may hand the engine another pool ({@link #postLoad(PageMix, int,
 * UnaryOperator)}) to see the check catch one whose memory the model does not describe. Seconds are
 * wall time; CPU-seconds are this thread's CPU time ({@link ThreadMXBean#getCurrentThreadCpuTime()}), which
 * loads and scans ({@code scan_threads} is 1), plus in (c) the image loader's worker threads', which read
 * and hash the blocks ({@link ImageLoader#workerCpuNanos()}). The guests hold a {@link PageMix#density} mix, whose image pages sit
 * at the addresses the index loads them to.
 *
 * <p>Not thread safe: one thread runs a mode.
 */
final class EngineModes {

    /** Guest pages per scanner batch; sharing is sampled after each. */
    static final int BATCH_PAGES = 4096;

    /** Frames beyond the guests' pages in each pool: the zero frame and a little room. */
    private static final long POOL_SLACK_BYTES = 4L << 20;

    private static final int PAGE = Pages.PAGE_SIZE;

    private static final ThreadMXBean THREADS = ManagementFactory.getThreadMXBean();

    private EngineModes() {
    }

    /** (a) and (b) for {@code n} guests: the state after load, then after scanning. */
    static List<ModeResult> postLoad(PageMix content, int n) {
        return postLoad(content, n, UnaryOperator.identity());
    }

    /**
     * {@link #postLoad(PageMix, int)} with the engine's context changed by {@code adjust} after the suite's
     * settings: for tests that give the engine a pool whose memory the model does not describe.
     */
    static List<ModeResult> postLoad(PageMix content, int n, UnaryOperator<EngineContext> adjust) {
        HostMemorySample before = HostMemorySample.take();
        try (DedupEngine engine = newEngine(content, n, adjust)) {
            MergeDomain domain = engine.createDomain("density");
            long base = engine.framesInUse();
            List<Guest> guests = createGuests(engine, domain, content, n);
            for (int g = 0; g < n; g++) {
                content.load(g, guests.get(g));
            }
            long touched = (long) n * content.pagesPerGuest();
            long framesLoaded = engine.framesInUse() - base;
            ModeResult noDedup = ModeResult.untimed(Mode.NO_DEDUP, n, framesLoaded * PAGE, touched - framesLoaded,
                    null).withKernel(KernelView.measure(engine, framesLoaded, framesLoaded * PAGE, before));
            SharingTrace trace = new SharingTrace();
            Clock clock = new Clock(() -> 0);
            scanUntilStable(engine, trace, clock, base, touched);
            ModeResult merged = result(Mode.POST_LOAD, engine, n, base, touched, trace, before);
            return List.of(noDedup, merged.withNote(readsPerMerge(engine, merged.savedPages())));
        } catch (DedupException e) {
            throw DensityException.failed("mode (b), " + n + " guests: " + e.getMessage());
        }
    }

    /** (c) for {@code n} guests. */
    static ModeResult preLoad(PageMix content, ImageIndex index, int n) {
        HostMemorySample before = HostMemorySample.take();
        try (DedupEngine engine = newEngine(content, n, UnaryOperator.identity());
                ImageLoader loader = new ImageLoader(index, engine)) {
            MergeDomain domain = engine.createDomain("density");
            long base = engine.framesInUse();
            List<Guest> guests = createGuests(engine, domain, content, n);
            SharingTrace trace = new SharingTrace();
            Clock clock = new Clock(loader::workerCpuNanos);
            for (int g = 0; g < n; g++) {
                loader.load(guests.get(g), 0, 0, content.imagePages());
                long loaded = (long) (g + 1) * content.imagePages();
                trace.add(clock.nanos(), clock.cpuNanos(), loaded - (engine.framesInUse() - base));
            }
            clock.pause();
            for (int g = 0; g < n; g++) {
                content.writeOwnPages(g, guests.get(g));
            }
            clock.resume();
            long touched = (long) n * content.pagesPerGuest();
            scanUntilStable(engine, trace, clock, base, touched);
            return result(Mode.PRE_LOAD, engine, n, base, touched, trace, before);
        } catch (DedupException | ImageIndexException e) {
            throw DensityException.failed("mode (c), " + n + " guests: " + e.getMessage());
        }
    }

    private static DedupEngine newEngine(PageMix content, int n, UnaryOperator<EngineContext> adjust) {
        EngineContext context = new EngineContext().poolBytes(n * content.guestBytes() + POOL_SLACK_BYTES)
                .warmFrames(0);
        context.knobs().useZeroPages(true);
        return DedupEngine.create(adjust.apply(context).conclude());
    }

    private static List<Guest> createGuests(DedupEngine engine, MergeDomain domain, PageMix content, int n) {
        List<Guest> guests = new ArrayList<>();
        for (int g = 0; g < n; g++) {
            guests.add(engine.createGuest(domain, "vm-" + (g + 1), content.guestBytes()));
        }
        return guests;
    }

    /**
     * Steps the scanner {@link #BATCH_PAGES} pages at a time until two full scans in a row change nothing
     * ({@link Scanner#scanUntilStable}), sampling sharing after each batch.
     */
    private static void scanUntilStable(DedupEngine engine, SharingTrace trace, Clock clock, long base,
            long touched) {
        engine.scanner().scanUntilStable(Scanner.DEFAULT_MAX_FULL_SCANS_TO_SETTLE, BATCH_PAGES,
                () -> trace.add(clock.nanos(), clock.cpuNanos(), touched - (engine.framesInUse() - base)));
    }

    /** What scanning read to merge: pages hashed, and compares of up to two pages each. */
    private static String readsPerMerge(DedupEngine engine, long saved) {
        long hashed = engine.scanner().pagesHashed();
        long compared = engine.pagesCompared();
        double reads = saved == 0 ? 0 : (hashed + 2.0 * compared) / saved;
        return String.format(java.util.Locale.ROOT, "%,d pages hashed and %,d compares (of up to two pages each) for "
                + "%,d pages saved: at most %.2f page reads (%.1f KiB) per saved page, to convergence", hashed,
                compared, saved, reads, reads * PAGE / 1024);
    }

    /** The mode's figures, and the kernel's view of them ({@link KernelView}), measured with the clock stopped. */
    private static ModeResult result(Mode mode, DedupEngine engine, int n, long base, long touched,
            SharingTrace trace, HostMemorySample before) {
        long frames = engine.framesInUse() - base;
        long metadata = engine.metadataBytes();
        long hostBytes = frames * PAGE + metadata;
        return new ModeResult(mode, n, hostBytes, metadata, touched - frames, trace.pointOf99(trace.finalSaved()),
                false, 0, null, KernelView.measure(engine, frames, hostBytes, before));
    }

    /**
     * Wall time, and the CPU time of this thread and of the helper threads {@code helpers} sums, since it
     * started, excluding paused stretches.
     */
    private static final class Clock {

        private final java.util.function.LongSupplier helpers;
        private long startNanos = System.nanoTime();
        private long startCpuNanos;
        private long pausedNanos;
        private long pausedCpuNanos;

        Clock(java.util.function.LongSupplier helpers) {
            this.helpers = helpers;
            this.startCpuNanos = cpuNow();
        }

        private long cpuNow() {
            return THREADS.getCurrentThreadCpuTime() + helpers.getAsLong();
        }

        long nanos() {
            return System.nanoTime() - startNanos;
        }

        long cpuNanos() {
            return cpuNow() - startCpuNanos;
        }

        void pause() {
            pausedNanos = nanos();
            pausedCpuNanos = cpuNanos();
        }

        /** Continues from where {@link #pause()} stopped, as if no time passed in between. */
        void resume() {
            startNanos = System.nanoTime() - pausedNanos;
            startCpuNanos = cpuNow() - pausedCpuNanos;
        }
    }
}
