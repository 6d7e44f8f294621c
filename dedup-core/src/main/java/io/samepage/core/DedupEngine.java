package io.samepage.core;

import io.samepage.core.DedupException.Kind;
import io.samepage.hashing.Pages;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.StampedLock;

/**
 * The engine an embedding program holds: host frames, merge domains, guests and the scanner.
 *
 * <pre>{@code
 * DedupEngine engine = DedupEngine.create(new EngineContext().poolBytes(8L << 30).conclude());
 * MergeDomain tenant = engine.createDomain("tenant-a");
 * Guest vm = engine.createGuest(tenant, "vm-1", 2L << 30);
 * vm.write(0x1000, bytes, 0, bytes.length);
 * AgentRunner.startOnThread(new AgentRunner(new SleepingMillisIdleStrategy(1), Throwable::printStackTrace,
 *         null, engine.scanner()));
 * }</pre>
 *
 * <p>Thread safety: every method is safe from any thread. Creating and destroying guests and
 * domains is serialized on the engine; guest reads and writes run concurrently (see {@link Guest}).
 *
 * <p>Creating and destroying a guest cost the same however many guests are live (an embedder may hold
 * tens of thousands, one per WebAssembly instance): names are checked in a set, the live guests are a
 * skip list in creation order, and page ids are owned through a table of fixed segments ({@link PageIds}).
 * Copy-on-write lists, a walk over every name and a copy of the id table made each creation cost an
 * entry per live guest.
 */
public final class DedupEngine implements AutoCloseable {

    private final EngineContext context;
    private final FramePool pool;
    private final ScanKnobs knobs;
    private final Scanner scanner;
    private final List<MergeDomain> domains = new CopyOnWriteArrayList<>();
    /** Held while a domain joins {@link #domains}, and while {@code max_page_sharing} changes with every domain locked. */
    private final Object domainsJoining = new Object();
    private final LiveGuests guests = new LiveGuests();
    /** Names of the live guests. Guarded by the engine's monitor. */
    private final GuestNames guestNames = new GuestNames();
    /** Engine-wide page ids: the unstable indexes file guest pages by them. */
    private final PageIds pageIds = new PageIds();
    private long guestsCreated;
    private final AtomicLong zeroPages = new AtomicLong();
    private final PageCompare compare;
    /** Keys the shape of the indexes' collision trees ({@link ContentTree}); derived from the hash key. */
    private final long treeSecret;
    private volatile boolean closed;
    /** {@link #releaseUnnamedIds} made once: a method reference that captures the engine is a new object each time. */
    private final Runnable releasingUnnamedIds = this::releaseUnnamedIds;

    private DedupEngine(EngineContext context) {
        this.context = context;
        this.pool = new FramePool(context.poolBytes(), context.warmFrames() < 0
                ? FreeLists.defaultWarmFrames(context.poolBytes() >> Pages.PAGE_SHIFT) : context.warmFrames(),
                context.frameBacking());
        try {
            this.compare = new PageCompare(pool.memory());
            this.treeSecret = context.hashSeed() * 0x9E37_79B9_7F4A_7C15L ^ 0x243F_6A88_85A3_08D3L;
            this.knobs = context.knobs();
            this.knobs.bind(change -> MergeDomain.runIfNoneShared(domains, domainsJoining, change));
            this.scanner = new Scanner(this, context.newScannerHasher(), pageIds);
        } catch (RuntimeException | Error e) {
            pool.close();           // its region would stay mapped, unreachable
            throw e;
        }
    }

    /**
     * Creates an engine from a concluded context.
     *
     * @throws DedupException if the context has not concluded or made an engine already; HOST_REFUSED: no pool mapping
     */
    public static DedupEngine create(EngineContext context) {
        if (!context.isConcluded()) {
            throw new DedupException(Kind.INVALID_ARGUMENT, "the EngineContext has not concluded: call conclude() to validate it first");
        }
        context.claim();
        try {
            return new DedupEngine(context);
        } catch (RuntimeException | Error e) {
            context.unclaim();
            throw e;
        }
    }

    public EngineContext context() {
        return context;
    }

    /** The live knobs ({@code pages_to_scan}, {@code run}, ...). */
    public ScanKnobs knobs() {
        return knobs;
    }

    /** The scanner: an Agrona {@code Agent} to put on an {@code AgentRunner}, or to step directly. */
    public Scanner scanner() {
        return scanner;
    }

    FramePool pool() {
        return pool;
    }

    PageCompare pageCompare() {
        return compare;
    }

    /**
     * Full compares of two pages made since the engine started (merges, zero-page checks, and ordering
     * among colliding hashes): the work that colliding hashes would multiply. Thread safe.
     */
    public long pagesCompared() {
        return compare.count();
    }

    /** Where the frames live ({@link EngineContext#frameBacking}): mapped guests need it to be theirs. */
    public FrameBacking frameBacking() {
        return pool.backing();
    }

    /** A thread-confined loader of content by identity (the engine half of the image index). */
    public PageInstaller newPageInstaller() {
        return new PageInstaller(this);
    }

    /** Host frames allocated now, zero frames included. */
    public long framesInUse() {
        return pool.framesInUse() + 1;
    }

    /** Refuses to create {@code what} in a closed engine: it would hold frames of a pool that is gone. */
    private void requireOpen(String what) {
        if (closed) {
            throw new DedupException(Kind.DESTROYED, what + ": the engine is closed");
        }
    }

    /** Creates a merge domain; pages merge only with pages of the same domain. Names are unique. */
    public synchronized MergeDomain createDomain(String name) {
        requireOpen("domain " + name);
        requireName("domain", name);
        for (MergeDomain d : domains) {
            if (d.name().equals(name)) {
                throw new DedupException(Kind.INVALID_ARGUMENT, "a domain named '" + name + "' exists already");
            }
        }
        boolean own = !context.shareZeroFrameAcrossDomains() && !domains.isEmpty();
        int zeroFrame = own ? pool.tryAllocate(true) : FramePool.ZERO_FRAME;
        if (zeroFrame < 0) {
            throw new DedupException(Kind.POOL_EXHAUSTED, "host frame pool exhausted: no frame left for domain " + name + "'s zero frame");
        }
        try {
            MergeDomain domain = new MergeDomain(name, domains.size(), zeroFrame, pool, pageIds, compare, treeSecret);
            synchronized (domainsJoining) {
                domains.add(domain);
            }
            return domain;
        } catch (RuntimeException | Error e) {
            if (own) {
                pool.free(zeroFrame);       // no domain holds it: the pool as it was
            }
            throw e;
        }
    }

    public List<MergeDomain> domains() {
        return List.copyOf(domains);
    }

    /**
     * Creates a guest of {@code sizeBytes} (a positive multiple of 4 KiB) in {@code domain}. Its
     * memory reads as zeros and takes no frame until written.
     */
    public synchronized Guest createGuest(MergeDomain domain, String name, long sizeBytes) {
        return createGuest(domain, name, sizeBytes, null);
    }

    /**
     * Creates a guest like {@link #createGuest(MergeDomain, String, long)} whose pages are also held by
     * the host mappings {@code mapping} makes (mapped guest memory, which a KVM guest runs on): page
     * {@code p} starts on frame {@code first + p} of one run of frames that read as zeros and cost no
     * memory until written (never used, else freed by guests before and given back to the system), so
     * the whole guest maps with one kernel mapping. The run is taken from the pool at once: size the
     * pool for every live mapped guest's pages plus the frames breaks need.
     *
     * @param mapping null for a software guest
     * @throws DedupException if the pool has no such run left, or the mapping cannot be made; nothing
     *                        is created, as where anything else fails: an {@link OutOfMemoryError}
     *                        on a heap that stays full too, since the undo allocates nothing. A mapping
     *                        made is taken down ({@link PageMapping#unmapAll}) before the run is freed;
     *                        if that fails, the run stays taken for good, its frames withheld
     */
    public synchronized Guest createGuest(MergeDomain domain, String name, long sizeBytes, PageMapping.Factory mapping) {
        requireOpen("guest " + name);
        if (domain == null || domain.id() >= domains.size() || domains.get(domain.id()) != domain) {
            throw new DedupException(Kind.INVALID_ARGUMENT, "guest " + name + " needs a merge domain of this engine");
        }
        requireName("guest", name);
        int pages = PageTable.pagesOf(name, sizeBytes);
        Long key = guestsCreated;   // boxed now, and room made below to quarantine the ids: the undo allocates nothing
        guestNames.add(name);       // its table's growth may fail, with nothing else to undo yet
        int base;
        try {
            base = pageIds.allocateWithRoom(pages);
        } catch (RuntimeException | Error e) {
            guestNames.remove(name);
            throw e;
        }
        Guest guest;
        try {
            guest = mapping == null ? new Guest(this, domain, name, guestsCreated, sizeBytes, null, -1, base)
                    : MappedGuests.create(this, domain, name, guestsCreated, sizeBytes, mapping, base);
        } catch (RuntimeException | Error e) {
            pageIds.unallocate(base, pages);
            guestNames.remove(name);
            throw e;
        }
        pageIds.publish(guest, base);       // allocates nothing: allocate made its table's segments
        try {
            guests.add(key, guest);
        } catch (RuntimeException | Error e) {
            unmake(guest, key, e);
            throw e;
        }
        pageIds.dropQuarantineRoom();       // a destroy makes its own
        guestsCreated++;
        return guest;
    }

    /**
     * Undoes a guest whose listing failed, {@code failure}, as a destroy would (a node the skip list linked
     * is taken out), with its key boxed and room made for its ids already: a heap that stays full cannot
     * stop it halfway. A mapping that will not come down keeps the guest's frames, withheld for good.
     */
    private void unmake(Guest guest, Long key, Throwable failure) {
        Throwable met = MappedGuests.takeDownOrWithhold(guest);
        try {
            dismantle(guest, key, met == null);
        } catch (RuntimeException | Error e) {
            met = met == null ? e : met;
        }
        Suppressed.add(failure, met);       // last: adding allocates; may be failure itself, one preallocated error
    }

    /**
     * Live guests, in creation order. A guest created or destroyed while this runs may be in it or not;
     * every other live guest is, once.
     */
    public List<Guest> guests() {
        return guests.list();
    }

    /** {@link #guests} as an array, with any destroyed guest a failed removal left listed ({@link LiveGuests}): skip those. Takes no lock. */
    Guest[] liveGuests() {
        return guests.array();
    }

    /**
     * The guest owning engine-wide page id {@code id} (possibly destroyed since), or null. Takes no lock:
     * the scanner calls it while holding a page lock, and {@link #destroy} holds the engine's monitor
     * while it waits for page locks.
     */
    Guest pageOwner(int id) {
        return pageIds.owner(id);
    }

    /**
     * Takes {@code guest} down ({@link Guest#destroy}). Once its mapping is down there is no going back, so
     * what may allocate comes before (its key boxed, room to quarantine its ids and to keep them in
     * quarantine), and the one allocation after it that cannot be made earlier, the skip list's marker
     * node, comes after the entry is out: an {@link OutOfMemoryError} there lets the destroy finish, and
     * is thrown then; if it left the entry in, the next destroy or close takes it out ({@link LiveGuests}).
     * The release of ids that ends it allocates nothing ({@link #releaseUnnamedIds}). A frame whose memory
     * the backing fails to give back is free all the same and counted, not thrown ({@link FramePool}'s
     * "Release failures"). Anything else a page's unmap throws (a StackOverflowError in the stable index,
     * say; that page's frame ends free or withheld, {@link MergeDomain#releaseStable}) is thrown once every
     * other page is unmapped and the ids quarantined: the first one, the rest dropped (adding them as
     * suppressed allocates, and may meet the same preallocated error).
     */
    synchronized void destroy(Guest guest) {
        guests.unlistDestroyed();       // any guest a failed removal left listed, this one destroyed again say
        if (guest.isDestroyed()) {
            return;
        }
        Long key = guest.creation();
        pageIds.makeQuarantineRoom();
        try {
            guest.takeDown();
        } catch (RuntimeException | Error e) {
            pageIds.dropQuarantineRoom();
            if (e instanceof Error error) {
                throw error;
            }
            throw new DedupException(Kind.HOST_REFUSED, "guest " + guest.name() + " was not destroyed: its page "
                    + "mapping could not be taken down (" + e.getMessage() + "); it is unchanged, destroy it again", e);
        }
        dismantle(guest, key, true);
    }

    /**
     * A destroy once {@code guest} is down: unlists it, frees its name, its frames if {@code freeFrames},
     * and quarantines its ids in the room made for them. Allocates nothing but the skip list's marker node.
     */
    private void dismantle(Guest guest, Long key, boolean freeFrames) {
        Throwable first = guests.remove(key);
        guestNames.remove(guest.name());
        for (int page = 0; page < guest.pageCount() && freeFrames; page++) {
            StampedLock lock = guest.stripeOf(page);
            long stamp = lock.writeLock();
            try {
                guest.unmap(page);
            } catch (RuntimeException | Error e) {
                first = first == null ? e : first;      // thrown at the end: the other pages still hold frames
            } finally {
                lock.unlockWrite(stamp);
            }
        }
        pageIds.quarantine(guest);
        scanner.runIfIdle(releasingUnnamedIds);     // allocates nothing: the guest is down, a throw would say it is not
        if (first instanceof Error e) {
            throw e;
        } else if (first instanceof RuntimeException e) {
            throw e;
        }
    }

    /**
     * Gives back the page ids (and so the page tables) of destroyed guests no unstable index names: all
     * if every index is empty (no scan yet, or none since {@code run=2}), else those of guests none of
     * whose pages was filed in this full scan ({@link PageIds#releaseUnfiled}). With no batch running;
     * nothing to do, and one volatile read, unless a guest was destroyed since the last call. Allocates
     * nothing: no stream or iterator over the domains, and the ids' lists have their room already.
     */
    void releaseUnnamedIds() {
        if (pageIds.anyDestroyed()) {
            boolean indexesEmpty = true;
            for (int d = 0; d < domains.size() && indexesEmpty; d++) {
                indexesEmpty = domains.get(d).unstableIsEmpty();
            }
            pageIds.releaseDestroyed(indexesEmpty);
        }
    }

    /**
     * Drops one mapping of a stable frame; the last one takes it out of the index and frees it
     * ({@link MergeDomain#releaseStable}).
     */
    void releaseStable(MergeDomain domain, int frame) {
        domain.releaseStable(frame, knobs.maxPageSharing());
    }

    /**
     * If the caller's page is the only mapping of stable {@code frame}, takes the frame out of the
     * stable index (and the resident registry) so the page may write it in place: a last-mapper break
     * without a copy. Under the domain's lock nobody can add a mapping meanwhile. Caller holds the page.
     */
    boolean takeSoleMapping(MergeDomain domain, int frame) {
        domain.stableLock().lock();
        try {
            if (pool.table().refCount(frame) != 1) {
                return false;
            }
            domain.removeStable(frame);
            return true;
        } finally {
            domain.stableLock().unlock();
        }
    }

    void zeroPageMapped() {
        zeroPages.incrementAndGet();
    }

    void zeroPageUnmapped() {
        zeroPages.decrementAndGet();
    }

    /** Empties every unstable index and its live pages' marks; then no index names a destroyed guest's page, so its ids are reused. */
    void clearUnstableIndexes() {
        Guest[] live = liveGuests();    // first: it may allocate, and so fail while nothing has changed
        for (MergeDomain domain : domains) {
            domain.clearUnstable();
        }
        for (Guest guest : live) {
            guest.table().clearAllInUnstable();
        }
        pageIds.releaseQuarantined();
    }

    long pagesShared() {
        long shared = 0;
        for (MergeDomain domain : domains) {
            shared += domain.pagesShared();
        }
        return shared;
    }

    /** Bytes of heap the engine's metadata takes: frames, guests live or awaiting id release, indexes, the scanner's lists ({@link MetadataSizes}). */
    public long metadataBytes() {
        long bytes = pool.metadataBytes() + pageIds.metadataBytes() + guestNames.metadataBytes() + scanner.metadataBytes();
        bytes += guests.sum(guest -> guest.metadataBytes() + MetadataSizes.liveGuestEntry(guest));
        for (MergeDomain domain : domains) {
            bytes += domain.metadataBytes();
        }
        return bytes;
    }

    /**
     * A snapshot of the engine's counters; see {@link EngineCounters} for each definition. Every value is
     * kept as the work happens, so this costs O(guests + domains), never a walk over pages.
     */
    public EngineCounters counters() {
        long shared = 0;
        long sharing = 0;
        long unshared = 0;
        long chains = 0;
        long dups = 0;
        for (MergeDomain domain : domains) {
            shared += domain.pagesShared();
            sharing += domain.pagesSharing();
            unshared += domain.pagesUnshared();
            long[] chainCounts = domain.chainCounts();
            chains += chainCounts[0];
            dups += chainCounts[1];
        }
        long tracked = guests.sum(Guest::trackedPages);
        long total = guests.sum(Guest::pageCount);
        long zero = zeroPages.get();
        long metadata = metadataBytes();
        long volatilePages = Math.max(0, tracked - shared - sharing - unshared - zero);
        return new EngineCounters(shared, sharing, unshared, volatilePages, scanner.fullScans(), scanner.pagesScanned(),
                scanner.pagesSkipped(), zero, chains, dups, (sharing + zero) * Pages.PAGE_SIZE - metadata, total,
                metadata, framesInUse(), pool.releaseFailures(), pool.framesWithheld());
    }

    /**
     * Stops the scanner (waiting for its batch in progress; a scanner on an {@code AgentRunner} then ends
     * its duty cycle), destroys every guest (a mapped guest's {@link PageMapping#unmapAll} is called, once:
     * not for a guest destroyed already; if it refuses, the engine closes all the same) and releases the host memory in one unmap (frames are
     * not freed one by one). The engine is unusable afterwards. Idempotent.
     *
     * <p>An {@link OutOfMemoryError} leaves the engine open, to close again, if it comes before anything
     * closed (listing the guests and boxing their keys); after that, the close goes on to the end and
     * throws it then: a close that stopped halfway would leave guests' mappings up, or the pool's memory
     * mapped, with every later close doing nothing. So does any {@link Error} a guest's mapping throws
     * when it is taken down.
     */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        Guest[] live = liveGuests();
        Long[] keys = new Long[live.length];
        for (int i = 0; i < live.length; i++) {
            keys[i] = live[i].creation();
        }
        closed = true;
        Error failure = null;
        try {
            scanner.close();        // waits for a batch in progress; the scanner's AgentRunner then stops
        } catch (Error e) {
            failure = e;            // it is closed all the same: it marks itself closed before anything else
        }
        try {
            for (int i = 0; i < live.length; i++) {
                if (!live[i].isDestroyed()) {   // one a failed removal left listed is down already: taken down once
                    try {
                        live[i].takeDown();         // its mapping is told, as a destroy tells it
                    } catch (RuntimeException | Error refused) {
                        live[i].markDestroyed();    // closing anyway: no later guest takes its frames
                        if (refused instanceof Error e && failure == null) {
                            failure = e;            // thrown at the end, once every guest is down
                        }
                    }
                    guestNames.remove(live[i].name());
                }
                Error unlisted = guests.remove(keys[i]);    // the skip list makes its marker node after the entry is out
                failure = failure == null ? unlisted : failure;
            }
        } finally {
            pool.close();
        }
        if (failure != null) {
            throw failure;
        }
    }

    private static void requireName(String what, String name) {
        if (name == null || name.isBlank()) {
            throw new DedupException(Kind.INVALID_ARGUMENT, "a " + what + " needs a non-blank name");
        }
    }
}
