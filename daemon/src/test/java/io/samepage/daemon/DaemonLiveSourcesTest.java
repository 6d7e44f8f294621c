package io.samepage.daemon;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.samepage.host.PageDigestEstimator;
import io.samepage.testing.ChildJvm;
import io.samepage.testing.PageMixChild;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The daemon's live sources are estimated from page digests at each interval, not copied into its
 * engine: a {@code pid:} source of a {@link PageMixChild} beside a file source.
 */
class DaemonLiveSourcesTest {

    private static final int FILE_PAGES = 8;

    @TempDir
    Path dir;

    @Test
    void aPidSourceIsEstimatedNotLoadedAndAnExitedOneLeavesTheEstimate() throws Exception {
        byte[] file = new byte[FILE_PAGES * PageMixChild.PAGE];
        new SplittableRandom(2).nextBytes(file);
        Files.write(dir.resolve("vm.img"), file);
        List<String> notices = new CopyOnWriteArrayList<>();
        ChildJvm child = ChildJvm.start(PageMixChild.class);
        DaemonGuests guests = null;
        try {
            Daemon.Context context = new Daemon.Context().noticeHandler(notices::add)
                    .sources(List.of(new Source.File(dir.resolve("vm.img").toString()), new Source.Pid(child.pid())))
                    .countersFile(dir.resolve("counters")).conclude();
            guests = DaemonGuests.load(context);

            assertEquals(1, guests.engine().guests().size(), "only the file is a guest of the engine");
            assertEquals(FILE_PAGES, guests.engine().counters().pagesTotal());
            SourceEstimate.Result live = guests.liveEstimate();
            assertEquals(1, live.estimate().guests().size());
            PageDigestEstimator.GuestEstimate pid = live.estimate().guests().getFirst();
            assertTrue(pid.name().startsWith("pid " + child.pid() + " "), pid.name());
            assertTrue(pid.pagesRead() >= PageMixChild.MIX_PAGES, pid.toString());
            long duplicates = PageMixChild.DUPLICATED_PAGES - PageMixChild.GROUPS + PageMixChild.ZERO_PAGES - 1;
            assertTrue(live.estimate().pagesSharing() >= duplicates, "768 duplicates and 255 zero pages beyond the "
                    + "first, without use_zero_pages: " + live.estimate().counters());

            DaemonMetrics metrics = new DaemonMetrics(guests.engine(), 0);
            metrics.liveSources(guests::liveEstimate);
            String text = metrics.prometheusText();
            assertEquals(live.estimate().pagesSharing(), metric(text, "samepage_live_pages_sharing"), text);
            assertEquals(live.estimate().savedPages() * 4096, metric(text, "samepage_live_saving_bytes"), text);
            assertEquals(pid.mergingPages(), metric(text, "samepage_live_source_merging_pages{source=\""
                    + pid.name() + "\"}"), text);
            assertEquals(1, metric(text, "samepage_guests"), "the engine's metrics count the file alone");

            guests.refreshLive();
            assertEquals(1, guests.liveEstimate().estimate().guests().size(), "estimated again");
            assertTrue(guests.liveEstimate() != live, "a fresh estimate");
            assertEquals(List.of(), notices);

            child.kill();
            guests.refreshLive();
            guests.refreshLive();
            assertEquals(List.of("pid:" + child.pid() + ": the process has exited; dropped from the sources "
                    + "(a later process with its pid is another process)"), notices);
            assertEquals(0, guests.liveEstimate().estimate().guests().size());
            assertEquals(1, guests.engine().guests().size());
        } finally {
            if (guests != null) {
                guests.engine().close();
            }
            child.close();
        }
    }

    /** The value of the sample {@code name} (with its labels) in Prometheus text. */
    private static long metric(String text, String name) {
        for (String line : text.split("\n")) {
            if (line.startsWith(name + " ")) {
                return (long) Double.parseDouble(line.substring(name.length() + 1));
            }
        }
        throw new AssertionError(name + " is not in:\n" + text);
    }

    @Test
    void aDaemonOfLiveSourcesAloneHasAnEngineWithNoGuest() throws Exception {
        try (ChildJvm child = ChildJvm.start(PageMixChild.class)) {
            Daemon.Context context = new Daemon.Context().sources(List.of(new Source.Pid(child.pid())))
                    .countersFile(dir.resolve("counters")).conclude();
            DaemonGuests guests = DaemonGuests.load(context);
            try {
                assertEquals(0, guests.engine().guests().size());
                assertEquals(1, guests.liveEstimate().estimate().guests().size());
            } finally {
                guests.engine().close();
            }
        }
    }

    @Test
    void aDaemonOfFilesAloneHasNoLiveEstimate() throws Exception {
        Files.write(dir.resolve("vm.img"), new byte[FILE_PAGES * PageMixChild.PAGE]);
        Daemon.Context context = new Daemon.Context().sources(List.of(new Source.File(dir.resolve("vm.img")
                .toString()))).countersFile(dir.resolve("counters")).conclude();
        DaemonGuests guests = DaemonGuests.load(context);
        try {
            assertNull(guests.liveEstimate());
        } finally {
            guests.engine().close();
        }
    }
}
