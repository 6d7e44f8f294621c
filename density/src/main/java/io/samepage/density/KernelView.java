package io.samepage.density;

import io.samepage.core.DedupEngine;

/**
 * One engine mode's host memory as the suite's model counts it, beside what the kernel says of it,
 * measured in the same run at the same moment: the cross-check that a gap between the engine's books and
 * the kernel's (frames the engine counts free that the kernel still holds) cannot hide behind the model.
 *
 * <p>Two kinds of evidence, and only the first sets the verdict:
 * <ul>
 *   <li><b>The pool's mapping</b> ({@link PoolPages}): the pages the kernel holds for exactly the pool's
 *       addresses, against the frames the model counts. Nothing else lives there, so on an idle engine
 *       they agree to the page; they may differ by {@value #POOL_TOLERANCE_PAGES} pages before the check
 *       says so. Why that many: what may differ legitimately is a few pages (the zero frame, where a
 *       guest's read of a zero page maps the kernel's zero page, which only CAP_SYS_ADMIN tells apart from
 *       a page of its own; a frame the engine holds but never wrote, such as a second domain's zero
 *       frame, which takes no memory), while 256 is half a huge page, so that one split huge page (511
 *       frames the model calls free) always shows, and so does the warm list at the suite's default
 *       guest size, were it on (up to 1/16 of the pool: 16 MiB for one guest of 256 MiB).</li>
 *   <li><b>Coarse</b>: how far the machine's {@code MemAvailable} fell, and the process's cgroup charge
 *       rose, from just before the engine was made to the measurement ({@link HostMemorySample}), against
 *       the model's whole figure (frames and metadata). Both count other processes, the suite's own JVM
 *       adds what the model leaves out (heap growth, compiled code), and the kernel updates the counters
 *       behind {@code MemAvailable} in per-CPU batches. So they agree within {@link #coarseToleranceBytes}
 *       ({@value #COARSE_TOLERANCE_PERCENT}%, at least {@value #COARSE_TOLERANCE_MIB} MiB), and only a
 *       cgroup that held this process alone at both ends counts toward the verdict; the rest is printed
 *       for a reader to weigh.</li>
 * </ul>
 *
 * @param modelFrames    the frames the model counts for the guests (its host bytes less metadata, / 4096)
 * @param modelHostBytes the model's host bytes: those frames x 4096 plus the engine's metadata
 * @param pool           what the kernel holds for the pool's mapping
 * @param before         the host before the mode's engine was made
 * @param after          the host at the measurement
 */
record KernelView(long modelFrames, long modelHostBytes, PoolPages pool, HostMemorySample before,
        HostMemorySample after) {

    /** Pages the pool's mapping may differ from the model by before the check says they disagree. */
    static final int POOL_TOLERANCE_PAGES = 256;
    static final int COARSE_TOLERANCE_PERCENT = 10;
    static final int COARSE_TOLERANCE_MIB = 64;

    private static final int PAGE = 4096;

    /**
     * Reads the kernel's side for {@code engine}, whose pool holds {@code modelFrames} frames for the guests
     * as the model counts them. Call it with the engine idle: no thread allocating or freeing frames.
     */
    static KernelView measure(DedupEngine engine, long modelFrames, long modelHostBytes, HostMemorySample before) {
        HostMemorySample after = HostMemorySample.take();
        return new KernelView(modelFrames, modelHostBytes, PoolPages.read(engine.frameBacking().region()), before,
                after);
    }

    /** The pool mapping's held pages less the model's frames; only where {@link #poolAgrees()} is not null. */
    long poolDifferencePages() {
        return pool.heldPages() - modelFrames;
    }

    /** Whether the pool's mapping holds the model's frames within tolerance; null where it was not read whole. */
    Boolean poolAgrees() {
        return pool.heldPages() < 0 ? null : Math.abs(poolDifferencePages()) <= POOL_TOLERANCE_PAGES;
    }

    /** How far MemAvailable fell over the mode (negative: it rose), or null if it was not read. */
    Long memAvailableFallBytes() {
        return before.memAvailableBytes() < 0 || after.memAvailableBytes() < 0 ? null
                : before.memAvailableBytes() - after.memAvailableBytes();
    }

    /** How far the cgroup's charge rose over the mode, or null if there is none to read. */
    Long cgroupRiseBytes() {
        boolean read = before.cgroupBytes() >= 0 && after.cgroupBytes() >= 0
                && before.cgroupFile().equals(after.cgroupFile());
        return read ? after.cgroupBytes() - before.cgroupBytes() : null;
    }

    /** True if the cgroup held this process alone at both ends, so its charge is this run's. */
    boolean cgroupAlone() {
        return cgroupRiseBytes() != null && before.cgroupAlone() && after.cgroupAlone();
    }

    long coarseToleranceBytes() {
        return Math.max((long) COARSE_TOLERANCE_MIB << 20, modelHostBytes / 100 * COARSE_TOLERANCE_PERCENT);
    }

    /** Whether {@code kernelBytes}, a coarse source's change, is within tolerance of the model; null if not read. */
    Boolean coarseAgrees(Long kernelBytes) {
        return kernelBytes == null ? null : Math.abs(kernelBytes - modelHostBytes) <= coarseToleranceBytes();
    }

    /**
     * The verdict: false if the pool's mapping disagrees, or a cgroup of this process alone does; null if
     * the mapping could not be read whole (and nothing disagreed); else true.
     */
    Boolean agrees() {
        Boolean pooled = poolAgrees();
        if (Boolean.FALSE.equals(pooled) || cgroupAlone() && !coarseAgrees(cgroupRiseBytes())) {
            return false;
        }
        return pooled;
    }

    long modelFrameBytes() {
        return modelFrames * PAGE;
    }
}
