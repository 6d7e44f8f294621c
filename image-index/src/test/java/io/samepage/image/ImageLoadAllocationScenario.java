package io.samepage.image;

import io.samepage.core.DedupEngine;
import io.samepage.core.EngineContext;
import io.samepage.core.EngineInvariants;
import io.samepage.core.Guest;
import io.samepage.core.MergeDomain;
import io.samepage.hashing.Pages;
import io.samepage.testing.AllocationFaultLoader;
import io.samepage.testing.AllocationFaults;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.FutureTask;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.LongFunction;
import java.util.function.LongSupplier;

/**
 * Loads through an index, with the k-th allocation failing, for {@link ImageAllocationFaultTest}, which
 * loads this class through an {@link AllocationFaultLoader}: a loader is made ({@code "direct"}: one thread;
 * {@code "workers"}: two worker threads), loads the image into a guest of a fresh domain (it reads every
 * block) and then into a second guest of that domain (every block resident), each at one page into a
 * guest one page larger at each end, whose bytes were all {@value #BEFORE} before. With
 * {@code "full-heap"} every allocation from the k-th on fails, not the k-th alone.
 *
 * <p>Whatever allocation fails, each load either returns, and its guest reads the image in its range, or
 * fails with the injected {@link OutOfMemoryError}, and its guest reads the image's blocks up to some block
 * and what it read before from there on (a stopped load keeps the blocks before its stop and none after:
 * {@link ImageLoader#load}); outside the range nothing changes, and a load after a failed one is not made.
 * Then: no staging guest is left, {@link EngineInvariants} hold, the next load with the same loader (or a
 * new one, if making it failed) of the image into a guest of another domain (read again) and into the
 * stopped guest (resident) goes well and reads the image, and the loader's close ends every worker. A load
 * or close that does not return within {@value #HANG_SECONDS} seconds is a finding.
 *
 * <p>{@link #apply} returns the findings of one run, one line each ("" for none); {@link #getAsLong} the
 * allocations the last run passed. Not thread safe.
 */
final class ImageLoadAllocationScenario implements LongFunction<String>, LongSupplier {

    private static final int PAGE = Pages.PAGE_SIZE;
    private static final byte BEFORE = 0x5a;
    private static final long HANG_SECONDS = 20;
    /** Blocks: three batches, with repeats and zero blocks. */
    private static final int BLOCKS = 2 * LoadBatch.MAX_BLOCKS + 7;

    private final int threads;
    /** {@code "full-heap"}: every allocation from the k-th on fails, until the loads end. */
    private final boolean heapStaysFull;
    private final Path image;
    private final Path indexFile;
    private final byte[] bytes;
    private long allocations;

    /**
     * @param shape {@code "direct"} (one thread: the loading thread reads and hashes), {@code "workers"}
     *              (two worker threads), or {@code "full-heap"}: two worker threads, and every allocation
     *              from the k-th on fails until the loads end (the heap stays full), so a clean-up that
     *              allocates fails too; then a staging guest may be left until the next load, which must
     *              destroy it
     */
    ImageLoadAllocationScenario(String shape, Path dir) throws IOException {
        threads = switch (shape) {
            case "direct" -> 1;
            case "workers", "full-heap" -> 2;
            default -> throw new IllegalArgumentException("no shape '" + shape + "': direct, workers or full-heap");
        };
        heapStaysFull = shape.equals("full-heap");
        bytes = new byte[BLOCKS * PAGE];
        for (int b = 0; b < BLOCKS; b++) {
            if (b % 9 != 4) {       // a zero block in nine; a repeat of one of 8 contents in three
                long seed = b % 3 == 0 ? b % 8 : 100 + b;
                System.arraycopy(ImageIndexTest.randomBytes(PAGE, seed), 0, bytes, b * PAGE, PAGE);
            }
        }
        image = Files.write(dir.resolve("disk.img"), bytes);
        indexFile = dir.resolve("disk.idx");
        try (ImageIndex index = ImageIndex.build(image)) {
            index.writeTo(indexFile);
        }
    }

    @Override
    public long getAsLong() {
        return allocations;
    }

    /** The loader, and what made and used it reached: the loads that returned, and what stopped one. */
    private static final class Attempt {
        ImageLoader loader;
        int loadsReturned;
        Throwable thrown;
    }

    @Override
    public String apply(long failAt) {
        EngineContext context = new EngineContext().poolBytes(4L << 20).hashSeed(7).warmFrames(4);
        context.knobs().smartScan(false);
        DedupEngine engine = DedupEngine.create(context.conclude());
        ImageIndex index = ImageIndex.open(indexFile, image);
        Attempt attempt = new Attempt();
        List<String> findings = new ArrayList<>();
        try {
            run(context, engine, index, attempt, failAt, findings);
        } catch (Throwable t) {        // an OutOfMemoryError too: this run is over, the next one is not
            findings.add("k=" + failAt + " " + AllocationFaults.injectedAt() + ": the checks threw " + t);
        } finally {
            AllocationFaults.disarm();
            if (attempt.loader != null) {
                attempt.loader.close();
            }
            index.close();
            engine.close();
        }
        return String.join("\n", findings);
    }

    private void run(EngineContext context, DedupEngine engine, ImageIndex index, Attempt attempt, long failAt,
            List<String> findings) throws Exception {
        MergeDomain domain = engine.createDomain("first-domain");
        long size = (BLOCKS + 2L) * PAGE;
        Guest first = engine.createGuest(domain, "first", size);
        Guest second = engine.createGuest(domain, "second", size);
        first.fill(0, size, BEFORE);
        second.fill(0, size, BEFORE);
        Guest[] loaded = {first, second};

        if (heapStaysFull) {
            AllocationFaults.failFrom(failAt);
        } else {
            AllocationFaults.failAt(failAt);
        }
        String hang = within(() -> {
            try {
                attempt.loader = new ImageLoader(index, engine, threads);
                for (Guest guest : loaded) {
                    attempt.loader.load(guest, PAGE, 0, BLOCKS);
                    attempt.loadsReturned++;
                }
            } catch (Throwable t) {
                attempt.thrown = t;
            }
            return null;
        });
        allocations = AllocationFaults.count();
        AllocationFaults.disarm();
        String where = "k=" + failAt + (failAt > 0 ? " at " + AllocationFaults.injectedAt() : "");
        if (hang != null) {
            findings.add(where + ": the loader's making or its loads " + hang);
            return;
        }
        Throwable thrown = attempt.thrown;
        if (thrown != null && !injected(thrown)) {
            findings.add(where + ": threw " + describe(thrown) + " instead of the OutOfMemoryError");
        }
        for (int g = 0; g < loaded.length; g++) {
            String read = g < attempt.loadsReturned ? readsTheImage(loaded[g], BLOCKS)
                    : stoppedWhole(loaded[g], g == attempt.loadsReturned && attempt.loader != null);
            if (read != null) {
                findings.add(where + ": " + (g < attempt.loadsReturned ? "returned, but " : "") + read);
            }
        }
        String staging = noStagingGuest(engine, List.of("first", "second"));
        if (staging != null && !heapStaysFull) {
            findings.add(where + ": " + staging);
        }
        try {
            EngineInvariants.assertConsistentWithHasherOf(context, engine, where);
        } catch (AssertionError e) {
            findings.add(e.getMessage());
        }
        if (!findings.isEmpty()) {
            return;
        }

        // The next load, into a guest of another domain (read again) and into the stopped guest (resident).
        Guest third = engine.createGuest(engine.createDomain("other-domain"), "third", size);
        third.fill(0, size, BEFORE);
        Guest again = loaded[Math.min(attempt.loadsReturned, loaded.length - 1)];
        String next = within(() -> {
            if (attempt.loader == null) {
                attempt.loader = new ImageLoader(index, engine, threads);
            }
            attempt.loader.load(third, PAGE, 0, BLOCKS);
            attempt.loader.load(again, PAGE, 0, BLOCKS);
            return null;
        });
        if (next != null) {
            findings.add(where + ": the next load " + next);
            return;
        }
        for (Guest guest : List.of(third, again)) {
            String read = readsTheImage(guest, BLOCKS);
            if (read != null) {
                findings.add(where + ": the next load returned, but " + read);
            }
        }
        String closed = within(() -> {
            attempt.loader.close();
            return null;
        });
        if (closed != null) {
            findings.add(where + ": the loader's close " + closed);
            return;
        }
        List<String> workersLeft = Thread.getAllStackTraces().keySet().stream().filter(Thread::isAlive)
                .map(Thread::getName).filter(n -> n.startsWith(LoadWorkers.THREAD_NAME)).toList();
        if (!workersLeft.isEmpty()) {
            findings.add(where + ": after the loader's close, workers still run: " + workersLeft);
        }
        staging = noStagingGuest(engine, List.of("first", "second", "third"));
        if (staging != null) {
            findings.add(where + ", after the next load: " + staging);
        }
        EngineInvariants.assertConsistentWithHasherOf(context, engine, where + ", after the next load");
    }

    /**
     * Null once {@code call} has returned or thrown on a thread of its own (what it threw goes unreported);
     * "does not return" if it has not within {@value #HANG_SECONDS} seconds. The thread is a daemon: one
     * that hangs is left.
     */
    private static String within(Callable<Void> call) throws InterruptedException {
        FutureTask<Void> task = new FutureTask<>(call);
        Thread thread = new Thread(task, "loading");
        thread.setDaemon(true);
        thread.start();
        try {
            task.get(HANG_SECONDS, TimeUnit.SECONDS);
            return null;
        } catch (TimeoutException e) {
            return "does not return within " + HANG_SECONDS + " s";
        } catch (ExecutionException e) {
            return "threw " + describe(e.getCause());
        }
    }

    private static boolean injected(Throwable t) {
        return t instanceof OutOfMemoryError && t.getMessage() != null && t.getMessage().startsWith(AllocationFaults.MESSAGE_PREFIX);
    }

    private static String describe(Throwable t) {
        StackTraceElement[] at = t.getStackTrace();
        return t + (at.length == 0 ? "" : " at " + at[0]) + (t.getCause() == null ? "" : " (cause " + t.getCause() + ")");
    }

    /** Null if {@code guest} reads the image in its range and {@value #BEFORE} outside it; else what it reads. */
    private String readsTheImage(Guest guest, int blocks) {
        byte[] read = new byte[(int) guest.sizeBytes()];
        guest.read(0, read, 0, read.length);
        int at = Arrays.mismatch(read, PAGE, PAGE + blocks * PAGE, bytes, 0, blocks * PAGE);
        if (at >= 0) {
            return guest.name() + " reads byte " + at + " of block " + at / PAGE + " otherwise than the image";
        }
        return outside(guest, read);
    }

    /**
     * Null if the load into {@code guest}, which did not return, left the image's blocks up to some block and
     * what the guest read before from there on, and, if it was not {@code begun}, changed nothing at all;
     * else what it left.
     */
    private String stoppedWhole(Guest guest, boolean begun) {
        byte[] read = new byte[(int) guest.sizeBytes()];
        guest.read(0, read, 0, read.length);
        int at = Arrays.mismatch(read, PAGE, PAGE + BLOCKS * PAGE, bytes, 0, BLOCKS * PAGE);
        int stop = !begun ? 0 : at < 0 ? BLOCKS : at / PAGE;
        for (int i = PAGE + stop * PAGE; i < PAGE + BLOCKS * PAGE; i++) {
            if (read[i] != BEFORE) {
                return (begun ? "the stopped load into " + guest.name() + " loaded blocks up to " + stop + ", but "
                        : "the load into " + guest.name() + " never began, but ")
                        + "block " + (i / PAGE - 1) + " reads " + read[i] + " at byte " + (i % PAGE) + ", neither the image's "
                        + bytes[i - PAGE] + " nor what it read before";
            }
        }
        return outside(guest, read);
    }

    private static String outside(Guest guest, byte[] read) {
        for (int i : new int[] {0, read.length - PAGE}) {
            for (int j = i; j < i + PAGE; j++) {
                if (read[j] != BEFORE) {
                    return guest.name() + " reads " + read[j] + " at byte " + j + ", outside the load's range";
                }
            }
        }
        return null;
    }

    private static String noStagingGuest(DedupEngine engine, List<String> expected) {
        List<String> names = engine.guests().stream().map(Guest::name).toList();
        return names.equals(expected) ? null : "the engine's guests are " + names + ", not " + expected + ": a staging guest is left";
    }
}
