/**
 * The daemon as a library: {@code Daemon.launch(Context)} runs the engine over configured sources,
 * publishes the KSM counters to a counters file (Agrona's {@code CountersManager}) and, if asked, on
 * a loopback {@code /metrics} endpoint; {@code close()} stops it all. Agrona's buffers need
 * {@code --add-exports java.base/jdk.internal.misc=org.agrona} on the module path
 * ({@code =ALL-UNNAMED} on the class path; see docs/daemon.md).
 */
module io.samepage.daemon {
    requires transitive io.samepage.core;
    requires transitive io.samepage.host;
    requires jdk.httpserver;
    requires com.fasterxml.jackson.databind; // /sketches
    requires io.samepage.linux;
    requires io.prometheus.metrics.core; // automatic modules (Automatic-Module-Name), as are the two below
    requires io.prometheus.metrics.model;
    requires io.prometheus.writer.text; // prometheus-metrics-exposition-textformats

    exports io.samepage.daemon;
}
