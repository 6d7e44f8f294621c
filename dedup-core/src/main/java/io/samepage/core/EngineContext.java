package io.samepage.core;

import io.samepage.core.DedupException.Kind;
import io.samepage.hashing.HashAlgorithm;
import io.samepage.hashing.PageHasher;
import io.samepage.hashing.Pages;
import java.security.SecureRandom;

/**
 * Everything a {@link DedupEngine} is built from, Aeron-style: each setting has a name, a default and
 * its unit in its name, and the whole is validated once, by {@link #conclude()}.
 *
 * <p>A context concludes exactly once and makes exactly one engine: the engine keeps its
 * {@link #knobs()} as its live knobs, so a second engine from it would share them; both are refused.
 * The defaults are public constants ({@link #DEFAULT_POOL_BYTES}, and {@link ScanKnobs}'s).
 *
 * <p>Not thread safe: fill it in on one thread, then hand it to {@link DedupEngine#create}.
 */
public final class EngineContext {

    /** Default host memory for frames: 1 GiB, reserved but not touched until used. */
    public static final long DEFAULT_POOL_BYTES = 1L << 30;

    /** The largest pool: 2^31 - 9 frames of 4 KiB (frame ids are ints; the JDK's longest array), about 8 TiB. */
    public static final long MAX_POOL_BYTES = (long) FramePool.MAX_FRAMES << Pages.PAGE_SHIFT;

    private long poolBytes = DEFAULT_POOL_BYTES;
    private HashAlgorithm hashAlgorithm = HashAlgorithm.defaultAlgorithm();
    private long hashSeed = new SecureRandom().nextLong();
    private boolean shareZeroFrameAcrossDomains;
    private PageHasher customHasher;
    private int warmFrames = -1;
    private FrameBacking.Factory frameBacking = FrameBacking.anonymous();
    private final ScanKnobs knobs = new ScanKnobs();
    private boolean concluded;
    private boolean claimed;

    public long poolBytes() {
        return poolBytes;
    }

    /** Host memory for frames, in bytes (a multiple of 4 KiB is used; the rest is ignored). */
    public EngineContext poolBytes(long bytes) {
        requireUnconcluded("poolBytes");
        poolBytes = bytes;
        return this;
    }

    public HashAlgorithm hashAlgorithm() {
        return hashAlgorithm;
    }

    /** The fast hash that filters merge candidates; the default is keyed NH ({@link HashAlgorithm#defaultAlgorithm}). */
    public EngineContext hashAlgorithm(HashAlgorithm algorithm) {
        requireUnconcluded("hashAlgorithm");
        hashAlgorithm = algorithm;
        return this;
    }

    public long hashSeed() {
        return hashSeed;
    }

    /**
     * The hash key. Random per engine by default, so hash values differ between hosts; with
     * {@link HashAlgorithm#NH} it also keeps tenants from steering collisions.
     */
    public EngineContext hashSeed(long seed) {
        requireUnconcluded("hashSeed");
        hashSeed = seed;
        return this;
    }

    /**
     * Replaces the hash function with {@code hasher}, for tests and experiments: a hasher that gives
     * every page the same value shows that unequal pages never merge. The scanner's threads call it,
     * several at once with {@code scan_threads} above 1, so it must be safe from several threads.
     * {@code null} restores {@link #hashAlgorithm()}.
     */
    public EngineContext customHasher(PageHasher hasher) {
        requireUnconcluded("customHasher");
        customHasher = hasher;
        return this;
    }

    /** The hasher the scanner uses: the custom one if set, else the algorithm keyed with the seed. */
    PageHasher newScannerHasher() {
        return customHasher != null ? customHasher : hashAlgorithm.newHasher(hashSeed);
    }

    /** Freed frames kept resident for reuse; -1 (the default) means 1/16 of the pool, at most 8192. */
    public int warmFrames() {
        return warmFrames;
    }

    /**
     * How many freed frames the pool keeps resident instead of giving them back to the operating system
     * at once: a copy-on-write break that reuses one pays no page fault. The process's RSS stays that
     * many frames above what merging alone would leave. -1 chooses the default.
     */
    public EngineContext warmFrames(int frames) {
        requireUnconcluded("warmFrames");
        warmFrames = frames;
        return this;
    }

    public FrameBacking.Factory frameBacking() {
        return frameBacking;
    }

    /**
     * Where the frames live: {@link FrameBacking#anonymous()} (the default, for guests held in software),
     * or a memfd for mapped guests (kvm-integration's {@code MappedGuests.memfdBacking}). The engine owns
     * the backing it makes and closes it.
     */
    public EngineContext frameBacking(FrameBacking.Factory factory) {
        requireUnconcluded("frameBacking");
        frameBacking = factory;
        return this;
    }

    public boolean shareZeroFrameAcrossDomains() {
        return shareZeroFrameAcrossDomains;
    }

    /**
     * Whether all domains map never-written and zero-merged pages to one zero frame (saves one frame
     * per domain; lets one domain time another's zero-page merges). Off by default.
     */
    public EngineContext shareZeroFrameAcrossDomains(boolean share) {
        requireUnconcluded("shareZeroFrameAcrossDomains");
        shareZeroFrameAcrossDomains = share;
        return this;
    }

    /** Settings are validated once, by {@link #conclude}: a change after it would reach the engine unchecked. */
    private void requireUnconcluded(String setting) {
        if (concluded) {
            throw new DedupException(Kind.INVALID_ARGUMENT, setting + ": this EngineContext has concluded, so its "
                    + "settings are fixed; fill in a new context");
        }
    }

    /** The scanner's initial knobs; they stay live on the engine ({@link DedupEngine#knobs()}). */
    public ScanKnobs knobs() {
        return knobs;
    }

    /**
     * Validates the settings once; the engine refuses a context that has not concluded.
     *
     * @throws DedupException naming the setting that is wrong and why
     */
    public EngineContext conclude() {
        if (concluded) {
            throw new DedupException(Kind.INVALID_ARGUMENT, "this EngineContext has concluded already: a context "
                    + "concludes once and makes one engine; fill in a new one");
        }
        if (poolBytes < 2L * Pages.PAGE_SIZE) {
            throw new DedupException(Kind.INVALID_ARGUMENT, "poolBytes must hold at least two 4 KiB frames (the zero frame and one more), not "
                    + poolBytes + " bytes");
        }
        if (poolBytes > MAX_POOL_BYTES) {
            throw new DedupException(Kind.INVALID_ARGUMENT, "poolBytes " + poolBytes + " is more than " + MAX_POOL_BYTES
                    + " (2^31 - 9 frames of 4 KiB)");
        }
        long tableBytes = FrameTable.heapBytes(poolBytes >> Pages.PAGE_SHIFT);
        Runtime runtime = Runtime.getRuntime();
        long heapFree = runtime.maxMemory() - (runtime.totalMemory() - runtime.freeMemory());
        if (tableBytes > heapFree) {
            // Refused here, not by an OutOfMemoryError while the pool is made (which, thrown in a daemon's
            // start, could leave the process up with nothing running).
            throw new DedupException(Kind.INVALID_ARGUMENT, "a pool of " + (poolBytes >> 20) + " MiB needs "
                    + (tableBytes >> 20) + " MiB of Java heap for its frame table (12 bytes a frame), and this JVM "
                    + "has " + (heapFree >> 20) + " MiB of its " + (runtime.maxMemory() >> 20) + " MiB free; "
                    + "give Java more heap (-Xmx; SAMEPAGE_JAVA_OPTS for the CLI), or a smaller pool");
        }
        if (warmFrames < -1) {
            throw new DedupException(Kind.INVALID_ARGUMENT, "warmFrames must be -1 (default) or at least 0, not " + warmFrames);
        }
        if (frameBacking == null) {
            throw new DedupException(Kind.INVALID_ARGUMENT, "frameBacking must be set; FrameBacking.anonymous() is the default");
        }
        if (hashAlgorithm == null) {
            throw new DedupException(Kind.INVALID_ARGUMENT, "hashAlgorithm must be set");
        }
        concluded = true;
        return this;
    }

    boolean isConcluded() {
        return concluded;
    }

    /**
     * Claims the context for the engine being built: its knobs become that engine's live knobs, so a
     * second engine from the same context would share them (Aeron's contexts refuse reuse the same way).
     *
     * @throws DedupException if an engine was built from it already
     */
    synchronized void claim() {
        if (claimed) {
            throw new DedupException(Kind.INVALID_ARGUMENT, "this EngineContext made an engine already; its knobs are "
                    + "that engine's: fill in a new context for another engine");
        }
        claimed = true;
    }

    /** Undoes {@link #claim} when the engine could not be made: the context may make one later. */
    synchronized void unclaim() {
        claimed = false;
    }
}
