/**
 * The merging engine: Linux KSM's algorithm over guest memory that the JVM holds.
 *
 * <h2>What it does</h2>
 * Host memory is a {@link io.samepage.core.FramePool}: one reserved region cut into 4 KiB frames,
 * with 12 bytes of metadata per frame ({@link io.samepage.core.FrameTable}). A
 * {@link io.samepage.core.Guest} is a page table ({@link io.samepage.core.PageTable}): a frame id,
 * state bits, the last fast hash folded to a 32-bit key and whether the unstable index files the page,
 * 13 bytes per guest page. Never-written
 * pages map the domain's zero frame. Each domain's stable index is a table of 4-byte buckets whose
 * chains run through the frame entries ({@link io.samepage.core.StableIndex}), as KSM embeds its tree
 * nodes in its rmap_items, and whose contents' duplicate frames sit in lists of their own
 * ({@link io.samepage.core.DuplicateFrames}); the unstable index keeps its chains in its own shards, 16 bytes per unique
 * page ({@link io.samepage.core.UnstableIndex}), so that a scanner thread changes only its own lines.
 * The metadata stays within 16 bytes per page plus 16 per frame.
 * The {@link io.samepage.core.Scanner} visits pages (512 of each guest in turn) and merges equal ones
 * into one frame shared copy-on-write; a write to a shared page first copies it ("breaks" the
 * sharing). Freed frames go back to the operating system, the scanner's in batches.
 *
 * <h2>Two ways guest memory is held, one interface</h2>
 * A {@link io.samepage.core.Guest} is held in software (the default: only the engine reads and writes
 * its frames, which are private anonymous memory) or mapped: its frames are a memfd
 * ({@link io.samepage.core.FrameBacking}, supplied by kvm-integration), each guest page is a host
 * mapping of its frame that a KVM guest runs on, and a {@link io.samepage.core.PageMapping} mirrors the
 * page table onto those mappings. The scanner drives both through {@code Guest}; for a mapped guest it
 * also write-protects the pages of a merge before comparing them, asks at every full scan which pages
 * were written behind its back (a dirty log), and gives an all-zero page's memory back in place.
 *
 * <h2>The embedder access path</h2>
 * A {@link io.samepage.core.GuestAccess} ({@link io.samepage.core.Guest#access()}) caches per-page
 * translations to frames for one embedder thread, like a software MMU's TLB: reads take no lock and
 * check the page's translation epoch after loading the bytes; writes go straight to a private frame
 * after one copy-on-write break. The page table moves a page's epoch before any change of its frame
 * or sharing, and a frame is dropped only after that, so a stale translation is always caught.
 *
 * <h2>Invariants</h2>
 * <ul>
 *   <li>Every read returns the bytes last written to that guest address, as if nothing were merged.</li>
 *   <li>The fast hash only filters: every merge follows a full compare of the two pages' 4096 bytes,
 *       made while both pages are locked, and only within one {@link io.samepage.core.MergeDomain}.</li>
 *   <li>A frame in the stable index is never written in place: writers break sharing, so its bytes,
 *       and the key it is indexed by, never change while it is indexed.</li>
 *   <li>A frame's reference count equals the guest pages mapping it; the last unmapping removes it from
 *       the stable index, then frees it.</li>
 *   <li>Index and registry entries name only live, mapped frames; the counters equal a recount from the
 *       page tables, yet are kept as pages change, so reading them never walks pages.</li>
 *   <li>Colliding keys never cost more than O(log n) full compares per lookup: content whose key is taken
 *       by other content is ordered by its bytes ({@link io.samepage.core.ContentTree}), one stable tree
 *       node per content, its other frames beside it ({@link io.samepage.core.CollidingFrames}).</li>
 *   <li>A page's translation epoch moves before its frame or sharing changes, and the frame it leaves is
 *       freed only afterwards: no read through a cached translation returns a reused frame's bytes.</li>
 *   <li>Lock order: page stripes, then a domain's stable-index lock. Writers take stripes of one guest
 *       in ascending order, and those of several guests (a {@link io.samepage.core.GuestChain}, a copy
 *       between two guests) guest by guest in the order the engine created them; the scanner takes a
 *       second stripe only with {@code tryWriteLock}. Only a change of {@code max_page_sharing} holds
 *       more than one stable-index lock: every domain's, in the order the engine created them, holding
 *       no stripe, so that no merge files a frame between its check that none is shared and its write.</li>
 * </ul>
 *
 * <h2>Failure atomicity</h2>
 * Every public operation and every scanner step either completes or leaves the engine exactly as it
 * was, whatever fails underneath: the pool (frames are reserved before anything changes), a
 * {@link io.samepage.core.PageMapping} (a page is mapped before any index, refcount, registry entry or
 * counter changes, and what was taken is dropped if the map is refused), a
 * {@link io.samepage.core.FrameBacking} (freeing never fails: a release the backing fails, whatever it
 * throws, zeroes the frame in place and is counted in {@code frameReleaseFailures}, not thrown; an
 * {@code Error} from anywhere else in a free passes through, see {@link io.samepage.core.FramePool}), an
 * {@code Error} from a mapping factory. The error reaches the caller as a
 * {@link io.samepage.core.DedupException} with its {@link io.samepage.core.DedupException.Kind kind}.
 * An {@link OutOfMemoryError} from the engine's own allocations reaches the caller unchanged, the engine
 * as it was or, past a point of no return (a guest's destroy once its mapping is down, where only the
 * live guests' skip list still allocates; the engine's close once it has listed the guests), the
 * operation finished. A stable frame's release that an {@code Error} cuts short is finished from the
 * step it reached, so the stable index, its counters, the resident registry and the pool agree again
 * ({@link io.samepage.core.StableRelease}). A frame that cannot be freed safely (a frame whose memory
 * faults when zeroed, a stable frame whose release and its finishing were both cut short) is never handed
 * out again and is counted in {@code framesWithheld}, not lost unseen ({@link io.samepage.core.FramePool}).
 *
 * <h2>Counters and knobs</h2>
 * {@link io.samepage.core.EngineCounters} and {@link io.samepage.core.ScanKnobs} use KSM's names and
 * definitions, so an operator who knows {@code /sys/kernel/mm/ksm} knows these.
 *
 * <h2>Rejected alternatives</h2>
 * KSM's memcmp-ordered red-black trees for every page (O(log n) page compares per lookup, against one
 * compare per lookup for a hash table whose hash only filters; the engine keeps such an ordering only
 * for colliding keys); an object per page or per frame (16 bytes of
 * primitives instead of ~40 bytes of header and references); write protection through the MMU for
 * guests held in software (this page table sees every write, so copy-on-write needs no fault; only a
 * mapped guest, which a KVM guest writes directly, pays for write protection).
 */
package io.samepage.core;
