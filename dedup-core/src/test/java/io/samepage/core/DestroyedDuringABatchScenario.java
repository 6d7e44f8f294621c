package io.samepage.core;

import io.samepage.testing.AllocationFaultLoader;
import io.samepage.testing.AllocationFaults;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * Two guests destroyed while a batch runs, their page ids given back at its end, with the k-th
 * allocation of that end failing; for {@link AllocationFaultTest}, which loads this class through an
 * {@link AllocationFaultLoader}. A destroy during a batch cannot release ids (a filing may be in flight),
 * so the batch's end releases both: {@code x}, none of whose pages was filed, at once; {@code y}, whose
 * page was filed in this full scan, into quarantine. The batch is held by a mapped guest whose write
 * protection, asked for by the batch's merge, waits until both destroys are done: the scanner runs on
 * a thread of its own, and the destroys on this one.
 *
 * <p>However the release fails, it must not give an id back twice: a guest made after it, and given
 * {@code x}'s ids, must keep them when the next release comes, and no two live guests may share one.
 * That release is {@code run=2}'s, which empties the unstable indexes and so frees every destroyed
 * guest's ids still held ({@code y}'s), whether or not PageIds says a guest was destroyed since its last
 * release: a batch's end and a destroy release only if it says so, and a release that freed {@code x}'s
 * ids yet kept {@code x} on its list, and said none was left, went unseen by them. After the batch's end
 * and at the last, the engine's page ids must be exactly those of its guests live or waiting for their
 * release ({@link PageIdLedger}).
 *
 * <p>{@link #apply} returns the findings of one run ("" for none); {@link #getAsLong} the allocations the
 * batch's end passed in the last run. Not thread safe.
 */
final class DestroyedDuringABatchScenario extends FaultScenario {

    @Override
    public String apply(long failAt) {
        return onSmallEngine(failAt, this::run);
    }

    private String run(DedupEngine engine, long failAt) throws InterruptedException {
        MergeDomain domain = engine.createDomain("a");
        Guest w = engine.createGuest(domain, "w", PAGE);
        Guest y = engine.createGuest(domain, "y", PAGE);
        BlockingMapping[] held = new BlockingMapping[1];
        Guest m = engine.createGuest(domain, "m", PAGE, (first, pages) -> held[0] = new BlockingMapping(first, pages));
        Guest x = engine.createGuest(domain, "x", PAGE);
        w.write(0, AllocationFaultShapes.content(5), 0, PAGE);
        y.write(0, AllocationFaultShapes.content(7), 0, PAGE);
        m.write(0, AllocationFaultShapes.content(5), 0, PAGE);       // w's twin: the batch protects it to merge
        engine.scanner().scanFullPass();        // first visits: hashes only

        held[0].holdNextProtection();
        Throwable[] batchFailure = new Throwable[1];
        Thread scanner = new Thread(() -> {
            try {
                engine.scanner().scanFullPass();
            } catch (Throwable t) {
                batchFailure[0] = t;
            }
        }, "scanner-held");
        scanner.start();
        if (!held[0].protecting.await(30, TimeUnit.SECONDS)) {
            return "k=" + failAt + ": the batch never asked to protect m's page";
        }
        x.destroy();
        y.destroy();
        AllocationFaults.failAt(failAt);
        held[0].release.countDown();
        scanner.join(TimeUnit.SECONDS.toMillis(30));
        String where = endArmed(failAt);
        if (scanner.isAlive()) {
            return where + ": the batch did not end";
        }
        if (batchFailure[0] != null && !(batchFailure[0] instanceof OutOfMemoryError)) {
            return where + ": the batch threw " + batchFailure[0];
        }
        String idsAfterBatch = PageIdLedger.differences(engine);      // told after the checks below: their findings keep their words

        Guest z = engine.createGuest(domain, "z", PAGE);        // takes the lowest free ids: x's, if released
        engine.scanner().scanBatch(0);          // releases what destroyed guests still hold
        engine.knobs().run(ScanKnobs.RUN_UNMERGE);
        engine.scanner().doWork();              // empties the indexes: every waiting guest's ids go, y's, flagged or not
        Guest q = engine.createGuest(domain, "q", PAGE);
        int zIds = z.table().basePageId();
        if (engine.pageOwner(zIds) != z) {
            return where + ": live guest z's page id " + zIds + " was given back (now owned by " + engine.pageOwner(zIds) + ")";
        }
        if (q.table().basePageId() == zIds) {
            return where + ": live guests z and q were both given page id " + zIds;
        }
        EngineInvariants.assertConsistentWithHasherOf(engine.context(), engine, where);
        if (idsAfterBatch != null) {
            return where + ": after the batch's end, " + idsAfterBatch;
        }
        String ids = PageIdLedger.differences(engine);
        return ids == null ? "" : where + ": at the end, " + ids;
    }

    /** A {@link RecordingMapping} whose next write protection, once held, waits for {@link #release}. */
    private static final class BlockingMapping extends ForwardingMapping {
        final CountDownLatch protecting = new CountDownLatch(1);
        final CountDownLatch release = new CountDownLatch(1);
        private volatile boolean hold;

        BlockingMapping(int first, int pages) {
            super(first, pages);
        }

        void holdNextProtection() {
            hold = true;
        }

        @Override
        public boolean writeProtect(int page) {
            if (hold) {
                hold = false;
                protecting.countDown();
                try {
                    if (!release.await(30, TimeUnit.SECONDS)) {
                        throw new IllegalStateException("never released");
                    }
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
            return super.writeProtect(page);
        }
    }
}
