package io.samepage.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.samepage.hashing.Pages;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLongArray;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Writers, readers, the scanner, {@code run=2} and guest churn at once, on heavily duplicated content.
 *
 * <p>Each of {@value #WRITERS} threads owns {@value #PAGES_PER_WRITER} pages of every guest and keeps
 * its own model of them. It writes page-sized copies of a few shared contents (so the scanner merges
 * all the time), fresh contents into two guests at once (so merges go through the unstable index while
 * the page is still being written), zero pages, fills, and <em>stamped</em> ranges: 8-byte aligned
 * words that each say (writer, sequence number), the writer publishing where each sequence number went
 * before it writes.
 * After every write it reads the range back; now and then it checks all it owns. It also reads pages
 * it does not own and checks every stamp there: the writer owns that page, the stamp's write went to
 * this guest and covers this word (no leak), and every other word that write covered still holds a
 * stamp of that writer at least as new (no torn write). Meanwhile one thread runs the scanner in
 * batches and toggles {@code run=2}/{@code run=1}, {@code use_zero_pages}, {@code smart_scan} and
 * {@code max_page_sharing}, and another creates and destroys guests full of the same contents.
 *
 * <p>Everything is bounded by iteration counts. At the end the scanner stops, every page is compared
 * with its writer's model, two full scans run, and the counters and {@link EngineInvariants} are checked.
 * Thread scheduling is not reproducible; the seeds of the threads' choices are fixed and in every
 * failure message.
 */
class ConcurrentStressTest {

    private static final int PAGE = Pages.PAGE_SIZE;
    private static final int WRITERS = 4;
    private static final int GUESTS = 4;
    private static final int PAGES_PER_WRITER = 16;
    private static final int ITERATIONS = 4000;
    private static final int CHURN_CYCLES = 200;
    private static final long SEED = 20_260_101;
    private static final int MARK = 0xA5;
    private static final byte[][] CONTENTS = new byte[6][PAGE];
    /** Not a timing assertion: a deadlocked run would otherwise hang the build instead of failing. */
    private static final long HANG_GUARD_MINUTES = 10;
    private static final VarHandle WORD = MethodHandles.byteArrayViewVarHandle(long[].class, ByteOrder.LITTLE_ENDIAN);

    static {
        SplittableRandom random = new SplittableRandom(SEED);
        for (byte[] content : CONTENTS) {
            for (int i = 0; i < PAGE; i++) {
                content[i] = (byte) random.nextInt(0x40);
            }
        }
    }

    private DedupEngine engine;
    private Guest[] guests;
    private Writer[] writers;
    private final AtomicLongArray lastSeq = new AtomicLongArray(WRITERS);
    private boolean threadsStopped;

    @ParameterizedTest(name = "{0} scanner threads")
    @ValueSource(ints = {1, 2, 4})
    void concurrentWritesAreNeverLostTornOrLeakedWhileTheScannerMergesAndUnmerges(int scanThreads) throws Exception {
        EngineContext context = new EngineContext().poolBytes(64L << 20).hashSeed(SEED);
        context.knobs().maxPageSharing(3).scanThreads(scanThreads);
        engine = DedupEngine.create(context.conclude());
        try {
            MergeDomain shared = engine.createDomain("shared");
            MergeDomain other = engine.createDomain("other");
            guests = new Guest[GUESTS];
            for (int g = 0; g < GUESTS; g++) {
                guests[g] = engine.createGuest(g < GUESTS - 1 ? shared : other, "g" + g,
                        (long) WRITERS * PAGES_PER_WRITER * PAGE);
            }
            writers = new Writer[WRITERS];
            for (int w = 0; w < WRITERS; w++) {
                writers[w] = new Writer(w);
            }
            runThreads(shared);
            for (Writer writer : writers) {
                writer.verifyAll("after the run");
            }
            engine.scanner().scanFullPass();
            engine.scanner().scanFullPass();
            for (Writer writer : writers) {
                writer.verifyAll("after two more full scans");
            }
            assertCountersConsistent();
            EngineInvariants.assertConsistent(engine, context.newScannerHasher(), "after the run and two full scans");
        } finally {
            if (threadsStopped) {
                engine.close();
            }
        }
    }

    /** Runs the writers, the churner and the scanner to their ends; on failure stops them first. */
    private void runThreads(MergeDomain shared) throws Exception {
        AtomicBoolean writing = new AtomicBoolean(true);
        ExecutorService threads = Executors.newFixedThreadPool(WRITERS + 2);
        try {
            Future<long[]> scanning = threads.submit(() -> runScanner(writing));
            List<Future<?>> work = new ArrayList<>();
            for (Writer writer : writers) {
                work.add(threads.submit(writer));
            }
            work.add(threads.submit(() -> churnGuests(shared)));
            for (Future<?> f : work) {
                await(f);
            }
            writing.set(false);
            long[] scannerWork = await(scanning);
            assertTrue(scannerWork[0] > 0 && scannerWork[1] > 0, "the scanner merged " + scannerWork[0]
                    + " times and unmerged " + scannerWork[1] + " times while writers ran");
            assertEquals(ScanKnobs.RUN_MERGE, engine.knobs().run());
        } finally {
            writing.set(false);
            threads.shutdown();
            // A thread stuck inside the engine would make close() wait forever: then the engine stays open.
            threadsStopped = threads.awaitTermination(HANG_GUARD_MINUTES, TimeUnit.MINUTES);
        }
    }

    private long[] runScanner(AtomicBoolean writing) {
        SplittableRandom rnd = new SplittableRandom(SEED - 1);
        ScanKnobs knobs = engine.knobs();
        long unmerges = 0;
        for (int batch = 1; writing.get(); batch++) {
            engine.scanner().scanBatch(1 + rnd.nextInt(128));
            int r = rnd.nextInt(400);
            // At least one unmerge while writers run, however few batches fit (several scanner threads on
            // few cores run fewer).
            if (r == 0 || (unmerges == 0 && batch % 50 == 0)) {
                knobs.run(ScanKnobs.RUN_UNMERGE);
                engine.scanner().doWork();
                assertEquals(ScanKnobs.RUN_STOP, knobs.run(), "run=2 ends at run=0");
                knobs.run(ScanKnobs.RUN_MERGE);
                unmerges++;
            } else if (r < 5) {
                knobs.useZeroPages(!knobs.useZeroPages());
            } else if (r < 8) {
                knobs.smartScan(!knobs.smartScan());
            } else if (r < 10) {
                try {
                    knobs.maxPageSharing(2 + rnd.nextInt(3));
                } catch (DedupException refused) {
                    assertTrue(refused.getMessage().contains("unmerge first"), refused.getMessage());
                }
            }
        }
        return new long[] {engine.scanner().merges(), unmerges};
    }

    private Void churnGuests(MergeDomain domain) {
        SplittableRandom rnd = new SplittableRandom(SEED + 1);
        for (int cycle = 0; cycle < CHURN_CYCLES; cycle++) {
            Guest guest = engine.createGuest(domain, "churn-" + cycle, 8L * PAGE);
            byte[] bytes = new byte[8 * PAGE];
            for (int p = 0; p < 8; p++) {
                System.arraycopy(CONTENTS[rnd.nextInt(CONTENTS.length)], 0, bytes, p * PAGE, PAGE);
            }
            guest.write(0, bytes, 0, bytes.length);
            for (int look = rnd.nextInt(20); look >= 0; look--) {
                byte[] read = new byte[bytes.length];
                guest.read(0, read, 0, read.length);
                assertTrue(Arrays.equals(bytes, read), "churn guest " + cycle + " reads what it wrote");
            }
            guest.destroy();
        }
        return null;
    }

    private void assertCountersConsistent() {
        EngineCounters c = engine.counters();
        long backed = 0;
        for (Writer writer : writers) {
            for (boolean[] pages : writer.backed) {
                for (boolean b : pages) {
                    backed += b ? 1 : 0;
                }
            }
        }
        long merging = 0;
        long zero = 0;
        for (Guest guest : engine.guests()) {
            merging += guest.counters().mergingPages();
            zero += guest.counters().zeroPages();
        }
        String at = "after the run: " + c + ", " + backed + " written pages";
        assertEquals(GUESTS, engine.guests().size(), at + ": every churn guest is gone");
        assertTrue(c.pagesShared() + c.pagesSharing() + c.ksmZeroPages() <= backed, at);
        assertEquals(c.pagesShared() + c.pagesSharing(), merging, at + ": sum of guests' merging_pages");
        assertEquals(c.ksmZeroPages(), zero, at + ": sum of guests' zero_pages");
        assertEquals(2 + backed - c.pagesSharing() - c.ksmZeroPages(), engine.framesInUse(),
                at + ": framesInUse is two zero frames plus the written pages minus what merging saves");
    }

    private static <T> T await(Future<T> future) throws Exception {
        try {
            return future.get(HANG_GUARD_MINUTES, TimeUnit.MINUTES);
        } catch (ExecutionException e) {
            throw new AssertionError("a stress thread failed (seed " + SEED + "): " + e.getCause(), e.getCause());
        } catch (TimeoutException e) {
            StringBuilder stacks = new StringBuilder();
            for (Map.Entry<Thread, StackTraceElement[]> t : Thread.getAllStackTraces().entrySet()) {
                stacks.append('\n').append(t.getKey()).append(' ').append(t.getKey().getState());
                for (StackTraceElement frame : t.getValue()) {
                    stacks.append("\n    at ").append(frame);
                }
            }
            throw new AssertionError("no stress thread finished in " + HANG_GUARD_MINUTES
                    + " minutes: a deadlock or lost wake-up; threads:" + stacks);
        }
    }

    private static long stamp(int writer, long seq) {
        return MARK | (long) writer << 8 | seq << 16;
    }

    /** One writer: its pages of every guest, its model of them, and where each of its stamped writes went. */
    private final class Writer implements Callable<Void> {

        final int id;
        final SplittableRandom rnd;
        final long base;
        final byte[][] model = new byte[GUESTS][PAGES_PER_WRITER * PAGE];
        final boolean[][] backed = new boolean[GUESTS][PAGES_PER_WRITER];
        /** Guest, start and end of stamped write {@code seq}; written before {@link #lastSeq} publishes it. */
        final int[] rangeGuest = new int[ITERATIONS + 1];
        final long[] rangeStart = new long[ITERATIONS + 1];
        final long[] rangeEnd = new long[ITERATIONS + 1];
        long seq;
        int iteration;

        Writer(int id) {
            this.id = id;
            this.rnd = new SplittableRandom(SEED + 100 + id);
            this.base = (long) id * PAGES_PER_WRITER * PAGE;
        }

        @Override
        public Void call() {
            for (iteration = 0; iteration < ITERATIONS; iteration++) {
                int g = rnd.nextInt(GUESTS);
                int r = rnd.nextInt(100);
                if (r < 30) {
                    writePages(g, 1 + rnd.nextInt(3), false);
                } else if (r < 45) {
                    writePair();
                } else if (r < 55) {
                    writePages(g, 1 + rnd.nextInt(2), true);
                } else if (r < 85) {
                    writeStamps(g);
                } else if (r < 90) {
                    verify(g, 0, PAGES_PER_WRITER * PAGE, "own pages");
                }
                if (rnd.nextInt(3) == 0) {
                    checkForeignPage(rnd.nextInt(GUESTS), rnd.nextInt(WRITERS * PAGES_PER_WRITER));
                }
            }
            verifyAll("at the writer's end");
            return null;
        }

        /** Page-aligned whole pages: shared contents and zero pages, or fills (zero fills drop the frame). */
        private void writePages(int g, int pages, boolean fill) {
            int first = rnd.nextInt(PAGES_PER_WRITER - pages + 1);
            int offset = first * PAGE;
            int length = pages * PAGE;
            if (fill) {
                byte value = rnd.nextBoolean() ? 0 : (byte) rnd.nextInt(0x40);
                guests[g].fill(base + offset, length, value);
                Arrays.fill(model[g], offset, offset + length, value);
                Arrays.fill(backed[g], first, first + pages, value != 0);
            } else {
                byte[] bytes = new byte[length];
                for (int p = 0; p < pages; p++) {
                    int pick = rnd.nextInt(CONTENTS.length + 1);
                    if (pick < CONTENTS.length) {
                        System.arraycopy(CONTENTS[pick], 0, bytes, p * PAGE, PAGE);
                    }
                }
                guests[g].write(base + offset, bytes, 0, length);
                System.arraycopy(bytes, 0, model[g], offset, length);
                Arrays.fill(backed[g], first, first + pages, true);
            }
            verify(g, offset, length, fill ? "fill" : "page write");
        }

        /**
         * A content no page had before, into the same page of two guests of the shared domain: the
         * scanner can only merge them through its unstable index, while this writer goes on writing them.
         */
        private void writePair() {
            byte[] content = new byte[PAGE];
            for (int i = 0; i < PAGE; i++) {
                content[i] = (byte) rnd.nextInt(0x40);
            }
            int page = rnd.nextInt(PAGES_PER_WRITER);
            int first = rnd.nextInt(GUESTS - 1);
            int second = (first + 1 + rnd.nextInt(GUESTS - 2)) % (GUESTS - 1);
            for (int g : new int[] {first, second}) {
                guests[g].write(base + (long) page * PAGE, content, 0, PAGE);
                System.arraycopy(content, 0, model[g], page * PAGE, PAGE);
                backed[g][page] = true;
                verify(g, page * PAGE, PAGE, "pair write");
            }
        }

        private void writeStamps(int g) {
            int words = 1 + rnd.nextInt(3 * PAGE / 8);
            int offset = 8 * rnd.nextInt(PAGES_PER_WRITER * PAGE / 8 - words + 1);
            long s = ++seq;
            rangeGuest[(int) s] = g;
            rangeStart[(int) s] = base + offset;
            rangeEnd[(int) s] = base + offset + 8L * words;
            lastSeq.set(id, s);
            byte[] bytes = new byte[8 * words];
            for (int w = 0; w < words; w++) {
                WORD.set(bytes, 8 * w, stamp(id, s));
            }
            guests[g].write(base + offset, bytes, 0, bytes.length);
            System.arraycopy(bytes, 0, model[g], offset, bytes.length);
            Arrays.fill(backed[g], offset / PAGE, (offset + bytes.length - 1) / PAGE + 1, true);
            verify(g, offset, bytes.length, "stamped write " + s);
        }

        /** Compares {@code [offset, offset+length)} of this writer's part of guest {@code g} with the model. */
        private void verify(int g, int offset, int length, String what) {
            byte[] read = new byte[length];
            guests[g].read(base + offset, read, 0, length);
            int at = Arrays.mismatch(read, 0, length, model[g], offset, offset + length);
            if (at >= 0) {
                long address = base + offset + at;
                fail("writer " + id + " (seed " + SEED + "), iteration " + iteration + ", after " + what
                        + ": guest g" + g + " reads " + read[at] + " at 0x" + Long.toHexString(address)
                        + " (page " + address / PAGE + "), last written " + model[g][offset + at]);
            }
        }

        void verifyAll(String when) {
            for (int g = 0; g < GUESTS; g++) {
                verify(g, 0, PAGES_PER_WRITER * PAGE, when);
            }
        }

        /** Reads one page (atomic against writes to it) and checks every stamp on it. */
        private void checkForeignPage(int g, int page) {
            byte[] bytes = new byte[PAGE];
            long pageStart = (long) page * PAGE;
            guests[g].read(pageStart, bytes, 0, PAGE);
            int owner = page / PAGES_PER_WRITER;
            for (int o = 0; o < PAGE; o += 8) {
                long word = (long) WORD.get(bytes, o);
                if ((word & 0xFF) != MARK) {
                    continue;
                }
                int t = (int) (word >>> 8 & 0xFF);
                long s = word >>> 16;
                if (t != owner) {
                    failStamp(g, page, o, word, "in a page that writer " + owner + " owns: a leaked write");
                }
                if (s < 1 || s > lastSeq.get(t)) {
                    failStamp(g, page, o, word, "which was never published");
                }
                Writer writer = writers[t];
                long address = pageStart + o;
                if (writer.rangeGuest[(int) s] != g || address < writer.rangeStart[(int) s]
                        || address >= writer.rangeEnd[(int) s]) {
                    failStamp(g, page, o, word, "outside where that write went: a leaked write");
                }
                long from = Math.max(writer.rangeStart[(int) s], pageStart);
                long to = Math.min(writer.rangeEnd[(int) s], pageStart + PAGE);
                for (long a = from; a < to; a += 8) {
                    long covered = (long) WORD.get(bytes, (int) (a - pageStart));
                    if ((covered & 0xFFFF) != (MARK | (long) t << 8) || covered >>> 16 < s) {
                        failStamp(g, page, o, word, "but offset " + (a - pageStart) + " of the same write holds 0x"
                                + Long.toHexString(covered) + ": a torn write");
                    }
                }
            }
        }

        private void failStamp(int g, int page, int offset, long word, String problem) {
            fail("reader " + id + " (seed " + SEED + "), iteration " + iteration + ": guest g" + g + " page " + page
                    + " offset " + offset + " holds a stamp of writer " + (word >>> 8 & 0xFF)
                    + " write " + (word >>> 16) + " " + problem);
        }
    }
}
