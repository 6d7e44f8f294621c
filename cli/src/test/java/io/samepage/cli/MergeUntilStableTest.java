package io.samepage.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.samepage.core.DedupEngine;
import io.samepage.core.EngineContext;
import io.samepage.core.EngineCounters;
import io.samepage.core.MergeDomain;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

class MergeUntilStableTest {

    @Test
    void stopsOnlyWhenAFurtherFullScanChangesNothing() {
        EngineContext context = new EngineContext().poolBytes(1L << 20);
        context.knobs().smartScan(false);
        try (DedupEngine engine = DedupEngine.create(context.conclude())) {
            MergeDomain domain = engine.createDomain("d");
            byte[] page = new byte[4096];
            Arrays.fill(page, (byte) 7);
            for (int g = 0; g < 3; g++) {
                engine.createGuest(domain, "vm" + g, 2 * 4096).write(0, page, 0, page.length);
            }
            int scans = MergeUntilStable.run(engine);
            EngineCounters settled = engine.counters();
            assertEquals(scans, settled.fullScans());
            assertEquals(2, settled.pagesSharing());
            long merges = engine.scanner().merges();
            engine.scanner().scanFullPass();
            EngineCounters again = engine.counters();
            assertEquals(settled.pagesShared(), again.pagesShared());
            assertEquals(settled.pagesSharing(), again.pagesSharing());
            assertEquals(settled.pagesUnshared(), again.pagesUnshared());
            assertEquals(merges, engine.scanner().merges());
        }
    }
}
