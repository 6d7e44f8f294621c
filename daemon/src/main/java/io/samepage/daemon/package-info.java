/**
 * Samepage's daemon as a library: host mode's long-running form, like ksmd over a host's guests.
 *
 * <p>{@link io.samepage.daemon.Daemon#launch} takes a concluded {@link io.samepage.daemon.Daemon.Context}
 * (settings with their defaults and units, validated once; {@link io.samepage.daemon.DaemonConfig} reads
 * one from a {@code key=value} file), loads the file sources into one engine, estimates the live ones
 * (processes and QEMU guests, read into page digests at launch and every {@code estimateIntervalSeconds},
 * never copied into the engine), and runs Agrona agents,
 * each on its own {@code AgentRunner}: the engine's scanner, paced by {@code sleep_millisecs}; the
 * {@code Publisher}, which keeps the counters file and its heartbeat current and does nothing else, so
 * the heartbeat's age says whether the daemon is alive; and, with live sources, the {@code Refresher},
 * which estimates them again; and, with {@code ksm_policy} on or dry_run, the {@code KsmPolicyAgent}, which steps
 * host mode's {@code KsmPolicyLoop} over the kernel's KSM and restores its knobs on close. {@link io.samepage.daemon.Daemon#reload} applies a new config's live settings,
 * all or nothing. {@link io.samepage.daemon.Daemon#close} stops the agents and marks the counters file
 * closed. Waiting for a signal is the embedder's: the CLI waits on Agrona's {@code ShutdownSignalBarrier}
 * and reloads on SIGHUP.
 *
 * <p>Invariants. Launch is all or nothing: a step that fails closes what the steps before it opened, so a
 * refused launch leaves no thread, no listening port, and the counters file's path as it was, byte for
 * byte (the new file is renamed into place last). A path is claimed before anything is written there: a
 * file that is not a counters file is never replaced, and one that another daemon holds (its lock, or a
 * live heartbeat) is refused. While the daemon runs, the publisher is the counters file's one writer;
 * every reader, in any process, sees whole 64-bit values. A counter's id never changes meaning
 * ({@link io.samepage.daemon.CountersFile#COUNTER_NAMES}).
 *
 * <p>The source loading here ({@link io.samepage.daemon.SourceFile}, {@link io.samepage.daemon.ProcessSource},
 * {@link io.samepage.daemon.ProcessSources}, {@link io.samepage.daemon.PoolSize}) is also what
 * {@code samepage scan} uses, so a daemon and a scan over the same sources build the same guests and
 * estimates.
 *
 * <p>Rejected: the daemon's lifecycle inside the CLI's {@code daemon} command, as it first was. An
 * embedder (a VMM that wants the daemon's counters file and metrics beside its own work) could not start
 * or stop it without a process and a signal, and tests could not launch it twice in one JVM.
 */
package io.samepage.daemon;
