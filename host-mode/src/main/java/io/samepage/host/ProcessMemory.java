package io.samepage.host;

import io.samepage.linux.PageMapEntry;
import io.samepage.linux.ZeroPageProbe;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;

/**
 * Another process's memory, read without disturbing it: its mappings from {@code /proc/PID/maps},
 * which pages are resident from {@code /proc/PID/pagemap}, and the resident pages' bytes from
 * {@code /proc/PID/mem}.
 *
 * <h2>Why the target is not disturbed</h2>
 * <ul>
 *   <li>Nothing is ever written to the target, and it is never stopped (no ptrace attach).</li>
 *   <li>Only pages that pagemap shows present are read. Reading a page that is not present would fault
 *       it in: allocate a frame for it, or swap it in. A page that is present but maps the kernel's
 *       zero page is not read either, where frame numbers are visible ({@link ZeroPageProbe}).</li>
 *   <li>Pagemap is read again right before each batch of at most 1 MiB is copied, so a page the kernel
 *       reclaims meanwhile can be faulted back in only within that window (microseconds); this is the
 *       one way a scan can make a page resident, and only a page that was resident a moment before.</li>
 *   <li>Reads are batched, up to {@value #BATCH_PAGES} pages (1 MiB) at a time, one read per run of
 *       contiguous pages.</li>
 *   <li>Pages that kernel KSM has merged stay merged. {@code /proc/PID/mem} takes a plain reference to
 *       each page it copies. {@code process_vm_readv(2)}, used before, pins each page read-only, and the
 *       kernel (since 5.19) first gives a read-only pin an exclusive copy of a page that is not the
 *       process's alone, a KSM page included: every scan after KSM, and the policy loop's estimate at
 *       every interval, unmerged every merged page it read ({@code ScanLeavesKsmMergesTest}).</li>
 * </ul>
 *
 * <h2>A process that exits, or a pid that is reused</h2>
 * The pagemap and mem files stay bound to the memory of the process they were opened for: once that
 * process has exited they read as empty, whatever now has its pid, so a page read is always the
 * process's own. A process that exits during {@link #copyResident} ends the
 * copy: the result is marked {@link RegionScan#exited()} and covers the pages before.
 *
 * <h2>What an open instance holds</h2>
 * The pagemap file and 64 KiB of native memory from {@link #open}, then, from the first copy, the mem
 * file and a 1 MiB buffer: two descriptors and about 1 MiB, all released by {@link #close()} (the
 * buffers are native memory of the instance's own arena, freed at once, not left to the garbage
 * collector). Whoever reads many processes opens, reads and closes them one at a time.
 *
 * <p>Not thread safe: use an instance from one thread (the one that first copies from it).
 */
public final class ProcessMemory implements AutoCloseable {

    /** Pagemap entries read per step: 64 KiB of pagemap, 32 MiB of the target's address space. */
    static final int PAGEMAP_CHUNK_PAGES = 8192;

    /** Pages read at most per batch: 1 MiB. */
    static final int BATCH_PAGES = 256;

    private static final int PAGE = MemoryRegion.PAGE_SIZE;

    private enum PageKind { RESIDENT, NOT_PRESENT, SWAPPED, ZERO_PAGE, FILE_BACKED }

    private final int pid;
    private final Path dir;
    private final String command;
    private final long startTime;
    private final FileChannel pagemap;
    private final ZeroPageProbe.Frames zeroFrames;
    /** The buffers' memory, freed by {@link #close()}; shared, as an instance may move to another thread. */
    private final Arena arena;
    private final ByteBuffer pagemapBytes;
    private final ByteBuffer aliveProbe;
    private final long[] entries;
    private final long[] batch;
    /** Opened only once {@link #pages} is made ({@link #ensureReader}): never without it. */
    private FileChannel mem;
    private ByteBuffer pages;
    private ByteBuffer pagesView;
    private boolean closed;

    /** Takes {@code pagemap} once made; if it throws, its caller ({@link #open}) closes {@code pagemap}. */
    private ProcessMemory(int pid, Path dir, String command, long startTime, FileChannel pagemap) {
        this.pid = pid;
        this.dir = dir;
        this.command = command;
        this.startTime = startTime;
        this.pagemap = pagemap;
        Arena buffers = null;
        try {
            this.entries = new long[PAGEMAP_CHUNK_PAGES];
            this.batch = new long[BATCH_PAGES];
            this.zeroFrames = ZeroPageProbe.frames();
            buffers = Arena.ofShared();
            this.pagemapBytes = buffers.allocate(PAGEMAP_CHUNK_PAGES * 8L, 8).asByteBuffer()
                    .order(ByteOrder.nativeOrder());
            this.aliveProbe = buffers.allocate(8, 8).asByteBuffer();
        } catch (RuntimeException | Error e) {
            if (buffers != null) {
                buffers.close();
            }
            throw e;
        }
        this.arena = buffers;
    }

    /**
     * Opens process {@code pid}: reads its name and state, opens its pagemap.
     *
     * @throws ProcessScanException NO_SUCH_PROCESS if there is none, EXITED if it is a zombie,
     *                              PERMISSION_DENIED if the kernel refuses its pagemap
     */
    public static ProcessMemory open(int pid) {
        if (pid <= 0) {
            throw ProcessScanException.noSuchProcess(pid);
        }
        Path dir = Path.of("/proc", Integer.toString(pid));
        String stat = read(pid, dir.resolve("stat"), ProcessScanException.Kind.NO_SUCH_PROCESS);
        int open = stat.indexOf('(');
        int close = stat.lastIndexOf(')');
        if (open < 0 || close < open || close + 2 >= stat.length()) {
            throw new ProcessScanException(ProcessScanException.Kind.IO, pid, "cannot parse " + dir.resolve("stat"));
        }
        char state = stat.charAt(close + 2);
        if (state == 'Z' || state == 'X') {
            throw ProcessScanException.exited(pid, "(a zombie: its parent has not reaped it yet)");
        }
        long startTime = startTime(stat.substring(close + 2));
        Path pagemapPath = dir.resolve("pagemap");
        FileChannel pagemap;
        try {
            pagemap = FileChannel.open(pagemapPath, StandardOpenOption.READ);
        } catch (IOException e) {
            throw ProcessScanException.ofIoException(pid, pagemapPath.toString(),
                    ProcessScanException.Kind.NO_SUCH_PROCESS, e);
        }
        try {
            return new ProcessMemory(pid, dir, stat.substring(open + 1, close), startTime, pagemap);
        } catch (RuntimeException | Error e) {     // an OutOfMemoryError too: the pagemap is not left open
            try (pagemap) {
                // closed; the failure that got here is the one reported
            } catch (IOException | RuntimeException suppressed) {
                e.addSuppressed(suppressed);
            }
            throw e;
        }
    }

    /**
     * Field 22 of {@code stat} ({@code starttime}), given the fields from the third ({@code state}) on;
     * -1 if it is missing or not a number.
     */
    private static long startTime(String fromState) {
        String[] fields = fromState.strip().split(" ");
        try {
            return fields.length > 19 ? Long.parseLong(fields[19]) : -1;
        } catch (NumberFormatException e) {
            return -1;
        }
    }

    public int pid() {
        return pid;
    }

    /**
     * When the process started, in clock ticks after boot ({@code starttime} of {@code /proc/PID/stat});
     * -1 if unknown. With the pid it names one process: a reused pid comes with a later start.
     */
    long startTime() {
        return startTime;
    }

    /** The process's name as the kernel keeps it ({@code comm}: at most 15 bytes). */
    public String command() {
        return command;
    }

    /**
     * True if pages that map the kernel's zero page are told apart (frame numbers are visible: this
     * process has CAP_SYS_ADMIN). If false they count as resident pages of zeros.
     */
    public boolean recognizesZeroPage() {
        return zeroFrames.zeroPage() > 0;
    }

    /**
     * The process's mappings now, parsed from {@code /proc/PID/maps} (empty for a kernel thread).
     *
     * @throws ProcessScanException EXITED if the process is gone, PERMISSION_DENIED, or IO if the
     *                              file does not parse ({@link MemoryMaps})
     */
    public List<MemoryRegion> regions() {
        return MemoryMaps.parse(pid, read(pid, dir.resolve("maps"), ProcessScanException.Kind.EXITED));
    }

    /**
     * The raw pagemap entries of {@code pageCount} pages from {@code address} (decode them with
     * {@link PageMapEntry}). Pages outside every mapping read as 0.
     *
     * @throws ProcessScanException EXITED if the process has exited
     */
    public long[] pagemap(long address, int pageCount) {
        long[] result = new long[pageCount];
        for (int done = 0; done < pageCount; ) {
            int n = Math.min(PAGEMAP_CHUNK_PAGES, pageCount - done);
            int got = readPagemap(address + (long) done * PAGE, n);
            if (got < n && !alive()) {
                throw ProcessScanException.exited(pid, "(its pagemap reads as empty)");
            }
            System.arraycopy(entries, 0, result, done, got);
            done += n;
        }
        return result;
    }

    /**
     * Counts the pages of {@code region} by kind without reading any: what {@link #copyResident} would
     * read now ({@link RegionScan#pagesResident()}) and what it would leave.
     */
    public RegionScan census(MemoryRegion region, boolean includeFilePages) {
        return scan(region, includeFilePages, null, 0, null);
    }

    /** Receives a census's resident pages slice by slice. */
    @FunctionalInterface
    interface SliceCensus {
        /** {@code residentPages} (above 0) in slice {@code slice}, counted from the region's start. */
        void accept(long slice, int residentPages);
    }

    /**
     * {@link #census(MemoryRegion, boolean)}, in the same one walk of pagemap also handing {@code slices}
     * the resident pages of each {@code slicePages}-page slice that holds any, in address order.
     */
    RegionScan census(MemoryRegion region, boolean includeFilePages, int slicePages, SliceCensus slices) {
        return scan(region, includeFilePages, null, slicePages, java.util.Objects.requireNonNull(slices));
    }

    /**
     * Reads every resident page of {@code region} and hands it to {@code sink}, in address order, in
     * runs of contiguous pages.
     *
     * @param includeFilePages also read present pages of the page cache or shared memory (a QEMU guest's
     *                         memfd or file-backed RAM); if false only anonymous pages are read (what
     *                         KSM can merge) and the others are counted in {@link RegionScan#pagesFileBacked()}
     * @return what was found; {@link RegionScan#exited()} if the process exited meanwhile
     * @throws ProcessScanException PERMISSION_DENIED if the kernel refuses the read, IO for another
     *                              failure; whatever {@code sink} throws passes through unchanged
     */
    public RegionScan copyResident(MemoryRegion region, boolean includeFilePages, ResidentPageSink sink) {
        ensureReader();
        return scan(region, includeFilePages, java.util.Objects.requireNonNull(sink, "sink"), 0, null);
    }

    /**
     * Checks that the kernel lets this process read the target's memory: opening {@code /proc/PID/mem}
     * needs more than pagemap does (ptrace attach rights, which Yama's {@code ptrace_scope} may refuse
     * even to the same user), and the kernel checks them when it is opened.
     *
     * @throws ProcessScanException PERMISSION_DENIED if the open is refused, EXITED if the process has
     *                              exited, IO for another failure
     */
    public void checkReadable() {
        ensureReader();
    }

    /** Makes the 1 MiB buffer, then opens the mem file: a throw (an Error too) leaves it unopened, to try again. */
    private void ensureReader() {
        if (mem != null) {
            return;
        }
        if (pages == null) {
            ByteBuffer buffer = arena.allocate((long) BATCH_PAGES * PAGE, PAGE).asByteBuffer();
            pagesView = buffer.asReadOnlyBuffer();
            pages = buffer;
        }
        Path path = dir.resolve("mem");
        try {
            mem = FileChannel.open(path, StandardOpenOption.READ);
        } catch (IOException e) {
            throw ProcessScanException.ofIoException(pid, path.toString(), ProcessScanException.Kind.EXITED, e);
        }
    }

    private RegionScan scan(MemoryRegion region, boolean includeFilePages, ResidentPageSink sink, int slicePages,
                            SliceCensus slices) {
        Tally t = new Tally();
        long pages = region.pages();
        for (long done = 0; done < pages && !t.exited; ) {
            int n = (int) Math.min(PAGEMAP_CHUNK_PAGES, pages - done);
            long chunk = region.start() + done * PAGE;
            int got = readPagemap(chunk, n);
            if (got < n) {
                if (alive()) {
                    t.notPresent += n - got;
                } else {
                    t.exited = true;
                }
            }
            int batched = 0;
            for (int i = 0; i < got && !t.exited; i++) {
                switch (classify(entries[i], includeFilePages)) {
                    case NOT_PRESENT -> t.notPresent++;
                    case SWAPPED -> t.swapped++;
                    case ZERO_PAGE -> t.zeroPage++;
                    case FILE_BACKED -> t.fileBacked++;
                    case RESIDENT -> {
                        t.resident++;
                        if (slices != null) {
                            long index = done + i;
                            if (index >= t.sliceEnd) {
                                t.flush(slices);
                                t.slice = index / slicePages;
                                t.sliceEnd = (t.slice + 1) * slicePages;
                            }
                            t.sliceResident++;
                        }
                        if (sink != null) {
                            batch[batched++] = chunk + (long) i * PAGE;
                            if (batched == batch.length) {
                                copy(batched, sink, t);
                                batched = 0;
                            }
                        }
                    }
                }
            }
            if (batched > 0 && !t.exited) {
                copy(batched, sink, t);
            }
            done += n;
        }
        if (slices != null) {
            t.flush(slices);
        }
        return new RegionScan(region, t.resident, t.read, t.unreadable, t.notPresent, t.swapped, t.zeroPage,
                t.fileBacked, t.exited);
    }

    private PageKind classify(long entry, boolean includeFilePages) {
        if (!PageMapEntry.present(entry)) {
            return PageMapEntry.swapped(entry) ? PageKind.SWAPPED : PageKind.NOT_PRESENT;
        }
        if (zeroFrames.isZero(PageMapEntry.frame(entry))) {
            return PageKind.ZERO_PAGE;
        }
        return PageMapEntry.fileOrShared(entry) && !includeFilePages ? PageKind.FILE_BACKED : PageKind.RESIDENT;
    }

    /** Reads the pages at {@code batch[0 .. count)} (ascending) and hands them on, a run of contiguous pages at a time. */
    private void copy(int count, ResidentPageSink sink, Tally t) {
        int runStart = 0;
        for (int i = 1; i <= count && !t.exited; i++) {
            if (i == count || batch[i] != batch[i - 1] + PAGE) {
                copyRun(batch[runStart], i - runStart, sink, t);
                runStart = i;
            }
        }
    }

    /**
     * Reads {@code count} contiguous pages from {@code address} and hands on those read; a page the kernel
     * will not read (unmapped meanwhile, or device memory) is counted unreadable and skipped.
     */
    private void copyRun(long address, int count, ResidentPageSink sink, Tally t) {
        int done = 0;
        while (done < count) {
            long at = address + (long) done * PAGE;
            int wanted = count - done;
            int read = readPages(at, wanted);
            if (read < 0) {
                t.exited = true;
                return;
            }
            if (read > 0) {
                sink.accept(at, pagesView.slice(0, read * PAGE));
                t.read += read;
                done += read;
            }
            if (read < wanted) {
                t.unreadable++;
                done++;
            }
        }
    }

    /**
     * Reads up to {@code count} whole pages from {@code address} into {@link #pages}: the pages read, 0
     * if the first cannot be read, -1 if the process has exited (its memory reads as empty).
     */
    private int readPages(long address, int count) {
        ByteBuffer into = pages.clear().limit(count * PAGE);
        try {
            while (into.hasRemaining()) {
                if (mem.read(into, address + into.position()) < 0) {
                    if (into.position() == 0) {
                        return -1;
                    }
                    break;
                }
            }
        } catch (ClosedChannelException e) {
            throw new ProcessScanException(ProcessScanException.Kind.IO, pid, "reading its memory was interrupted", e);
        } catch (IOException e) {
            // EIO: the page at the current position cannot be read; those before it were.
        }
        return into.position() / PAGE;
    }

    /** Reads {@code count} entries from {@code address} into {@link #entries}; fewer if the read ends early. */
    private int readPagemap(long address, int count) {
        ByteBuffer bytes = pagemapBytes.clear().limit(count * 8);
        long position = (address >>> 12) * 8;
        try {
            while (bytes.hasRemaining()) {
                if (pagemap.read(bytes, position + bytes.position()) <= 0) {
                    break;
                }
            }
        } catch (IOException e) {
            throw ProcessScanException.ofIoException(pid, dir.resolve("pagemap").toString(),
                    ProcessScanException.Kind.EXITED, e);
        }
        int got = bytes.position() / 8;
        for (int i = 0; i < got; i++) {
            entries[i] = pagemapBytes.getLong(i * 8);
        }
        return got;
    }

    /**
     * True while the opened process has not exited: its pagemap still reads (the file is bound to the
     * process's memory, which the kernel tears down on exit, whatever reuses the pid).
     */
    private boolean alive() {
        try {
            return pagemap.read(aliveProbe.clear(), 0) > 0;
        } catch (IOException e) {
            return false;
        }
    }

    /**
     * Closes both files and frees the buffers; again, does nothing. A page a sink was handed is not
     * readable after.
     *
     * @throws ProcessScanException IO if a file's close reports an error (the descriptor is released
     *                              all the same, and a read-only file loses nothing)
     */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        try (Arena a = arena; FileChannel m = mem; FileChannel p = pagemap) {
            // All three closed, pagemap first, each even if another's close fails.
        } catch (IOException e) {
            throw new ProcessScanException(ProcessScanException.Kind.IO, pid, "closing its /proc files failed: "
                    + e.getMessage(), e);
        }
    }

    /** A {@code /proc/PID} file's text; paths in it that are not UTF-8 get replacement characters. */
    private static String read(int pid, Path file, ProcessScanException.Kind gone) {
        try {
            return new String(Files.readAllBytes(file), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw ProcessScanException.ofIoException(pid, file.toString(), gone, e);
        }
    }

    /** Page counts of one scan. */
    private static final class Tally {
        long resident;
        long read;
        long unreadable;
        long notPresent;
        long swapped;
        long zeroPage;
        long fileBacked;
        boolean exited;
        long slice;
        long sliceEnd;
        int sliceResident;

        void flush(SliceCensus slices) {
            if (sliceResident > 0) {
                slices.accept(slice, sliceResident);
                sliceResident = 0;
            }
        }
    }
}
