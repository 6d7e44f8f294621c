package io.samepage.kvm;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.Objects;

/**
 * One guest's memory as host mappings of {@link MemfdFrames}: a contiguous reserved range of address
 * space in which guest page {@code p} is a {@code MAP_SHARED|MAP_FIXED} mapping of one frame, read-write
 * or read-only. This range is what a {@link KvmVm} slot hands to KVM, so the guest runs directly on the
 * frames.
 *
 * <p>The operations of the engine: {@link #map} points a guest page at a frame (a merge: read-only onto
 * the shared frame; a break: read-write onto the writer's fresh copy) and {@link #protect} changes only
 * its protection (read-only before a merge compare; read-write again for the last mapper). A remap that
 * succeeds replaces the old mapping atomically, so KVM and readers never see a hole. Each is charged to
 * the frames' {@link MappingBudget} first: where the budget is spent it throws
 * {@link KvmException.Kind#MAPPING_LIMIT} and maps nothing.
 *
 * <p>A remap the kernel refuses. {@code MAP_FIXED} unmaps the old pages before it maps the new ones, and
 * some failures after that (ENOMEM at {@code vm.max_map_count}, say) return with the old pages gone.
 * So after a refused remap this class maps every page of the range that mapped a frame back onto that
 * frame, with its protection; done, the range is as it was, which is what the engine's
 * {@code PageMapping} asks of a refusal. A page it cannot map back is <em>lost</em>: it maps no frame
 * ({@link #frame} says -1), and a Java read, write or {@link #protect} of it never goes through what the
 * kernel left there: a read or write throws, and a protection change, or a {@link #map} of it, maps it
 * onto a frame again (the protection change onto the frame it mapped). A vCPU that touches it meanwhile
 * fails {@code KVM_RUN} with {@code EFAULT}, as at any unmapped address of a slot. Then every page of the
 * range not mapped back onto a frame (lost, or mapping none before) is reserved again, as the range was
 * reserved ({@code PROT_NONE}), over whatever the kernel left there: KVM's slot still names those
 * addresses, and another mapping of this process placed in a hole there (a thread stack, a malloc arena)
 * would take the vCPUs' stores. Where even that is refused the refusal's message says the range has
 * holes, and the range remembers them ({@link GuestRange}): no page is mapped over one before it is
 * reserved again where nothing else is mapped, and {@link #close} leaves them alone. Not covered: another
 * thread mapping into the hole between the refused remap and this repair, whose {@code MAP_FIXED} would
 * replace that mapping.
 *
 * <p>4 KiB pages only ({@link MemfdFrames} says why): a mapping that could hold a large folio is advised
 * {@code MADV_NOHUGEPAGE}. One of a single page cannot; but the kernel merges adjacent mappings whose file
 * offsets continue each other and whose flags agree into one, so a remap is advised when it maps more than
 * one page or continues a neighbour's frame (the neighbour first, if it was left unadvised, so that no
 * unadvised mapping of two pages ever exists). A scattered remap, the common merge onto some other frame,
 * costs no syscall more. Every mapping of more than one page is thus advised, and adjacent advised ones
 * still merge. A run is advised just after it is mapped: map runs before a guest runs.
 *
 * <p>Allocation: the remaps and protection changes the engine asks for ({@link MappedGuest}'s mapping), and
 * the public {@link #map} and {@link #protect} a VMM calls, allocate nothing unless they fail, the range
 * has holes, or the budget counts the process's mappings again (the page flags are {@link PageBits}, made
 * once; a refusal's message is made only when it is thrown). The engine cannot tell whether a mapping that
 * threw an {@link Error} changed the kernel's view, so it keeps the frame a break took for the page: an
 * {@link OutOfMemoryError} from a break's remap would cost a frame for good, and one after the kernel's
 * remap would leave the page mapping another frame than the engine's page table names.
 *
 * <p>Java code never writes a read-only page: {@link #write} refuses it (the engine breaks sharing and
 * remaps first) instead of faulting, and a page not mapped yet reads as zeros without being touched.
 * A guest write to a read-only page exits from {@link Vcpu#run()} instead.
 *
 * <p>Thread safe: every operation holds this memory's lock, so a Java write never races a remap that
 * makes its page read-only. Running vCPUs reach the pages through the kernel, not through this lock.
 */
public final class MappedGuestMemory implements AutoCloseable {

    /** Bytes per guest page. */
    public static final int PAGE_BYTES = MemfdFrames.FRAME_BYTES;

    private static final int UNMAPPED = -1;

    private final MemfdFrames frames;
    private final GuestRangeCalls calls;
    private final int guestPages;
    /** The reserved range, and its holes: every call that maps over pages of it asks it first. */
    private final GuestRange reservation;
    private final MemorySegment range;
    private final int[] frameOf;
    private final PageBits writable;
    /** Pages whose kernel mapping is advised {@code MADV_NOHUGEPAGE}; the others are one-page mappings. */
    private final PageBits advised;
    /**
     * Pages whose mapping a refused remap took and none could put back: {@link #frameOf} still names the
     * frame the engine holds for them, but the kernel maps nothing of it there. Never writable nor advised.
     */
    private final PageBits lost;
    private boolean closed;

    private MappedGuestMemory(MemfdFrames frames, GuestRangeCalls calls, int guestPages, GuestRange reservation) {
        this.frames = frames;
        this.calls = calls;
        this.guestPages = guestPages;
        this.reservation = reservation;
        this.range = reservation.segment();
        this.frameOf = new int[guestPages];
        this.writable = new PageBits(guestPages);
        this.advised = new PageBits(guestPages);
        this.lost = new PageBits(guestPages);
        Arrays.fill(frameOf, UNMAPPED);
    }

    /** Reserves the range of {@code guestPages} pages, every page unmapped; {@code calls} maps and protects them. */
    static MappedGuestMemory reserve(MemfdFrames frames, int guestPages, GuestRangeCalls calls) {
        if (guestPages < 1) {
            throw new IllegalArgumentException("guest memory needs at least one page, not " + guestPages);
        }
        GuestRange reservation = GuestRange.reserve(guestPages, calls);
        try {
            return new MappedGuestMemory(frames, calls, guestPages, reservation);
        } catch (RuntimeException | Error e) {      // an OutOfMemoryError: nothing else would unmap the range
            reservation.close();
            throw e;
        }
    }

    public int guestPages() {
        return guestPages;
    }

    /** Maps guest page {@code guestPage} onto {@code frame}: {@link #map(int, int, int, boolean)} of one page. */
    public void map(int guestPage, int frame, boolean writable) {
        map(guestPage, frame, 1, writable);
    }

    /**
     * Maps guest pages {@code [firstGuestPage, + count)} onto frames {@code [firstFrame, + count)} in one
     * mapping, replacing what they mapped. A run costs one kernel mapping however long it is: lay out a
     * new guest this way, one frame per page in order.
     *
     * @throws KvmException {@link KvmException.Kind#MAPPING_LIMIT} before the limit, mapping nothing;
     *                      {@link KvmException.Kind#REFUSED} if the kernel refuses the mapping: then the
     *                      pages map what they mapped before, except any the message names as lost (see
     *                      the class comment), and having mapped nothing if one of the pages is a hole it
     *                      cannot reserve again; or if it refuses the {@code MADV_NOHUGEPAGE} advice after
     *                      it: then the pages <em>are</em> mapped, unadvised (the message says "(mapped)")
     */
    public synchronized void map(int firstGuestPage, int firstFrame, int count, boolean writable) {
        frames.budget().charge(firstGuestPage);     // the message only if it refuses
        int advice = remap(firstGuestPage, firstFrame, count, writable);
        if (advice < 0) {
            throw KvmException.refused("madvise(MADV_NOHUGEPAGE) of guest pages " + firstGuestPage + ".."
                    + (firstGuestPage + count - 1) + " (mapped)", advice);
        }
    }

    /**
     * Maps one guest page onto {@code frame}, counted but never refused by the budget: a copy-on-write
     * break, which a guest waiting on a write exit cannot do without, or the remap of a merge whose
     * room the budget granted before its compare ({@link MappingBudget#hasRoomFor}).
     */
    synchronized void remapAdmitted(int guestPage, int frame, boolean writable) {
        frames.budget().chargeUnrefusable();
        remap(guestPage, frame, 1, writable);      // a refused advice leaves the page unadvised, retried later
    }

    /**
     * {@link #protect} counted but never refused by the budget: read-only for a merge compare whose room
     * the budget granted ({@link MappingBudget#hasRoomFor}), or writable again after it found no twin.
     */
    synchronized void protectAdmitted(int guestPage, boolean writable) {
        frames.budget().chargeUnrefusable();
        changeProtection(guestPage, writable);
    }

    /** Maps the pages, advising them where the kernel could make them part of a larger mapping: 0 or -errno of the advice. */
    private int remap(int firstGuestPage, int firstFrame, int count, boolean writable) {
        checkOpen();
        Objects.checkFromIndexSize(firstGuestPage, count, guestPages);
        Objects.checkFromIndexSize(firstFrame, count, frames.frames());
        if (count < 1) {
            throw new IllegalArgumentException("map at least one page, not " + count);
        }
        if (reservation.hasHoles()) {       // the message only then: see "Allocation" in the class comment
            reservation.claimHoles(firstGuestPage, count, "mapping guest page " + firstGuestPage + " onto frame "
                    + firstFrame);
        }
        int advice = adviseNeighbours(firstGuestPage, firstFrame, count);
        int result = calls.map(range, (long) firstGuestPage * PAGE_BYTES, (long) count * PAGE_BYTES,
                frames.fd(), (long) firstFrame * PAGE_BYTES, writable);
        if (result < 0) {
            throw KvmException.refused("mmap(MAP_SHARED|MAP_FIXED) of guest page " + firstGuestPage + " onto frame "
                    + firstFrame, result, restore(firstGuestPage, count));
        }
        return Math.min(advice, mapped(firstGuestPage, firstFrame, count, writable));
    }

    /**
     * Before a mapping of frames {@code [firstFrame, + count)} at {@code firstGuestPage}: advises each
     * unadvised neighbour the kernel could merge it with, so that no unadvised mapping of two pages ever
     * exists. 0 or -errno of the advice.
     */
    private int adviseNeighbours(int firstGuestPage, int firstFrame, int count) {
        int below = firstGuestPage - 1;
        int above = firstGuestPage + count;
        int advice = 0;
        if (continues(below, firstFrame - 1) && !advised.get(below)) {
            advice = advise(below, 1);
        }
        if (continues(above, firstFrame + count) && !advised.get(above)) {
            advice = Math.min(advice, advise(above, 1));
        }
        return advice;
    }

    /**
     * Records a mapping the kernel made, and advises it if it spans more than one page or continues a
     * neighbour's frame: 0 or -errno of the advice.
     */
    private int mapped(int firstGuestPage, int firstFrame, int count, boolean writable) {
        for (int i = 0; i < count; i++) {
            frameOf[firstGuestPage + i] = firstFrame + i;
        }
        this.writable.set(firstGuestPage, firstGuestPage + count, writable);
        lost.clear(firstGuestPage, firstGuestPage + count);
        advised.clear(firstGuestPage, firstGuestPage + count);      // a new mapping: unadvised
        boolean advise = count > 1 || continues(firstGuestPage - 1, firstFrame - 1)
                || continues(firstGuestPage + count, firstFrame + count);
        return advise ? advise(firstGuestPage, count) : 0;
    }

    /**
     * After a refused {@code MAP_FIXED} over {@code [first, + count)}, which may have unmapped those pages:
     * maps each run of them that mapped consecutive frames with one protection back onto those frames (a
     * run that cannot be is lost), then reserves every page not mapped back again. Returns what happened,
     * for the refusal's message.
     */
    private String restore(int first, int count) {
        int end = first + count;
        int lostPages = 0;
        int page = first;
        while (page < end) {
            if (!mapsFrame(page)) {
                page++;
                continue;
            }
            int frame = frameOf[page];
            boolean readWrite = writable.get(page);
            int run = 1;
            while (page + run < end && mapsFrame(page + run) && frameOf[page + run] == frame + run
                    && writable.get(page + run) == readWrite) {
                run++;
            }
            frames.budget().chargeUnrefusable();
            adviseNeighbours(page, frame, run);
            if (calls.map(range, (long) page * PAGE_BYTES, (long) run * PAGE_BYTES, frames.fd(),
                    (long) frame * PAGE_BYTES, readWrite) < 0) {
                lost.set(page, page + run, true);
                this.writable.clear(page, page + run);
                advised.clear(page, page + run);
                lostPages += run;
            } else {
                mapped(page, frame, run, readWrite);     // a refused advice leaves it unadvised, retried later
            }
            page += run;
        }
        String pages = "guest pages " + first + ".." + (end - 1);
        String outcome = lostPages == 0 ? pages + " map what they mapped before"
                : lostPages + " of " + pages + " could not be mapped back onto their frames and are lost: reading or "
                + "writing them fails until they are mapped, or their protection changed, again";
        return outcome + reserveUnmapped(first, end);
    }

    /**
     * Reserves again each run of pages in {@code [first, end)} that maps no frame, replacing whatever a
     * refused remap left there. Returns "" if every such page is reserved, else what the refusal's message
     * must add: the range has holes.
     */
    private String reserveUnmapped(int first, int end) {
        int holes = 0;
        int refused = 0;
        for (int page = first; page < end; page++) {
            if (mapsFrame(page)) {
                continue;
            }
            int run = 1;
            while (page + run < end && !mapsFrame(page + run)) {
                run++;
            }
            frames.budget().chargeUnrefusable();
            int result = reservation.reserveAgain(page, run);
            if (result < 0) {
                holes += run;
                refused = -result;
            }
            page += run - 1;
        }
        return holes == 0 ? "" : "; and " + holes + " of them could not be reserved again either (errno " + refused
                + "): the guest's address range has holes there, which another mapping of this process may take, "
                + "and a vCPU's access would reach it; they are not mapped over until they can be reserved again";
    }

    /** True if guest page {@code page} exists and maps {@code frame}: a mapping there may merge with one of the next frame. */
    private boolean continues(int page, int frame) {
        return page >= 0 && page < guestPages && frame >= 0 && frameOf[page] == frame && !lost.get(page);
    }

    /** True if the kernel maps a frame at guest page {@code page}: it is mapped and not lost. */
    private boolean mapsFrame(int page) {
        return frameOf[page] != UNMAPPED && !lost.get(page);
    }

    private int advise(int firstGuestPage, int count) {
        int result = calls.adviseSmallPages(range, (long) firstGuestPage * PAGE_BYTES, (long) count * PAGE_BYTES);
        if (result == 0) {
            advised.set(firstGuestPage, firstGuestPage + count, true);
        }
        return result;
    }

    /**
     * Makes mapped guest page {@code guestPage} read-only or read-write, on the frame it maps; a lost page
     * is mapped back onto the frame it mapped, with that protection.
     *
     * @throws KvmException {@link KvmException.Kind#REFUSED} if the kernel refuses: the page keeps its
     *                      protection or, lost, stays lost (reserved again, unless the message says not)
     */
    public synchronized void protect(int guestPage, boolean writable) {
        frames.budget().charge(guestPage);
        changeProtection(guestPage, writable);
    }

    private void changeProtection(int guestPage, boolean writable) {
        checkOpen();
        Objects.checkIndex(guestPage, guestPages);
        if (frameOf[guestPage] == UNMAPPED) {
            throw new IllegalStateException("guest page " + guestPage + " maps no frame yet");
        }
        if (reservation.hasHoles()) {
            reservation.claimHoles(guestPage, 1, "changing the protection of guest page " + guestPage);
        }
        if (lost.get(guestPage)) {
            // No mapping there to change: an mprotect would fail, or change whatever took the address.
            // Map the page back onto the frame the engine holds for it, with the protection asked for.
            int frame = frameOf[guestPage];
            adviseNeighbours(guestPage, frame, 1);
            int mapped = calls.map(range, (long) guestPage * PAGE_BYTES, PAGE_BYTES, frames.fd(),
                    (long) frame * PAGE_BYTES, writable);
            if (mapped < 0) {
                // As any refused MAP_FIXED, it may have unmapped the page's reservation: reserve it again.
                throw KvmException.refused("mmap(MAP_SHARED|MAP_FIXED) of lost guest page " + guestPage
                        + " back onto frame " + frame, mapped, "it stays lost" + reserveUnmapped(guestPage, guestPage + 1));
            }
            mapped(guestPage, frame, 1, writable);      // a refused advice leaves it unadvised, retried later
            return;
        }
        int result = calls.protect(range, (long) guestPage * PAGE_BYTES, writable);
        if (result < 0) {
            throw KvmException.refused("mprotect of guest page " + guestPage, result);
        }
        this.writable.set(guestPage, writable);
    }

    /** The frame guest page {@code guestPage} maps, or -1 if none (not mapped yet, or lost). */
    public synchronized int frame(int guestPage) {
        Objects.checkIndex(guestPage, guestPages);
        return lost.get(guestPage) ? UNMAPPED : frameOf[guestPage];
    }

    /** True if guest page {@code guestPage} is mapped read-write (writable from Java and by the guest). */
    public synchronized boolean writable(int guestPage) {
        Objects.checkIndex(guestPage, guestPages);
        return writable.get(guestPage);
    }

    /**
     * Copies guest memory {@code [guestAddress, + length)} into {@code dst}; pages not mapped yet read as
     * zeros.
     *
     * @throws IllegalStateException and copies nothing if a page in the range is lost (see the class
     *         comment): what the kernel holds there is not its frame
     */
    public synchronized void read(long guestAddress, byte[] dst, int dstOffset, int length) {
        checkOpen();
        Objects.checkFromIndexSize(guestAddress, length, (long) guestPages * PAGE_BYTES);
        Objects.checkFromIndexSize(dstOffset, length, dst.length);
        if (length == 0) {
            return;
        }
        int lostPage = lost.nextSetBit((int) (guestAddress / PAGE_BYTES));
        if (lostPage >= 0 && lostPage <= (guestAddress + length - 1) / PAGE_BYTES) {
            throw new IllegalStateException(lostMessage(lostPage));
        }
        while (length > 0) {
            int page = (int) (guestAddress / PAGE_BYTES);
            int chunk = (int) Math.min(length, PAGE_BYTES - guestAddress % PAGE_BYTES);
            if (frameOf[page] == UNMAPPED) {
                Arrays.fill(dst, dstOffset, dstOffset + chunk, (byte) 0);
            } else {
                MemorySegment.copy(range, ValueLayout.JAVA_BYTE, guestAddress, dst, dstOffset, chunk);
            }
            guestAddress += chunk;
            dstOffset += chunk;
            length -= chunk;
        }
    }

    /**
     * Copies {@code src} into guest memory at {@code guestAddress}, into the frames the pages map.
     *
     * @throws IllegalStateException and writes nothing if a page in the range is read-only, maps no
     *         frame or is lost: break sharing (or map a frame) first; a write here never faults
     */
    public synchronized void write(long guestAddress, byte[] src, int srcOffset, int length) {
        checkOpen();
        Objects.checkFromIndexSize(guestAddress, length, (long) guestPages * PAGE_BYTES);
        Objects.checkFromIndexSize(srcOffset, length, src.length);
        if (length == 0) {
            return;
        }
        int last = (int) ((guestAddress + length - 1) / PAGE_BYTES);
        for (int page = (int) (guestAddress / PAGE_BYTES); page <= last; page++) {
            if (lost.get(page)) {
                throw new IllegalStateException(lostMessage(page));
            }
            if (!writable.get(page)) {
                throw new IllegalStateException("guest page " + page + (frameOf[page] == UNMAPPED
                        ? " maps no frame" : " is read-only (merged)") + ": break sharing before writing it");
            }
        }
        MemorySegment.copy(src, srcOffset, range, ValueLayout.JAVA_BYTE, guestAddress, length);
    }

    /**
     * The kernel mappings (VMAs) this guest memory's range is split into now, counted in
     * {@code /proc/self/maps}: 1 for a guest laid out in one run, up to one per page once scattered pages
     * are merged. What it costs against {@code vm.max_map_count}. A mapping counts if it overlaps the
     * range ({@link GuestRange#kernelMappings} says why).
     */
    public long kernelMappings() {
        synchronized (this) {
            checkOpen();
        }
        return reservation.kernelMappings();
    }

    /**
     * Unmaps the whole range. Close the VM using it first: KVM would fault on it afterwards. Holes a
     * refused remap left (see the class comment) that cannot be reserved again are left alone, with
     * whatever another mapping placed there, and the rest is unmapped around them.
     *
     * @throws IllegalStateException if a call still holds the range (the arena refuses to close): nothing
     *                               is unmapped and the memory stays open, so a later close can still unmap
     *                               it (a destroy of its guest fails and may be retried)
     */
    @Override
    public void close() {
        synchronized (this) {
            if (closed) {
                return;
            }
            reservation.close();
            closed = true;      // only once unmapped: marked first, a refused close would pass for done next time
        }
        frames.forget(this);
    }

    /** Size of the range in bytes, for a KVM memory slot. */
    long bytes() {
        return range.byteSize();
    }

    /** Start of the range in this process: the slot's {@code userspace_addr}. */
    synchronized long hostAddress() {
        checkOpen();
        return range.address();
    }

    private static String lostMessage(int page) {
        return "guest page " + page + " lost its mapping when the kernel refused a remap of it: map it, or change "
                + "its protection, to map it onto a frame again";
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("this guest memory is closed");
        }
    }
}
