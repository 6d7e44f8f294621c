package io.samepage.core;

import io.samepage.core.DedupException.Kind;
import io.samepage.hashing.ContentDigest;
import io.samepage.hashing.PageHasher;
import io.samepage.hashing.Pages;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.concurrent.locks.StampedLock;

/**
 * Loads content into guest pages by identity: the engine half of the pre-load image index.
 *
 * <p>{@link #mapResident} maps a page to a frame that already holds content with a given SHA-256
 * digest in the guest's domain, copy-on-write, without reading anything. {@link #install} fills a
 * fresh frame (the caller reads the block into it), checks the frame's SHA-256 against the expected
 * digest, and only then maps it and registers it, so the registry holds nothing but verified bytes.
 * An install is all or nothing, whatever is thrown, as a merge is ({@link StableMerges}): under the
 * domain's lock the stable index plans where the frame goes and the registry makes room for it, the
 * only steps that allocate; then the page is mapped; then the frame is filed and registered, which
 * neither allocates nor calls the host. The frame the page mapped before is dropped last; a failure to
 * give its memory back to the system is counted by the pool, not thrown ({@link FramePool}'s "Release
 * failures"), so it neither undoes the install nor makes it report one.
 * Installed frames are stable frames from the start: writes break sharing, so a registered frame's
 * bytes never change, and it leaves the registry when its last mapping goes. A resident frame maps at
 * most {@code max_page_sharing} pages, like any stable frame; past that, the next load reads the
 * block into a new frame, which takes over the registration (KSM's chain of duplicates). Installed
 * frames are filed in the stable index under the engine's hash algorithm; with a custom test hasher
 * the scanner computes other values and does not merge into them (reads stay correct).
 *
 * <p>Thread safety: an installer is confined to one thread (it keeps a digest, a hasher and the frames
 * it {@linkplain #takeFramesAhead took ahead}); make one per loading thread with
 * {@link DedupEngine#newPageInstaller()}. Many installers may load into the
 * same or different guests at once, concurrently with guest readers, writers and the scanner.
 */
public final class PageInstaller {

    /** Writes all 4096 bytes of one page into the segment it is given (which holds old bytes before). */
    @FunctionalInterface
    public interface PageFill {
        void fill(MemorySegment page);
    }

    /** The most frames {@link #takeFramesAhead} takes at once (1 MiB). */
    public static final int AHEAD_FRAMES = 256;

    private final DedupEngine engine;
    private final FramePool pool;
    private final PageHasher hasher;
    private final ContentDigest sha256 = new ContentDigest();
    private final byte[] computed = new byte[ContentDigest.LENGTH];
    /** Where {@link #install} files its frame in the stable index, planned before the frame is mapped. */
    private final StableIndex.Filing filing = new StableIndex.Filing();
    /** Frames {@link #takeFramesAhead} took and no install has used yet. */
    private final FramesAhead ahead = new FramesAhead(AHEAD_FRAMES);

    PageInstaller(DedupEngine engine) {
        this.engine = engine;
        this.pool = engine.pool();
        EngineContext context = engine.context();
        this.hasher = context.hashAlgorithm().newHasher(context.hashSeed());
    }

    /**
     * Maps the page at {@code pageAddress} to the resident frame of {@code guest}'s domain whose content
     * has SHA-256 {@code digest[offset..offset+32)}, if there is one.
     *
     * @return true if mapped (nothing was read); false if no such content is resident
     * @throws DedupException if the guest is another engine's, the address is not a page of the guest,
     *                        the guest is destroyed, or the host refused the mapping; nothing changed
     */
    public boolean mapResident(Guest guest, long pageAddress, byte[] digest, int offset) {
        checkOwn(guest);
        int page = checkedPage(guest, pageAddress);
        MergeDomain domain = guest.domain();
        StampedLock lock = guest.stripeOf(page);
        long stamp = lock.writeLock();
        try {
            guest.checkAlive();
            int frame;
            domain.stableLock().lock();
            try {
                frame = domain.registeredFrame(digest, offset);
                if (frame == MergeDomain.NONE || pool.table().refCount(frame) >= engine.knobs().maxPageSharing()
                        || !pool.table().tryIncrementRef(frame)) {
                    return false;
                }
                domain.addSharing(1);
            } finally {
                domain.stableLock().unlock();
            }
            long left;
            try {
                left = guest.mapLoaded(page, frame);        // maps first: a refusal changes nothing
            } catch (RuntimeException refused) {
                engine.releaseStable(domain, frame);
                throw refusedMap(guest, pageAddress, refused);
            }
            guest.drop((int) (left >>> 32), (int) left);
            return true;
        } finally {
            lock.unlockWrite(stamp);
        }
    }

    /**
     * Takes frames for about {@code installs} calls to {@link #install} that follow, as when a loader has
     * just read that many blocks, and backs them with memory now, in a few system calls instead of a page
     * fault each ({@link FramePool#allocateForOverwrite(int[], int)}); at most {@value #AHEAD_FRAMES}.
     * Those calls use these frames first. The frames are this installer's: loaders on other threads take
     * their own, so none of them writes a frame populated for another. A hint: if the pool cannot spare
     * that many frames, or for fewer than {@link FramePool#POPULATE_MIN_FRAMES}, nothing is taken and
     * each install takes its frame as before. Give back the frames not used with
     * {@link #returnFramesAhead()}; until then they count as in use.
     */
    public void takeFramesAhead(int installs) {
        returnFramesAhead();
        int count = Math.min(installs, AHEAD_FRAMES);
        if (count >= FramePool.POPULATE_MIN_FRAMES) {
            ahead.allocate(pool, count);
        }
    }

    /** Gives the frames {@link #takeFramesAhead} took and no install used back to the pool. */
    public void returnFramesAhead() {
        ahead.giveBack(pool);
    }

    /**
     * Refuses a guest of another engine: this installer's frames and registry are its own engine's, and
     * a frame number of one pool mapped into a guest of another names some frame of that other pool (a
     * load that way read another guest's private page).
     */
    private void checkOwn(Guest guest) {
        if (guest.engine() != engine) {
            throw new DedupException(Kind.INVALID_ARGUMENT, "guest " + guest.name()
                    + " belongs to another engine than this installer's; load it with an installer of its own engine");
        }
    }

    /** The page of {@code guest} that starts at {@code pageAddress}; throws if none does or the guest is destroyed. */
    private static int checkedPage(Guest guest, long pageAddress) {
        if ((pageAddress & (Pages.PAGE_SIZE - 1)) != 0) {
            throw new DedupException(Kind.INVALID_ARGUMENT, "guest " + guest.name() + ": 0x" + Long.toHexString(pageAddress)
                    + " is not the start of a page");
        }
        guest.checkRange(pageAddress, Pages.PAGE_SIZE);
        return (int) (pageAddress >>> Pages.PAGE_SHIFT);
    }

    /** A frame for {@link #install}: one taken ahead, else a fresh one from the pool. */
    private int takeFrame(Guest guest, long pageAddress) {
        if (!ahead.isEmpty()) {
            return ahead.take();
        }
        int frame = pool.tryAllocate(false);
        if (frame < 0) {
            throw new DedupException(Kind.POOL_EXHAUSTED, "host frame pool exhausted: no frame to load guest "
                    + guest.name() + "'s page at 0x" + Long.toHexString(pageAddress));
        }
        return frame;
    }

    /**
     * Fills a fresh frame with {@code fill}, and if its SHA-256 is {@code digest[offset..offset+32)}
     * maps it at {@code pageAddress} and registers it as resident in the guest's domain.
     *
     * @return true if installed; false if the bytes did not match the digest (then nothing changed)
     * @throws DedupException if the guest is another engine's, the pool is exhausted, the address is
     *                        not a page of the guest, the guest is destroyed, or the host refused the
     *                        mapping; whatever {@code fill} throws, or an {@link OutOfMemoryError} of the
     *                        index or the registry, passes through. Either way nothing changed.
     */
    public boolean install(Guest guest, long pageAddress, PageFill fill, byte[] digest, int offset) {
        checkOwn(guest);
        int page = checkedPage(guest, pageAddress);
        int frame = takeFrame(guest, pageAddress);
        boolean installed = false;
        try {
            long at = FramePool.offsetOf(frame);
            fill.fill(pool.memory().asSlice(at, Pages.PAGE_SIZE));
            sha256.digest(pool.memory(), at, computed, 0);
            if (Arrays.mismatch(computed, 0, ContentDigest.LENGTH, digest, offset, offset + ContentDigest.LENGTH) >= 0) {
                return false;
            }
            int key = MergeDomain.keyOf(hasher.hash(pool.memory(), at));
            MergeDomain domain = guest.domain();
            StampedLock lock = guest.stripeOf(page);
            long stamp = lock.writeLock();
            try {
                guest.checkAlive();
                long left;
                domain.stableLock().lock();
                try {
                    domain.planStable(frame, key, filing);      // the steps that allocate: first, nothing changed yet
                    domain.makeRegistryRoom();
                    try {
                        left = guest.mapLoaded(page, frame);
                    } catch (RuntimeException refused) {
                        throw refusedMap(guest, pageAddress, refused);
                    }
                    installed = true;
                    // From here on nothing allocates, waits or calls the host.
                    domain.addStable(filing);
                    int full = domain.registeredFrame(digest, offset);
                    if (full != MergeDomain.NONE) {
                        domain.unregister(full);
                    }
                    domain.register(frame, digest, offset);
                } finally {
                    domain.stableLock().unlock();
                }
                guest.drop((int) (left >>> 32), (int) left);   // may change the index, so after the filing
                return true;
            } finally {
                lock.unlockWrite(stamp);
            }
        } finally {
            if (!installed) {
                pool.free(frame);
            }
        }
    }

    private static DedupException refusedMap(Guest guest, long pageAddress, RuntimeException refused) {
        return new DedupException(Kind.HOST_REFUSED, "guest " + guest.name() + ": the host refused to map the page at 0x"
                + Long.toHexString(pageAddress) + "; nothing was loaded: " + refused.getMessage(), refused);
    }

    /** Engine the installer loads into. */
    public DedupEngine engine() {
        return engine;
    }
}
