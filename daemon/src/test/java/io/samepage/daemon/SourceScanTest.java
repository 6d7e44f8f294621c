package io.samepage.daemon;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.samepage.core.EngineContext;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@link SourceScan}: sources into a fresh engine, scanned until stable. */
class SourceScanTest {

    private static final int PAGE = 4096;

    @TempDir
    Path dir;

    /** Two dumps of the same 8 random pages: 8 frames shared, 8 pages sharing, in one domain. */
    @Test
    void twinDumpsMergeInOneDomain() throws IOException {
        List<SourceFile> files = List.of(dump("a", 8, 1), dump("b", 8, 1));
        SourceScan.Result r = SourceScan.run(new EngineContext().poolBytes(64L * PAGE).conclude(), files, false,
                e -> new IllegalStateException("no load fails here", e));
        assertEquals(8, r.counters().pagesShared());
        assertEquals(8, r.counters().pagesSharing());
        assertEquals(1, r.domains());
        assertEquals(2, r.guests().size());
        assertEquals(16, r.pagesWritten());
    }

    /** Apart, the same dumps share nothing: a merge never crosses a domain. */
    @Test
    void aDomainPerSourceKeepsThemApart() throws IOException {
        List<SourceFile> files = List.of(dump("a", 8, 1), dump("b", 8, 1));
        SourceScan.Result r = SourceScan.run(new EngineContext().poolBytes(64L * PAGE).conclude(), files, true,
                e -> new IllegalStateException("no load fails here", e));
        assertEquals(0, r.counters().pagesSharing());
        assertEquals(2, r.domains());
    }

    /** A pool too small for the dumps: the caller's error. */
    @Test
    void aLoadThePoolCannotHoldBecomesTheCallersError() throws IOException {
        List<SourceFile> files = List.of(dump("a", 8, 1), dump("b", 8, 2));
        IllegalStateException mine = new IllegalStateException("pool too small");
        RuntimeException thrown = assertThrows(RuntimeException.class, () -> SourceScan.run(
                new EngineContext().poolBytes(10L * PAGE).conclude(), files, false, e -> mine));
        assertSame(mine, thrown);
    }

    private SourceFile dump(String name, int pages, long seed) throws IOException {
        byte[] bytes = new byte[pages * PAGE];
        new SplittableRandom(seed).nextBytes(bytes);
        Path file = dir.resolve(name);
        Files.write(file, bytes);
        return SourceFile.check(file.toString());
    }
}
