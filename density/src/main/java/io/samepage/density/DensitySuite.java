package io.samepage.density;

import io.samepage.hashing.ContentDigest;
import io.samepage.host.KernelKsm;
import io.samepage.image.ImageIndex;
import io.samepage.image.ImageIndexException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashSet;
import java.util.Objects;
import java.util.Set;
import java.util.function.Consumer;

/**
 * One run of the density suite: for each N of {@link Settings#guestCounts()}, the same guest content
 * ({@link PageMix}) held five ways: (a) without deduplication and (b) merged by the engine's
 * scanner after load ({@link EngineModes}), (c) loaded through the image index then scanned ({@link
 * EngineModes}), (d) by kernel KSM in a helper process, at its full rate at every N and at its defaults
 * where {@link Settings#ksmDefaults()} says ({@link KsmMode}), and (e) the container-equivalent model
 * ({@link ContainerModel}). {@link DensityReport} turns the results into {@code density.json},
 * {@code density.md} and {@code density.png}.
 *
 * <p>Before the first N, (b), (c) and the merge floor run once with one guest, unrecorded, so the JIT has
 * compiled their code before anything is timed. At the largest N, (b) and (d) at full rate run {@link
 * Settings#rateRuns()} times each, (b)'s runs one after another, each followed by a run of the merge floor
 * ({@link MergeFloor}), then (d)'s. Mode (d) runs last, only where kernel KSM can be driven (root, KSM in
 * the kernel, a ksmd thread); elsewhere the results say why it was skipped.
 *
 * <p>Not thread safe: one run on the caller's thread.
 */
public final class DensitySuite {

    /** The host-wide lock mode (d) holds, the one the end-to-end tests that drive kernel KSM take. */
    public static final String KSM_LOCK_FILE = KsmMode.LOCK_FILE;

    /** Where kernel KSM runs at its defaults (100 pages every 20 ms); lower case, as the CLI spells them. */
    public enum KsmDefaults { largest, all, none }

    /**
     * What to measure.
     *
     * @param image             the image the guests boot from: a directory tree or a file
     * @param guestCounts       the N to measure, each at least 1; sorted and deduplicated here
     * @param guestMib          size of each guest in MiB, at least 1
     * @param uniquePercent     pages unique to each guest, 0 to {@link PageMix#MAX_UNIQUE_PERCENT}
     * @param seed              seed of the guest content
     * @param budgetMib         host memory budget for the guests-that-fit figure, at least 1
     * @param ksmTimeoutSeconds the longest one kernel KSM run may take, at least 1
     * @param ksmDefaults       where kernel KSM also runs at its defaults
     * @param ksm               false to skip mode (d): no helper process, no change to kernel KSM
     * @param rateRuns          runs of (b) and of (d) at full rate at the largest N, 1 to {@value #MAX_RATE_RUNS}:
     *                          the claims that compare them take the medians ({@link TimedRuns}); the
     *                          tables show the first
     */
    public record Settings(Path image, int[] guestCounts, int guestMib, int uniquePercent, long seed,
            long budgetMib, long ksmTimeoutSeconds, KsmDefaults ksmDefaults, boolean ksm, int rateRuns) {

        /** The most runs {@link #rateRuns} may ask for. */
        public static final int MAX_RATE_RUNS = 9;

        public Settings {
            Objects.requireNonNull(image, "image");
            Objects.requireNonNull(ksmDefaults, "ksmDefaults");
            guestCounts = Arrays.stream(guestCounts).sorted().distinct().toArray();
            if (guestCounts.length == 0 || guestCounts[0] < 1) {
                throw new IllegalArgumentException("guestCounts " + Arrays.toString(guestCounts)
                        + ": at least one, each at least 1");
            }
            if (guestMib < 1 || budgetMib < 1 || ksmTimeoutSeconds < 1) {
                throw new IllegalArgumentException("guestMib " + guestMib + ", budgetMib " + budgetMib
                        + ", ksmTimeoutSeconds " + ksmTimeoutSeconds + ": each must be at least 1");
            }
            if (uniquePercent < 0 || uniquePercent > PageMix.MAX_UNIQUE_PERCENT) {
                throw new IllegalArgumentException("uniquePercent " + uniquePercent + ": must be 0 to "
                        + PageMix.MAX_UNIQUE_PERCENT);
            }
            if (rateRuns < 1 || rateRuns > MAX_RATE_RUNS) {
                throw new IllegalArgumentException("rateRuns " + rateRuns + ": must be 1 to " + MAX_RATE_RUNS);
            }
        }

        @Override
        public int[] guestCounts() {
            return guestCounts.clone();
        }

        int largestGuests() {
            return guestCounts[guestCounts.length - 1];
        }
    }

    private final Settings settings;
    private final Consumer<String> progress;

    private DensitySuite(Settings settings, Consumer<String> progress) {
        this.settings = settings;
        this.progress = progress;
    }

    /**
     * Measures every mode at every N.
     *
     * @param progress told what runs next ({@code N=4: (c)}), for a line on stderr
     * @throws DensityException {@link DensityException.Kind#BAD_IMAGE} if the image cannot be read or
     *                          indexed, {@link DensityException.Kind#FAILED} if a mode fails
     */
    public static DensityResults run(Settings settings, Consumer<String> progress) {
        return new DensitySuite(settings, progress).run();
    }

    private DensityResults run() {
        long start = System.nanoTime();
        int[] counts = settings.guestCounts();
        try (PageMix content = PageMix.density(settings.image(), settings.largestGuests(), settings.guestMib(),
                settings.uniquePercent(), settings.seed())) {
            DensityResults results = new DensityResults(content, counts, settings.budgetMib(),
                    settings.ksmTimeoutSeconds());
            measureEngine(results, counts);
            measureKsm(results, counts);
            results.wallSeconds((System.nanoTime() - start) / 1e9);
            return results;
        }
    }

    private void measureEngine(DensityResults results, int[] counts) {
        PageMix content = results.content();
        long buildStart = System.nanoTime();
        try (ImageIndex index = ImageIndex.build(settings.image())) {
            results.indexBuildSeconds((System.nanoTime() - buildStart) / 1e9);
            results.distinctImagePages(distinctNonZero(index, content.imagePages()));
            progress(1, "warm-up of (b), (c) and the merge floor, not recorded");
            EngineModes.postLoad(content, 1);
            EngineModes.preLoad(content, index, 1);
            if (MergeFloor.available()) {
                MergeFloor.measure(content, 1);     // its first run at the largest N was its slowest in 4 of 4 reports
            }
            for (int n : counts) {
                progress(n, "(a), (b)");
                EngineModes.postLoad(content, n).forEach(results::add);
                measureFloor(results, n, 1);
                for (int run = 2; n == settings.largestGuests() && run <= settings.rateRuns(); run++) {
                    progress(n, "(b), run " + run + " of " + settings.rateRuns() + " for the medians");
                    try {
                        results.addRerun(EngineModes.postLoad(content, n).getLast(), run);
                    } catch (DensityException e) {          // the runs before it stand
                        results.rerunFailed(Mode.POST_LOAD, run, e.getMessage());
                    }
                    measureFloor(results, n, run);
                }
                progress(n, "(c)");
                results.add(EngineModes.preLoad(content, index, n));
                results.add(ContainerModel.of(content, n));
            }
        } catch (ImageIndexException e) {
            throw DensityException.badImage(e.getMessage());
        }
    }

    /** One run of the merge floor after (b)'s run {@code run} at the largest N; none where it cannot run. */
    private void measureFloor(DensityResults results, int n, int run) {
        if (n != settings.largestGuests()) {
            return;
        }
        if (!MergeFloor.available()) {
            results.floorNote("not measured: it needs Linux's native memory calls, which this machine lacks");
            return;
        }
        progress(n, "the merge floor, run " + run + " of " + settings.rateRuns());
        try {
            results.addFloor(MergeFloor.measure(results.content(), n));
        } catch (IllegalStateException e) {        // the kernel refused its region or a discard
            results.floorNote("run " + run + " failed, so it is left out: " + e.getMessage());
        }
    }

    private void measureKsm(DensityResults results, int[] counts) {
        if (!settings.ksm()) {
            results.note(Mode.KSM_FULL_RATE, "skipped: --no-ksm");
            results.note(Mode.KSM_DEFAULTS, "skipped: --no-ksm");
            return;
        }
        KernelKsm kernel = KernelKsm.system();
        String unavailable = KsmMode.unavailableReason(kernel);
        if (unavailable != null) {
            results.note(Mode.KSM_FULL_RATE, "skipped: " + unavailable);
            results.note(Mode.KSM_DEFAULTS, "skipped: " + unavailable);
            return;
        }
        KsmDefaults defaultsWhere = settings.ksmDefaults();
        if (defaultsWhere == KsmDefaults.none) {
            results.note(Mode.KSM_DEFAULTS, "skipped: --ksm-defaults none");
        }
        long timeout = settings.ksmTimeoutSeconds();
        try (KsmMode ksm = KsmMode.open(kernel)) {
            for (int n : counts) {
                progress(n, "(d) full rate");
                ModeResult full = ksm.run(results.content(), n, KsmMode.Rate.FULL, timeout, 0);
                results.add(full);
                for (int run = 2; n == settings.largestGuests() && run <= settings.rateRuns(); run++) {
                    progress(n, "(d) full rate, run " + run + " of " + settings.rateRuns() + " for the medians");
                    try {
                        results.addRerun(ksm.run(results.content(), n, KsmMode.Rate.FULL, timeout, 0), run);
                    } catch (DensityException e) {
                        results.rerunFailed(Mode.KSM_FULL_RATE, run, e.getMessage());
                    }
                }
                if (defaultsWhere == KsmDefaults.all
                        || defaultsWhere == KsmDefaults.largest && n == settings.largestGuests()) {
                    progress(n, "(d) KSM defaults, up to " + timeout + " s");
                    results.add(ksm.run(results.content(), n, KsmMode.Rate.DEFAULTS, timeout, full.savedPages()));
                }
            }
        }
    }

    private void progress(int n, String modes) {
        progress.accept("N=" + n + ": " + modes);
    }

    /** Distinct non-zero blocks among the image's first {@code blocks}, by SHA-256. */
    private static long distinctNonZero(ImageIndex index, long blocks) {
        Set<ByteBuffer> distinct = new HashSet<>();
        for (long b = 0; b < blocks; b++) {
            if (!index.isZero(b)) {
                byte[] digest = new byte[ContentDigest.LENGTH];
                index.digest(b, digest, 0);
                distinct.add(ByteBuffer.wrap(digest));
            }
        }
        return distinct.size();
    }
}
