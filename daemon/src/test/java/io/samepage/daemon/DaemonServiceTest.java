package io.samepage.daemon;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link DaemonService#reload}: one line for what a reload of the config file changed or why it was
 * refused, config errors in their {@code FILE:LINE} form, and nothing once the daemon stops. (What it
 * tells systemd is proved end to end, through the launcher, with a socket standing in for systemd.)
 */
class DaemonServiceTest {

    @TempDir
    Path dir;

    @Test
    void eachReloadIsToldOnOneLineAndARefusedOneChangesNothing() throws IOException {
        Files.write(dir.resolve("vm0.img"), new byte[4 * 4096]);
        Path config = dir.resolve("samepage.conf");
        String base = "source=" + dir.resolve("vm0.img") + "\ncounters_file=" + dir.resolve("counters") + "\n";
        Files.writeString(config, base + "pages_to_scan=1000\n");
        List<String> notices = new ArrayList<>();
        try (Daemon daemon = Daemon.launch(DaemonConfig.read(config).applyTo(new Daemon.Context().noticeHandler(_ -> { })));
                DaemonService service = new DaemonService(config, notices::add)) {
            service.reload();
            service.ready(daemon);
            Files.writeString(config, base + "pages_to_scan=500\n");
            service.reload();
            Files.writeString(config, base + "pages_to_scan=five\n");
            service.reload();
            Files.writeString(config, base + "pages_to_scan=7\nmetrics_port=9\n");
            service.reload();
            assertEquals(500, daemon.engine().knobs().pagesToScan());
            service.stopping();
            service.reload();
        }
        assertEquals(List.of(
                "reload asked while the daemon is not running: ignored",
                "reloaded " + config + ": pages_to_scan 1000 -> 500",
                config + ":3: pages_to_scan must be a whole number, not 'five'; reload refused, running on with "
                        + "the old config",
                config + ": metrics_port changed: it takes effect only with a restart; reload refused, running on "
                        + "with the old config",
                "reload asked while the daemon is not running: ignored"), notices);
    }
}
