package io.samepage.kvm;

import java.io.BufferedReader;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * How many more kernel mappings (VMAs) this process may create before {@code vm.max_map_count}, and
 * the check that stops remapping before that limit.
 *
 * <p>Why it matters: every guest page remapped alone, onto a frame whose file offset does not continue
 * its neighbours' (a merge, or a break onto a fresh frame), splits a mapping into up to three. The
 * kernel merges neighbouring mappings only when they map the same file at contiguous offsets with the
 * same protection. A process that reaches {@code vm.max_map_count} (65530 by default) fails its next
 * {@code mmap} or {@code mprotect} with ENOMEM, and so do the JVM's own thread stacks and heap growth:
 * it must not get there. So before each remap {@link #charge} counts the worst case, two new mappings,
 * and refuses with {@link KvmException.Kind#MAPPING_LIMIT} if fewer than the reserve would be left.
 *
 * <p>Counting {@code /proc/self/maps} costs a read of the whole file, so it is done only when a
 * running estimate (the last count plus two per remap since) comes near the limit; as mappings merge
 * the estimate overshoots, never undershoots.
 *
 * <p>Raising the limit needs root: {@code sysctl -w vm.max_map_count=N} (or write N to
 * {@code /proc/sys/vm/max_map_count}), and a file under {@code /etc/sysctl.d} to keep it. Each page
 * merged alone costs up to two mappings, so a host merging P scattered pages needs about 2 P above
 * what its processes use otherwise. This class never changes the host's setting.
 *
 * <p>Thread safe: one budget is shared by every guest memory of the process.
 */
public final class MappingBudget {

    /** The kernel's per-process mapping limit. */
    public static final Path MAX_MAP_COUNT = Path.of("/proc/sys/vm/max_map_count");

    private static final Path SELF_MAPS = Path.of("/proc/self/maps");
    private static final int WORST_CASE_PER_REMAP = 2;
    private static final MappingBudget HOST = new MappingBudget(-1, -1);

    private final long fixedLimit;
    private final long fixedReserve;
    private long estimate = -1;
    private long limit;
    private long reserve;

    private MappingBudget(long fixedLimit, long fixedReserve) {
        this.fixedLimit = fixedLimit;
        this.fixedReserve = fixedReserve;
    }

    /**
     * The budget of this process under the host's {@code vm.max_map_count}, read again at each count,
     * keeping free a reserve for the JVM and the rest of the process: a sixteenth of the limit, at
     * least 1024 mappings.
     */
    public static MappingBudget host() {
        return HOST;
    }

    /**
     * A budget under a limit of its own, smaller than the host's: for tests, and for processes that keep
     * a larger share free.
     *
     * @param maxMapCount the limit to stay under
     * @param reserve     mappings always left free
     */
    public static MappingBudget of(long maxMapCount, long reserve) {
        if (maxMapCount < 1 || reserve < 0 || reserve >= maxMapCount) {
            throw new IllegalArgumentException("a mapping budget needs 0 <= reserve < maxMapCount, not reserve "
                    + reserve + " of " + maxMapCount);
        }
        return new MappingBudget(maxMapCount, reserve);
    }

    /** The limit now: {@code vm.max_map_count}, or this budget's own. */
    public synchronized long maxMapCount() {
        refreshLimit();
        return limit;
    }

    /** The mappings this process has now: the lines of {@code /proc/self/maps}. */
    public static long mappingsInUse() {
        // Latin-1: a mapped file's name is bytes, not UTF-8, and any byte is one char of it.
        try (BufferedReader maps = Files.newBufferedReader(SELF_MAPS, java.nio.charset.StandardCharsets.ISO_8859_1)) {
            long lines = 0;
            while (maps.readLine() != null) {
                lines++;
            }
            return lines;
        } catch (IOException e) {
            throw new KvmException(KvmException.Kind.UNAVAILABLE, "cannot count mappings in " + SELF_MAPS + ": "
                    + e.getMessage());
        }
    }

    /** Mappings that may still be created before the reserve is touched, counted now; negative if over. */
    public synchronized long mappingsLeft() {
        refreshLimit();
        estimate = mappingsInUse();
        return limit - reserve - estimate;
    }

    /**
     * Admits one remap of guest page {@code guestPage}, counting it as two new mappings. Allocates nothing
     * unless it counts the mappings again (near the limit, or at the first remap) or throws: the message,
     * which names the page, is made only then.
     *
     * @throws KvmException {@link KvmException.Kind#MAPPING_LIMIT} if the remap could eat into the reserve
     */
    synchronized void charge(int guestPage) {
        if (estimate < 0 || estimate + WORST_CASE_PER_REMAP > limit - reserve) {
            refreshLimit();
            estimate = mappingsInUse();
            if (estimate + WORST_CASE_PER_REMAP > limit - reserve) {
                throw new KvmException(KvmException.Kind.MAPPING_LIMIT, limitMessage("guest page " + guestPage));
            }
        }
        estimate += WORST_CASE_PER_REMAP;
    }

    /**
     * True if {@code remaps} more remaps fit before the reserve, counted as {@link #charge} counts them;
     * charges nothing. Merging asks this first, with room to spare for the breaks that may follow.
     */
    synchronized boolean hasRoomFor(int remaps) {
        long needed = (long) remaps * WORST_CASE_PER_REMAP;
        if (estimate < 0 || estimate + needed > limit - reserve) {
            refreshLimit();
            estimate = mappingsInUse();
        }
        return estimate + needed <= limit - reserve;
    }

    /**
     * Counts one remap that must not be refused: a copy-on-write break, a page made writable again, or
     * the remap of a merge whose room {@link #hasRoomFor} granted before its compare. A break or a restore
     * adds no mapping in the usual case (the page is a mapping of its own already), and merging stops
     * early enough to leave room where it does.
     */
    synchronized void chargeUnrefusable() {
        if (estimate >= 0) {
            estimate += WORST_CASE_PER_REMAP;
        }
    }

    /** The message that says merging stopped here, and how to raise the limit. */
    synchronized String limitMessage(String what) {
        return "remapping " + what + " could exceed "
                + (fixedLimit > 0 ? "this budget's limit of " : "vm.max_map_count = ") + limit
                + " mappings: " + estimate + " in use, " + reserve + " kept free for the JVM. Nothing was "
                + "remapped; merging stops here. Raise the limit as root: sysctl -w vm.max_map_count="
                + Math.max(2 * limit, 262_144) + " (about two per merged page above today's use)";
    }

    private void refreshLimit() {
        if (fixedLimit > 0) {
            limit = fixedLimit;
            reserve = fixedReserve;
            return;
        }
        try {
            // Not Files.readString: for a file of size 0 it reads one byte first, and a sysctl file
            // answers any read past offset 0 with end of file, so it returned "6" for 65530 here.
            limit = Long.parseLong(Files.readAllLines(MAX_MAP_COUNT).getFirst().trim());
        } catch (IOException | NumberFormatException | java.util.NoSuchElementException e) {
            throw new KvmException(KvmException.Kind.UNAVAILABLE, "cannot read " + MAX_MAP_COUNT + ": "
                    + e.getMessage());
        }
        reserve = Math.max(1024, limit / 16);
    }
}
