package io.samepage.daemon;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.samepage.core.DedupEngine;
import io.samepage.core.EngineContext;
import io.samepage.core.EngineCounters;
import io.samepage.core.Guest;
import io.samepage.core.GuestCounters;
import io.samepage.core.MergeDomain;
import java.net.ConnectException;
import java.net.InetAddress;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * {@code /metrics} as Prometheus scrapes it: a real {@link MetricsServer} on an ephemeral loopback port
 * serving a {@link DaemonMetrics} over an engine that has merged, its text parsed by
 * {@link PrometheusText}, every value compared with the engine's own counters.
 */
class MetricsServerTest {

    private static final int PAGE = 4096;
    private static final int PAGES = 8;
    private static final int SHARED = 3;

    private DedupEngine engine;
    private MetricsServer server;
    private HttpClient client;

    @BeforeEach
    void mergeTwoGuestsAndServe() {
        engine = DedupEngine.create(new EngineContext().poolBytes(16L << 20).hashSeed(5).conclude());
        MergeDomain domain = engine.createDomain("tenant \"a\"");
        SplittableRandom random = new SplittableRandom(17);
        byte[][] shared = new byte[SHARED][PAGE];
        for (byte[] page : shared) {
            random.nextBytes(page);
        }
        for (String name : List.of("vm0", "vm\\1\n")) {
            Guest guest = engine.createGuest(domain, name, PAGES * PAGE);
            byte[] page = new byte[PAGE];
            for (int p = 0; p < PAGES; p++) {
                random.nextBytes(page);
                guest.write((long) p * PAGE, p < SHARED ? shared[p] : page, 0, PAGE);
            }
        }
        engine.scanner().scanFullPass();
        engine.scanner().scanFullPass();
        assertEquals(SHARED, engine.counters().pagesSharing(), "the engine merged the shared pages");
        server = MetricsServer.start(0, new DaemonMetrics(engine, 1_700_000_000_123L)::prometheusText);
        client = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();
    }

    @AfterEach
    void stop() {
        client.close();
        server.close();
        engine.close();
    }

    @Test
    void everyEngineCounterIsScrapedUnderItsKsmNameWithItsTypeAndTheEnginesValue() throws Exception {
        PrometheusText scraped = PrometheusText.parse(get("/metrics").body());
        EngineCounters c = engine.counters();
        Map<String, Long> gauges = new LinkedHashMap<>();
        gauges.put("samepage_pages_shared", c.pagesShared());
        gauges.put("samepage_pages_sharing", c.pagesSharing());
        gauges.put("samepage_pages_unshared", c.pagesUnshared());
        gauges.put("samepage_pages_volatile", c.pagesVolatile());
        gauges.put("samepage_ksm_zero_pages", c.ksmZeroPages());
        gauges.put("samepage_stable_node_chains", c.stableNodeChains());
        gauges.put("samepage_stable_node_dups", c.stableNodeDups());
        gauges.put("samepage_general_profit_bytes", c.generalProfit());
        gauges.put("samepage_pages", c.pagesTotal());
        gauges.put("samepage_metadata_bytes", c.metadataBytes());
        gauges.put("samepage_frames_in_use", c.framesInUse());
        gauges.put("samepage_frames_withheld", c.framesWithheld());
        gauges.put("samepage_guests", 2L);
        gauges.forEach((name, value) -> assertEquals(new PrometheusText.Family(name, "gauge",
                scraped.family(name).help(), List.of(new PrometheusText.Sample(name, Map.of(), value))),
                scraped.family(name)));
        Map<String, Long> counters = Map.of(
                "samepage_full_scans_total", c.fullScans(),
                "samepage_pages_scanned_total", c.pagesScanned(),
                "samepage_pages_skipped_total", c.pagesSkipped(),
                "samepage_frame_release_failures_total", c.frameReleaseFailures());
        counters.forEach((name, value) -> assertEquals(new PrometheusText.Family(name, "counter",
                scraped.family(name).help(), List.of(new PrometheusText.Sample(name, Map.of(), value))),
                scraped.family(name)));
    }

    @Test
    void countersEndInTotalByteFiguresInBytesAndEveryFamilyHasHelp() throws Exception {
        PrometheusText scraped = PrometheusText.parse(get("/metrics").body());
        for (PrometheusText.Family family : scraped.families().values()) {
            assertEquals(family.type().equals("counter"), family.name().endsWith("_total"),
                    family.name() + " is a " + family.type());
            assertFalse(family.help().isBlank(), family.name() + " has no HELP");
            assertTrue(family.name().startsWith("samepage_") || family.name().startsWith("process_"), family.name());
        }
        for (String bytes : List.of("samepage_general_profit_bytes", "samepage_metadata_bytes",
                "samepage_guest_profit_bytes", "samepage_jvm_heap_used_bytes")) {
            assertEquals("gauge", scraped.family(bytes).type(), bytes);
        }
        for (String renamed : List.of("samepage_full_scans", "samepage_pages_scanned", "samepage_pages_skipped",
                "samepage_general_profit", "samepage_pages_total", "samepage_guest_pages_total",
                "samepage_guest_profit")) {
            assertFalse(scraped.families().containsKey(renamed), renamed + " is still served");
        }
    }

    @Test
    void eachGuestIsLabelledWithItsNameAndDomainAndCarriesItsOwnCounters() throws Exception {
        PrometheusText scraped = PrometheusText.parse(get("/metrics").body());
        for (Guest guest : engine.guests()) {
            GuestCounters g = guest.counters();
            Map<String, String> labels = Map.of("guest", g.name(), "domain", g.domain());
            assertEquals(g.pagesTotal(), scraped.value("samepage_guest_pages", labels));
            assertEquals(g.mergingPages(), scraped.value("samepage_guest_merging_pages", labels));
            assertEquals(g.zeroPages(), scraped.value("samepage_guest_zero_pages", labels));
            assertEquals(g.profit(), scraped.value("samepage_guest_profit_bytes", labels));
            assertEquals(PAGES, g.pagesTotal());
            assertEquals(SHARED, g.mergingPages());
        }
    }

    @Test
    void theProcessIsDescribedByInfoAndStartTime() throws Exception {
        PrometheusText scraped = PrometheusText.parse(get("/metrics").body());
        assertEquals(1, scraped.value("samepage_info", Map.of("pid", Long.toString(ProcessHandle.current().pid()),
                "java_version", Runtime.version().toString())));
        assertEquals(1_700_000_000.123, scraped.family("process_start_time_seconds").samples().getFirst().value(),
                1e-9);
        assertTrue(scraped.family("samepage_jvm_heap_used_bytes").samples().getFirst().value() > 0);
    }

    @Test
    void getServesTheTextFormatAndHeadTheSameHeadersWithoutABody() throws Exception {
        String textFormat = "text/plain; version=0.0.4; charset=utf-8";
        HttpResponse<String> got = get("/metrics");
        assertEquals(200, got.statusCode());
        assertEquals(textFormat, got.headers().firstValue("Content-Type").orElseThrow());
        HttpResponse<String> head = send("HEAD", "/metrics");
        assertEquals(200, head.statusCode());
        assertEquals(textFormat, head.headers().firstValue("Content-Type").orElseThrow());
        assertEquals("", head.body());
    }

    @Test
    void unknownPathsAreNotFound() throws Exception {
        for (String path : List.of("/", "/metric", "/metricsx", "/metrics/", "/metrics/extra", "/favicon.ico")) {
            assertEquals(404, get(path).statusCode(), path);
            assertEquals(404, send("POST", path).statusCode(), "POST " + path);
        }
    }

    @Test
    void methodsOtherThanGetAndHeadAreRefusedWithTheAllowedOnes() throws Exception {
        for (String method : List.of("POST", "PUT", "DELETE", "OPTIONS")) {
            HttpResponse<String> refused = send(method, "/metrics");
            assertEquals(405, refused.statusCode(), method);
            assertEquals("GET, HEAD", refused.headers().firstValue("Allow").orElse(null), method);
        }
    }

    @Test
    void byDefaultItListensOnLoopbackOnly() {
        assertEquals(InetAddress.getLoopbackAddress(), server.address());
    }

    @Test
    void itListensOnTheAddressItIsGivenAndOnNoOther() throws Exception {
        InetAddress other = InetAddress.ofLiteral("127.0.0.2");
        try (MetricsServer elsewhere = MetricsServer.start(other, 0, () -> "samepage_guests 2.0\n")) {
            assertEquals(other, elsewhere.address());
            HttpResponse<String> there = client.send(HttpRequest.newBuilder(
                    URI.create("http://127.0.0.2:" + elsewhere.port() + "/metrics")).GET().build(),
                    HttpResponse.BodyHandlers.ofString());
            assertEquals(200, there.statusCode());
            assertEquals("samepage_guests 2.0\n", there.body());
            assertThrows(ConnectException.class, () -> new Socket(InetAddress.getLoopbackAddress(),
                    elsewhere.port()).close(), "nothing listens on 127.0.0.1:" + elsewhere.port());
        }
    }

    @Test
    void anAddressThatCannotBeBoundIsRefusedNamingItAndThePort() {
        DaemonException refused = assertThrows(DaemonException.class,
                () -> MetricsServer.start(InetAddress.ofLiteral("192.0.2.1"), 9464, () -> ""));
        assertEquals(DaemonException.Kind.METRICS_PORT, refused.kind());
        assertTrue(refused.getMessage().startsWith("metrics_port 9464: cannot listen on 192.0.2.1:9464 ("),
                refused.getMessage());
    }

    /**
     * A request left half sent (one byte, the connection held open) blocked every later scrape for as
     * long as its sender wished: the JDK server parsed requests on its one dispatcher thread.
     */
    @Test
    void aRequestLeftHalfSentBlocksNoOtherScrape() throws Exception {
        try (Socket slow = new Socket(InetAddress.getLoopbackAddress(), server.port())) {
            slow.getOutputStream().write('G');
            slow.getOutputStream().flush();
            HttpResponse<String> scrape = client.send(HttpRequest.newBuilder(
                    URI.create("http://127.0.0.1:" + server.port() + "/metrics")).timeout(Duration.ofSeconds(5)).GET()
                    .build(), HttpResponse.BodyHandlers.ofString());
            assertEquals(200, scrape.statusCode());
        }
    }

    private HttpResponse<String> get(String path) throws Exception {
        return send("GET", path);
    }

    private HttpResponse<String> send(String method, String path) throws Exception {
        return client.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + server.port() + path))
                .method(method, HttpRequest.BodyPublishers.noBody()).timeout(Duration.ofSeconds(30)).build(),
                HttpResponse.BodyHandlers.ofString(StandardCharsets.UTF_8));
    }
}
