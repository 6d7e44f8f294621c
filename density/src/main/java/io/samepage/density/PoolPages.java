package io.samepage.density;

import io.samepage.host.ProcessMemory;
import io.samepage.linux.PageMapEntry;
import io.samepage.linux.ZeroPageProbe;
import java.io.BufferedReader;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.HashSet;
import java.util.Set;

/**
 * What the kernel holds for an engine's frame pool: the pages of the pool's mapping that it keeps in RAM
 * or in swap, and, where huge pages may back the mapping, the whole of every huge page (large folio) that
 * one of those pages lies in.
 *
 * <p>Sources, all read as text or binary {@code /proc} files, no system call of the engine's own: {@code
 * /proc/self/pagemap} over exactly the pool's addresses (present, swapped, and the frame number where this
 * process may see it: CAP_SYS_ADMIN), {@code /proc/self/smaps} for the mappings that cover the pool
 * ({@code THPeligible}, {@code AnonHugePages}), and {@code /proc/kpageflags} for the frames of the pool's
 * resident pages. A page that maps the kernel's zero page (read, never written) has no RAM of its own and
 * is left out where its frame number is visible ({@link ZeroPageProbe}).
 *
 * <p>Why the huge pages: discarding one 4 KiB frame of a huge page only splits its mapping. The page
 * leaves pagemap and {@code Rss}, but the kernel keeps the whole huge page until it is short of memory
 * (docs/perf/engine.md, fifteenth session). Pagemap and {@code Rss} alone cannot see that, so where the
 * kernel may back the pool with huge pages, each resident page's frame is looked up in kpageflags and every
 * large folio is counted whole. Where it may not ({@code THPeligible: 0} and no {@code AnonHugePages}: the
 * pool's {@code MADV_NOHUGEPAGE}), there is none to count.
 *
 * @param residentPages         pages of the mapping in RAM, each with a frame of its own; -1 if not read
 * @param swappedPages          pages of the mapping in swap
 * @param residentInLargeFolios of the resident pages, those in a large folio; -1 if not counted
 * @param largeFolioPages       pages of the distinct large folios those lie in, mapped or not; -1 if not
 *                              counted
 * @param hugePagesEligible     the kernel may back the mapping with huge pages, or does
 * @param note                  why something was not counted, or null
 */
record PoolPages(long residentPages, long swappedPages, long residentInLargeFolios, long largeFolioPages,
        boolean hugePagesEligible, String note) {

    private static final int PAGE = 4096;
    /** Pagemap entries read at a time: 32 MiB of the pool. */
    private static final int CHUNK_PAGES = 8192;
    /** The largest anonymous folio, in pages: a PMD's reach (2 MiB) with 4 KiB pages. */
    static final int MAX_FOLIO_PAGES = 512;
    /** kpageflags bits (include/uapi/linux/kernel-page-flags.h). */
    private static final long KPF_COMPOUND_HEAD = 1L << 15;
    private static final long KPF_COMPOUND_TAIL = 1L << 16;

    private static final Path SMAPS = Path.of("/proc/self/smaps");
    private static final Path KPAGEFLAGS = Path.of("/proc/kpageflags");

    /** Nothing could be read, for the reason given. */
    static PoolPages unread(String why) {
        return new PoolPages(-1, 0, -1, -1, false, why);
    }

    /**
     * Pages the kernel holds for the mapping: resident and swapped pages, with each large folio counted
     * whole in place of its resident pages; -1 if that is not known.
     */
    long heldPages() {
        if (residentPages < 0 || largeFolioPages < 0) {
            return -1;
        }
        return residentPages - residentInLargeFolios + largeFolioPages + swappedPages;
    }

    /**
     * Reads what the kernel holds for {@code region} now. Never throws: what cannot be read is -1, with
     * the reason in {@link #note()}.
     */
    static PoolPages read(MemorySegment region) {
        long start = region.address();
        long end = start + region.byteSize();
        Huge huge;
        try {
            huge = huge(start, end);
        } catch (IOException | RuntimeException e) {
            return unread("cannot read " + SMAPS + ": " + e.getMessage());
        }
        try (ProcessMemory self = ProcessMemory.open((int) ProcessHandle.current().pid());
                Folios folios = huge.eligible() ? Folios.open() : null) {
            ZeroPageProbe.Frames zero = ZeroPageProbe.frames();
            long resident = 0;
            long swapped = 0;
            long inFolios = 0;
            boolean framesHidden = false;
            long pages = region.byteSize() / PAGE;
            for (long done = 0; done < pages; done += CHUNK_PAGES) {
                int n = (int) Math.min(CHUNK_PAGES, pages - done);
                for (long entry : self.pagemap(start + done * PAGE, n)) {
                    long frame = PageMapEntry.frame(entry);
                    if (frame < 0) {
                        swapped += PageMapEntry.swapped(entry) ? 1 : 0;
                    } else if (!zero.isZero(frame)) {
                        resident++;
                        framesHidden |= frame == 0;
                        if (folios != null && frame > 0 && folios.add(frame)) {
                            inFolios++;
                        }
                    }
                }
            }
            if (!huge.eligible()) {
                return new PoolPages(resident, swapped, 0, 0, false, null);
            }
            if (folios == null || framesHidden) {
                return new PoolPages(resident, swapped, -1, -1, true, "the kernel may back the pool with huge pages ("
                        + huge + ") and " + (folios == null ? "/proc/kpageflags cannot be read"
                        : "hides frame numbers from this process (CAP_SYS_ADMIN shows them)")
                        + ", so the unmapped parts of split huge pages are not counted");
            }
            return new PoolPages(resident, swapped, inFolios, folios.pages(), true, null);
        } catch (IOException | RuntimeException e) {     // ProcessScanException included
            return unread("cannot read the pool's pages in /proc/self/pagemap or /proc/kpageflags: " + e.getMessage());
        }
    }

    /**
     * What smaps says of huge pages in the mappings that cover [start, end): whether any may hold them
     * ({@code THPeligible}), and the huge pages mapped whole ({@code AnonHugePages}).
     */
    private record Huge(boolean thpEligible, long anonHugeKib) {

        boolean eligible() {
            return thpEligible || anonHugeKib > 0;
        }

        @Override
        public String toString() {
            return "THPeligible " + (thpEligible ? 1 : 0) + ", AnonHugePages " + anonHugeKib + " kB";
        }
    }

    private static Huge huge(long start, long end) throws IOException {
        boolean inside = false;
        boolean eligible = false;
        long anonHuge = 0;
        try (BufferedReader smaps = Files.newBufferedReader(SMAPS)) {
            for (String line = smaps.readLine(); line != null; line = smaps.readLine()) {
                int dash = line.indexOf('-');
                int space = line.indexOf(' ');
                if (dash > 0 && space > dash && line.indexOf(':') > space) {
                    long from = Long.parseUnsignedLong(line, 0, dash, 16);
                    long to = Long.parseUnsignedLong(line, dash + 1, space, 16);
                    inside = Long.compareUnsigned(from, end) < 0 && Long.compareUnsigned(start, to) < 0;
                } else if (inside && line.startsWith("THPeligible:")) {
                    eligible |= line.substring("THPeligible:".length()).strip().equals("1");
                } else if (inside && line.startsWith("AnonHugePages:")) {
                    anonHuge += Long.parseLong(line.replaceAll("\\D", ""));
                }
            }
        }
        return new Huge(eligible, anonHuge);
    }

    /**
     * The large folios that back resident pages, from {@code /proc/kpageflags}: a frame's flags say whether
     * it is the head or a tail of a compound page. An anonymous folio is at most {@value #MAX_FOLIO_PAGES}
     * pages and naturally aligned, so its head and its end lie in the aligned 512-frame window of any of its
     * frames; one window is kept, since a folio's pages are neighbours in the pool too.
     */
    private static final class Folios implements AutoCloseable {

        private final FileChannel flags;
        private final ByteBuffer window = ByteBuffer.allocate(MAX_FOLIO_PAGES * 8).order(ByteOrder.nativeOrder());
        private final ByteBuffer one = ByteBuffer.allocate(8).order(ByteOrder.nativeOrder());
        private final Set<Long> heads = new HashSet<>();
        private long windowStart = -1;
        private long pages;

        private Folios(FileChannel flags) {
            this.flags = flags;
        }

        /** Null if kpageflags cannot be opened (it needs root). */
        static Folios open() {
            try {
                return new Folios(FileChannel.open(KPAGEFLAGS, StandardOpenOption.READ));
            } catch (IOException | SecurityException e) {
                return null;
            }
        }

        /** Records the folio of {@code frame}, if it is in one; true if it is. */
        boolean add(long frame) throws IOException {
            long start = frame & -MAX_FOLIO_PAGES;
            long own = start == windowStart ? window.getLong((int) (frame - start) * 8) : flagsOf(frame);
            if ((own & (KPF_COMPOUND_HEAD | KPF_COMPOUND_TAIL)) == 0) {
                return false;
            }
            loadWindow(start);
            int head = (int) (frame - start);
            while (head > 0 && (window.getLong(head * 8) & KPF_COMPOUND_HEAD) == 0) {
                head--;
            }
            if (heads.add(start + head)) {
                int tail = head + 1;
                while (tail < MAX_FOLIO_PAGES && (window.getLong(tail * 8) & KPF_COMPOUND_TAIL) != 0) {
                    tail++;
                }
                pages += tail - head;
            }
            return true;
        }

        long pages() {
            return pages;
        }

        private long flagsOf(long frame) throws IOException {
            readFully(one.clear(), frame * 8);
            return one.getLong(0);
        }

        private void loadWindow(long start) throws IOException {
            if (start != windowStart) {
                windowStart = -1;
                readFully(window.clear(), start * 8);
                windowStart = start;
            }
        }

        private void readFully(ByteBuffer into, long position) throws IOException {
            while (into.hasRemaining()) {
                if (flags.read(into, position + into.position()) <= 0) {
                    throw new IOException(KPAGEFLAGS + " ended at frame " + (position + into.position()) / 8);
                }
            }
        }

        @Override
        public void close() throws IOException {
            flags.close();
        }
    }
}
