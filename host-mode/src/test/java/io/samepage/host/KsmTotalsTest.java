package io.samepage.host;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** {@link KsmTotals} against a page-by-page replay of how ksmd fills KSM pages and chains. */
class KsmTotalsTest {

    /** ksmd's order for one content: join a KSM page with room, else pair with the unstable page, else wait. */
    private static long[] replay(long pages, int maxPageSharing) {
        List<long[]> ksmPages = new ArrayList<>();
        boolean unstable = false;
        for (long p = 0; p < pages; p++) {
            long[] room = null;
            for (long[] k : ksmPages) {
                if (k[0] < maxPageSharing) {
                    room = k;
                }
            }
            if (room != null) {
                room[0]++;
            } else if (unstable) {
                ksmPages.add(new long[] {2});
                unstable = false;
            } else {
                unstable = true;
            }
        }
        long sharing = 0;
        for (long[] k : ksmPages) {
            sharing += k[0] - 1;
        }
        return new long[] {ksmPages.size(), sharing, unstable ? 1 : 0, ksmPages.size() > 1 ? 1 : 0,
            ksmPages.size() > 1 ? ksmPages.size() : 0};
    }

    @Test
    void everyContentSizeUpToFourChainsMatchesTheReplayAndSavesNMinusCeilNOverMps() {
        for (int mps = 2; mps <= 12; mps++) {
            for (long n = 1; n <= 4L * mps + 3; n++) {
                KsmTotals t = new KsmTotals();
                t.content(n, mps);
                long[] r = replay(n, mps);
                String at = "n=" + n + " max_page_sharing=" + mps;
                assertEquals(r[0], t.pagesShared, "pages_shared " + at);
                assertEquals(r[1], t.pagesSharing, "pages_sharing " + at);
                assertEquals(r[2], t.pagesUnshared, "pages_unshared " + at);
                assertEquals(r[3], t.stableNodeChains, "stable_node_chains " + at);
                assertEquals(r[4], t.stableNodeDups, "stable_node_dups " + at);
                assertEquals(n - KsmTotals.frames(n, mps), t.pagesSharing, "saving " + at);
            }
        }
    }

    @Test
    void hugeContentsAndTheDefaultLimit() {
        KsmTotals t = new KsmTotals();
        t.content(1L << 33, 256);
        assertEquals((1L << 33) / 256, t.pagesShared);
        assertEquals((1L << 33) - (1L << 33) / 256, t.pagesSharing);
        t = new KsmTotals();
        t.content(257, 256);
        assertEquals(1, t.pagesShared);
        assertEquals(255, t.pagesSharing);
        assertEquals(1, t.pagesUnshared, "the 257th page finds no partner");
        assertEquals(0, t.stableNodeChains);
        t = new KsmTotals();
        t.content(258, 256);
        assertEquals(2, t.pagesShared);
        assertEquals(1, t.stableNodeChains);
        assertEquals(2, t.stableNodeDups);
    }

    @Test
    void refusesWhatKsmRefuses() {
        assertThrows(IllegalArgumentException.class, () -> new KsmTotals().content(5, 1));
        assertThrows(IllegalArgumentException.class, () -> new KsmTotals().content(0, 2));
    }
}
