package io.samepage.daemon;

import io.samepage.core.Guest;
import io.samepage.daemon.DaemonException.Kind;
import io.samepage.hashing.Pages;
import io.samepage.host.KernelKsm;
import io.samepage.host.KsmStat;
import io.samepage.host.MemoryRegion;
import io.samepage.host.PageDigestEstimator;
import io.samepage.host.ProcessMemory;
import io.samepage.host.ProcessScanException;
import io.samepage.host.QemuGuest;
import io.samepage.host.RegionScan;
import io.samepage.host.ResidentPageSink;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.OptionalLong;
import java.util.function.LongFunction;

/**
 * A live source of the daemon and of {@code samepage scan}: a process ({@code source=pid:PID},
 * {@code --pid}) or a QEMU guest's RAM ({@code source=qemu}, {@code --qemu}), opened and checked before
 * anything is loaded, then copied into a guest.
 *
 * <p>What becomes the guest. For {@code --pid}: the process's private readable mappings, laid end to
 * end in address order (a page's guest offset is its offset among them); shared mappings are left out
 * (KSM never merges them), and so are {@code [vvar]} and {@code [vsyscall]}. Only anonymous pages are
 * read: a present page of the page cache (a private file mapping never written, such as a library's
 * code) is already shared by the kernel and KSM does not merge it; it is counted in
 * {@code pages_file_backed}. For {@code --qemu}: the one mapping that holds the guest's RAM, at the
 * guest's own offsets, every present page read, file and memfd pages included (they are the guest's
 * memory).
 *
 * <p>Pages not read stay never-written guest memory: no frame, in no counter, as an all-zero chunk of
 * a file is. Resident pages of zeros are read and written, as the RAM they hold is real.
 *
 * <p>Not thread safe; holds the process's pagemap open until closed.
 */
public final class ProcessSource implements AutoCloseable {

    /** The largest guest the engine holds: 2^31 - 9 pages. */
    private static final long MAX_PAGES = Integer.MAX_VALUE - 8;

    private final String name;
    private final ProcessMemory memory;
    private final QemuGuest qemu;
    private final List<MemoryRegion> regions;
    private final long bytes;
    private final long residentPages;

    private ProcessSource(String name, ProcessMemory memory, QemuGuest qemu, List<MemoryRegion> regions) {
        this.name = name;
        this.memory = memory;
        this.qemu = qemu;
        this.regions = regions;
        long total = 0;
        long resident = 0;
        for (MemoryRegion region : regions) {
            total += region.bytes();
            resident += memory.census(region, includeFilePages()).pagesResident();
        }
        this.bytes = total;
        this.residentPages = resident;
    }

    /** What loading one source found, for the report. */
    public record Load(ProcessSource source, long pagesResident, long pagesNotResident, long pagesFileBacked,
            boolean partial, KsmStat kernelKsm) {

        /** What kernel KSM reports for a process in {@code /proc/PID/ksm_stat}, in its names. */
        public static final List<String> KERNEL_KSM = List.of("ksm_rmap_items", "ksm_zero_pages",
                "ksm_merging_pages", "ksm_process_profit");

        /**
         * The source's figures under the names {@code samepage scan --json} prints, in order; values are
         * numbers, booleans, strings, null, or maps of those ({@code kernel_ksm}, {@code qemu}).
         */
        public Map<String, Object> fields() {
            Map<String, Object> fields = new LinkedHashMap<>();
            fields.put("pid", source.pid());
            fields.put("pages_resident", pagesResident);
            fields.put("pages_not_resident", pagesNotResident);
            fields.put("pages_file_backed", pagesFileBacked);
            fields.put("partial", partial);
            fields.put("kernel_ksm", kernelKsm.present() ? kernelKsmValues() : null);
            if (!kernelKsm.present()) {
                fields.put("kernel_ksm_absent", kernelKsm.absentReason().orElse("absent"));
            }
            QemuGuest qemu = source.qemu();
            if (qemu != null) {
                Map<String, Object> q = new LinkedHashMap<>();
                q.put("name", qemu.name());
                q.put("ram_bytes", qemu.commandLine().ramBytes());
                q.put("ram_mapping", qemu.ram().toString());
                q.put("found_by", qemu.foundBy().name().toLowerCase(Locale.ROOT));
                fields.put("qemu", q);
            }
            return fields;
        }

        /** {@link #KERNEL_KSM}'s values for this process, each null where the kernel does not report it. */
        public Map<String, Long> kernelKsmValues() {
            Map<String, Long> values = new LinkedHashMap<>();
            for (String name : KERNEL_KSM) {
                OptionalLong value = kernelKsm.number(name);
                values.put(name, value.isPresent() ? value.getAsLong() : null);
            }
            return values;
        }

        /** What a reader of the report must know about this source, one line each (none if nothing). */
        public List<String> notes() {
            List<String> notes = new ArrayList<>();
            if (!kernelKsm.present()) {
                notes.add(source.name() + ": no kernel KSM figures: " + kernelKsm.absentReason().orElse("absent"));
            }
            if (partial) {
                notes.add(source.name() + ": exited while it was read; its counters cover the pages read before "
                        + "(partial)");
            }
            QemuGuest qemu = source.qemu();
            if (qemu != null) {
                notes.add(String.format(Locale.ROOT, "%s: %.2f MiB of RAM in mapping %s, found by %s",
                        source.name(), qemu.commandLine().ramBytes() / (double) (1 << 20), qemu.ram(),
                        qemu.foundBy().name().toLowerCase(Locale.ROOT)));
            }
            return notes;
        }
    }

    /**
     * Opens process {@code pid} and checks that its memory can be read.
     *
     * @throws ProcessScanException if it cannot be opened or read ({@link #mapped} gives the daemon's kind)
     * @throws DaemonException      {@link DaemonException.Kind#SOURCE} if it has no memory to scan
     */
    public static ProcessSource forPid(int pid) {
        ProcessMemory memory = ProcessMemory.open(pid);
        try {
            List<MemoryRegion> regions = new ArrayList<>();
            for (MemoryRegion region : memory.regions()) {
                if (region.readable() && region.isPrivate() && !region.kernelSpecial()) {
                    regions.add(region);
                }
            }
            if (regions.isEmpty()) {
                throw new DaemonException(Kind.SOURCE, "pid " + pid + ": has no private readable memory to scan "
                        + "(a kernel thread, or a process that is exiting)");
            }
            return checked(new ProcessSource("pid " + pid + " (" + memory.command() + ")", memory, null, regions));
        } catch (RuntimeException | Error e) {     // an OutOfMemoryError too: the process's files are not left open
            closeAfter(memory, e);
            throw e;
        }
    }

    /** Opens the QEMU process of {@code guest}, whose RAM mapping was found, and checks it can be read; throws as {@link #forPid}. */
    public static ProcessSource forQemu(QemuGuest guest) {
        ProcessMemory memory = ProcessMemory.open(guest.pid());
        try {
            String label = guest.name() == null ? "qemu guest" : "qemu guest " + guest.name();
            return checked(new ProcessSource("pid " + guest.pid() + " (" + label + ")", memory, guest,
                    List.of(guest.ram())));
        } catch (RuntimeException | Error e) {
            closeAfter(memory, e);
            throw e;
        }
    }

    /** Closes {@code memory} after {@code failure}, adding to it what the close throws. */
    private static void closeAfter(ProcessMemory memory, Throwable failure) {
        try {
            memory.close();
        } catch (RuntimeException e) {
            failure.addSuppressed(e);
        }
    }

    private static ProcessSource checked(ProcessSource source) {
        if (source.bytes / Pages.PAGE_SIZE > MAX_PAGES) {
            throw new DaemonException(Kind.SOURCE, source.name + ": " + source.bytes + " bytes of memory to scan, "
                    + "more than a guest holds (" + MAX_PAGES + " pages of 4096 bytes)");
        }
        source.memory.checkReadable();
        return source;
    }

    /**
     * {@link DaemonException.Kind#SOURCE} for a process that cannot be read, {@link DaemonException.Kind#FAILED}
     * for an I/O failure; anything else unchanged.
     */
    static RuntimeException mapped(RuntimeException e) {
        if (e instanceof ProcessScanException p) {
            return new DaemonException(p.kind() == ProcessScanException.Kind.IO ? DaemonException.Kind.FAILED
                    : DaemonException.Kind.SOURCE, p.getMessage(), p);
        }
        return e;
    }

    public String name() {
        return name;
    }

    public int pid() {
        return memory.pid();
    }

    /** The QEMU guest this is the RAM of, or null for {@code --pid}. */
    public QemuGuest qemu() {
        return qemu;
    }

    /** The guest's size: the regions' bytes. */
    public long bytes() {
        return bytes;
    }

    /** Pages that were resident (and of the kind read) when the source was opened. */
    public long residentPages() {
        return residentPages;
    }

    private boolean includeFilePages() {
        return qemu != null;
    }

    /**
     * Copies the resident pages into {@code guest} (at least {@link #bytes()} large), then reads what
     * kernel KSM achieves for the process now.
     *
     * @throws DaemonException {@link DaemonException.Kind#SOURCE} if reading is refused,
     *                         {@link DaemonException.Kind#FAILED} for another failure; a process that exits
     *                         meanwhile is not an error: the load is partial
     */
    public Load loadInto(Guest guest, KernelKsm kernelKsm) {
        return read(regionBase -> (address, pages) -> guest.write(regionBase + address, MemorySegment.ofBuffer(pages)),
                kernelKsm);
    }

    /**
     * Counts the resident pages into {@code estimator}, as the current guest (begun by the caller), and
     * keeps none; then reads what kernel KSM achieves for the process now. Throws as {@link #loadInto}.
     */
    public Load estimateInto(PageDigestEstimator estimator, KernelKsm kernelKsm) {
        ResidentPageSink sink = (address, pages) -> estimator.accept(MemorySegment.ofBuffer(pages));
        return read(regionBase -> sink, kernelKsm);
    }

    /** Reads every region's resident pages into the sink made for its guest base less its start address. */
    private Load read(LongFunction<ResidentPageSink> sinkForBase, KernelKsm kernelKsm) {
        long base = 0;
        long resident = 0;
        long notResident = 0;
        long fileBacked = 0;
        boolean partial = false;
        try {
            for (MemoryRegion region : regions) {
                RegionScan scan = memory.copyResident(region, includeFilePages(),
                        sinkForBase.apply(base - region.start()));
                resident += scan.pagesRead();
                notResident += scan.pagesNotResident();
                fileBacked += scan.pagesFileBacked();
                if (scan.exited()) {
                    partial = true;
                    break;
                }
                base += region.bytes();
            }
        } catch (ProcessScanException e) {
            throw mapped(e);
        }
        return new Load(this, resident, notResident, fileBacked, partial, kernelKsm.ksmStat(pid()));
    }

    @Override
    public void close() {
        memory.close();
    }
}
