package io.samepage.image;

import io.samepage.hashing.ContentDigest;
import io.samepage.hashing.PageHasher;
import io.samepage.hashing.Pages;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Hashes an image's blocks on every available core. The work is cut into runs of at most
 * {@value #RUN_BLOCKS} blocks of one file; each worker takes the next run, reads it with one
 * positional read into its own buffer, and writes each block's SHA-256, fast hash and zero flag into
 * the block table. The caller's thread reports progress.
 */
final class IndexBuilder {

    static final int RUN_BLOCKS = 256;

    private IndexBuilder() {
    }

    /** One run of consecutive blocks of one file. */
    private record Run(long firstBlock, int blocks) {
    }

    /** Fills the block records of {@code file} at {@code blocksOffset}; returns the number of zero blocks. */
    static long hashBlocks(ImageLayout layout, MemorySegment file, long blocksOffset, BuildProgress progress) {
        List<Run> runs = runsOf(layout);
        int threads = Math.max(1, Math.min(Runtime.getRuntime().availableProcessors(), runs.size()));
        AtomicInteger nextRun = new AtomicInteger();
        AtomicLong done = new AtomicLong();
        AtomicLong zeros = new AtomicLong();
        ExecutorService workers = Executors.newFixedThreadPool(threads, r -> {
            Thread thread = new Thread(r, "samepage-index-build");
            thread.setDaemon(true);
            return thread;
        });
        try {
            List<Future<?>> futures = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                futures.add(workers.submit(() -> work(layout, file, blocksOffset, runs, nextRun, done, zeros)));
            }
            for (Future<?> future : futures) {
                while (true) {
                    try {
                        future.get(100, TimeUnit.MILLISECONDS);
                        break;
                    } catch (TimeoutException e) {
                        progress.update(done.get(), layout.blockCount());
                    }
                }
            }
            progress.update(done.get(), layout.blockCount());
            return zeros.get();
        } catch (ExecutionException e) {
            nextRun.set(runs.size());
            if (e.getCause() instanceof RuntimeException runtime) {
                throw runtime;
            }
            if (e.getCause() instanceof Error error) {
                throw error;    // as it is: an OutOfMemoryError on a hashing thread is not a build that failed otherwise
            }
            throw new IllegalStateException("index build failed", e.getCause());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new ImageIndexException(ImageIndexException.Kind.IO, "index build of " + layout.root() + " interrupted", e);
        } finally {
            workers.shutdownNow();
        }
    }

    private static void work(ImageLayout layout, MemorySegment file, long blocksOffset, List<Run> runs,
            AtomicInteger nextRun, AtomicLong done, AtomicLong zeros) {
        ContentDigest sha256 = new ContentDigest();
        PageHasher fastHash = ImageIndex.FAST_HASH.newHasher(0);
        ByteBuffer buffer = ByteBuffer.allocateDirect(RUN_BLOCKS * Pages.PAGE_SIZE);
        MemorySegment bufferSegment = MemorySegment.ofBuffer(buffer);
        byte[] digest = new byte[ContentDigest.LENGTH];
        try (BlockReader reader = new BlockReader(layout)) {
            for (int r = nextRun.getAndIncrement(); r < runs.size(); r = nextRun.getAndIncrement()) {
                Run run = runs.get(r);
                buffer.clear();
                reader.read(run.firstBlock(), run.blocks(), buffer);
                for (int i = 0; i < run.blocks(); i++) {
                    long offset = (long) i << Pages.PAGE_SHIFT;
                    long record = blocksOffset + (run.firstBlock() + i) * IndexFile.RECORD_LENGTH;
                    sha256.digest(bufferSegment, offset, digest, 0);
                    MemorySegment.copy(digest, 0, file, java.lang.foreign.ValueLayout.JAVA_BYTE, record, ContentDigest.LENGTH);
                    file.set(IndexFile.LONG, record + 32, fastHash.hash(bufferSegment, offset));
                    boolean zero = Pages.isZeroPage(bufferSegment, offset);
                    file.set(IndexFile.INT, record + 40, zero ? IndexFile.FLAG_ZERO : 0);
                    if (zero) {
                        zeros.incrementAndGet();
                    }
                }
                done.addAndGet(run.blocks());
            }
        }
    }

    private static List<Run> runsOf(ImageLayout layout) {
        List<Run> runs = new ArrayList<>();
        for (ImageLayout.Extent extent : layout.extents()) {
            long first = extent.imageOffset() >>> Pages.PAGE_SHIFT;
            long blocks = extent.blocks();
            for (long b = 0; b < blocks; b += RUN_BLOCKS) {
                runs.add(new Run(first + b, (int) Math.min(RUN_BLOCKS, blocks - b)));
            }
        }
        return runs;
    }
}
