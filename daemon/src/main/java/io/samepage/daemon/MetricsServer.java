package io.samepage.daemon;

import com.sun.net.httpserver.HttpServer;
import io.samepage.daemon.DaemonException.Kind;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.function.Supplier;

/**
 * Serves {@code GET /metrics} on {@code 127.0.0.1:port} in Prometheus' text exposition format 0.0.4,
 * with the JDK's HTTP server: loopback only, one thread, no dependency. (Prometheus' own
 * {@code prometheus-metrics-exporter-httpserver} 1.10.0 does not resolve from Maven Central: its
 * dependency {@code prometheus-metrics-annotations:jar:1.10.0} is absent.) What it serves comes from
 * {@code body}, called once per request.
 *
 * <p>Thread safety: {@code body} is called on the server's thread.
 */
public final class MetricsServer implements AutoCloseable {

    static final String CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

    private final HttpServer server;

    private MetricsServer(HttpServer server) {
        this.server = server;
    }

    /** Binds {@code 127.0.0.1:port} and starts serving. @throws DaemonException if the port cannot be bound */
    public static MetricsServer start(int port, Supplier<String> body) {
        HttpServer server;
        try {
            server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), port), 8);
        } catch (IOException e) {
            throw new DaemonException(Kind.METRICS_PORT, "metrics_port " + port + ": cannot listen on 127.0.0.1:" + port
                    + " (" + e.getMessage() + ")", e);
        }
        server.createContext("/metrics", exchange -> {
            try (exchange) {
                if (!exchange.getRequestMethod().equals("GET") && !exchange.getRequestMethod().equals("HEAD")) {
                    exchange.sendResponseHeaders(405, -1);
                    return;
                }
                byte[] bytes = body.get().getBytes(StandardCharsets.UTF_8);
                exchange.getResponseHeaders().set("Content-Type", CONTENT_TYPE);
                boolean head = exchange.getRequestMethod().equals("HEAD");
                exchange.sendResponseHeaders(200, head ? -1 : bytes.length);
                if (!head) {
                    try (OutputStream out = exchange.getResponseBody()) {
                        out.write(bytes);
                    }
                }
            }
        });
        server.start();
        return new MetricsServer(server);
    }

    /** The port it listens on (the bound one when started with 0). */
    public int port() {
        return server.getAddress().getPort();
    }

    /** Stops at once: requests in flight are cut off. */
    @Override
    public void close() {
        server.stop(0);
    }

    /** Appends one metric family with its HELP and TYPE lines. */
    public static void family(StringBuilder out, String name, String type, String help) {
        out.append("# HELP ").append(name).append(' ').append(help).append('\n');
        out.append("# TYPE ").append(name).append(' ').append(type).append('\n');
    }

    /** Escapes a label value: backslash, double quote and newline. */
    public static String label(String value) {
        return value.replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n");
    }
}
