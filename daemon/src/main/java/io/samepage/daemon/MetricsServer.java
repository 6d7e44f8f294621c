package io.samepage.daemon;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpHandler;
import com.sun.net.httpserver.HttpServer;
import io.samepage.daemon.DaemonException.Kind;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.function.Supplier;

/**
 * Serves {@code /metrics} in Prometheus' text exposition format 0.0.4 with the JDK's HTTP server, one
 * thread, on loopback unless told another address, and a daemon's placement sketches at
 * {@code /sketches} (JSON). {@code GET} and {@code HEAD} of those paths are answered; any other method
 * there is refused with 405 and {@code Allow: GET, HEAD}; any other path is 404. What it serves comes
 * from {@code body} (or {@code sketches}), called once per {@code GET} or {@code HEAD}.
 *
 * <p>Prometheus' own {@code prometheus-metrics-exporter-httpserver} 1.10.0 is not used: it does not resolve
 * from Maven Central (its dependency {@code prometheus-metrics-annotations:jar:1.10.0} is absent), and it
 * would add nothing here but content negotiation.
 *
 * <p>A start allocates all it needs before it binds the port, so an {@link OutOfMemoryError} leaves no
 * port bound and no thread.
 *
 * <p>Thread safety: {@code body} is called on the server's thread.
 */
public final class MetricsServer implements AutoCloseable {

    /** The metrics' path. */
    public static final String PATH = "/metrics";

    /** The placement sketches' path, where a daemon serves them (JSON, as {@code samepage scan --json}). */
    public static final String SKETCHES_PATH = "/sketches";

    private final ExecutorService exchanges;
    /** Set once bound, before it is returned. */
    private HttpServer server;

    private MetricsServer(ExecutorService exchanges) {
        this.exchanges = exchanges;
    }

    /**
     * The daemon's server, as {@code context} asks: none for metrics port 0, any free port for
     * {@link Daemon.Context#METRICS_PORT_ANY} ({@link #port()} says which), else that port, on its address.
     *
     * @return the started server, or null if the context serves no metrics
     * @throws DaemonException {@link Kind#METRICS_PORT} if the address and port cannot be bound
     */
    static MetricsServer of(Daemon.Context context, Supplier<String> body, Supplier<String> sketches) {
        int port = context.metricsPort();
        if (port == 0) {
            return null;
        }
        return start(context.metricsAddress(), port == Daemon.Context.METRICS_PORT_ANY ? 0 : port, body, sketches);
    }

    /**
     * Binds {@code 127.0.0.1:port} (port 0: any free port) and starts serving.
     *
     * @throws DaemonException {@link Kind#METRICS_PORT} if the port cannot be bound
     */
    public static MetricsServer start(int port, Supplier<String> body) {
        return start(InetAddress.getLoopbackAddress(), port, body);
    }

    /**
     * Binds {@code address:port} (port 0: any free port) and starts serving.
     *
     * @throws DaemonException {@link Kind#METRICS_PORT} if the address and port cannot be bound
     */
    public static MetricsServer start(InetAddress address, int port, Supplier<String> body) {
        return start(address, port, body, null);
    }

    /**
     * The same, serving {@code sketches} at {@value #SKETCHES_PATH} too (null: that path is 404).
     *
     * @throws DaemonException {@link Kind#METRICS_PORT} if the address and port cannot be bound
     */
    public static MetricsServer start(InetAddress address, int port, Supplier<String> body, Supplier<String> sketches) {
        // What this allocates is allocated before the port is bound: an OutOfMemoryError after the bind would
        // leave the port bound, since the JDK's HttpServer.stop does not close the socket of a server that
        // never started.
        HttpHandler handler = exchange -> {
            try (exchange) {
                String path = exchange.getRequestURI().getPath();
                if (path.equals(PATH)) {
                    respond(exchange, body, DaemonMetrics.CONTENT_TYPE);
                } else if (path.equals(SKETCHES_PATH) && sketches != null) {
                    respond(exchange, sketches, "application/json");
                } else {
                    exchange.sendResponseHeaders(404, -1);
                }
            }
        };
        // Each exchange on a virtual thread of its own: on the server's one dispatcher thread (its default),
        // a request left half sent blocked every scrape after it for as long as its sender held it open.
        ExecutorService exchanges = Executors.newVirtualThreadPerTaskExecutor();
        MetricsServer metrics = new MetricsServer(exchanges);
        InetSocketAddress listen = new InetSocketAddress(address, port);
        try {
            metrics.server = HttpServer.create(listen, 8);
        } catch (IOException e) {
            exchanges.shutdownNow();
            throw new DaemonException(Kind.METRICS_PORT, "metrics_port " + (port == 0 ? "any" : port) + ": cannot listen on "
                    + hostPort(address, port) + " (" + e.getMessage() + ")", e);
        }
        metrics.server.createContext("/", handler);
        metrics.server.setExecutor(exchanges);
        metrics.server.start();
        return metrics;
    }

    private static void respond(HttpExchange exchange, Supplier<String> body, String contentType) throws IOException {
        String method = exchange.getRequestMethod();
        boolean head = method.equals("HEAD");
        if (!head && !method.equals("GET")) {
            exchange.getResponseHeaders().set("Allow", "GET, HEAD");
            exchange.sendResponseHeaders(405, -1);
            return;
        }
        byte[] bytes = body.get().getBytes(StandardCharsets.UTF_8);
        exchange.getResponseHeaders().set("Content-Type", contentType);
        exchange.sendResponseHeaders(200, head ? -1 : bytes.length);
        if (!head) {
            try (OutputStream out = exchange.getResponseBody()) {
                out.write(bytes);
            }
        }
    }

    /** The address it listens on. */
    public InetAddress address() {
        return server.getAddress().getAddress();
    }

    /** Where it serves: {@code http://ADDRESS:PORT/metrics}, an IPv6 address in brackets. */
    public String url() {
        return "http://" + hostPort(address(), port()) + PATH;
    }

    /** The port it listens on (the bound one when started with 0). */
    public int port() {
        return server.getAddress().getPort();
    }

    /** Stops at once: requests in flight are cut off. */
    @Override
    public void close() {
        server.stop(0);
        exchanges.shutdownNow();        // any exchange still reading a request: its connection is closed
    }

    private static String hostPort(InetAddress address, int port) {
        String host = address.getHostAddress();
        return (host.indexOf(':') >= 0 ? "[" + host + "]" : host) + ":" + port;
    }
}
