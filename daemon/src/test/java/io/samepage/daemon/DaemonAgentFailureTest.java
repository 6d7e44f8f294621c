package io.samepage.daemon;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.samepage.testing.ThreadFaultingHasher;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.agrona.concurrent.Agent;
import org.agrona.concurrent.AgentTerminationException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * A daemon thread that dies of an {@link Error} stops the daemon's work for good; the daemon says so once,
 * through its fatal error handler, instead of running on without it. Before {@link DaemonAgents}, a scanner
 * that met an Error ended its thread with one notice line and a stack trace, and the daemon went on
 * publishing counters that no longer moved.
 */
@Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class DaemonAgentFailureTest {

    private static final int PAGES = 64;

    @TempDir
    Path dir;

    private Daemon.Context context(List<String> notices) throws IOException {
        byte[] dump = new byte[PAGES * 4096];
        new SplittableRandom(5).nextBytes(dump);
        Path source = Files.write(dir.resolve("vm.img"), dump);
        Daemon.Context context = new Daemon.Context()
                .sources(List.of(new Source.File(source.toString())))
                .countersFile(Files.createDirectories(dir.resolve("run")).resolve("counters"))
                .publishIntervalMillis(20)
                .noticeHandler(notices::add);
        context.knobs().pagesToScan(16).sleepMillis(1);
        return context;
    }

    private static boolean threadAlive(String name) {
        return Thread.getAllStackTraces().keySet().stream().anyMatch(t -> t.isAlive() && t.getName().equals(name));
    }

    @Test
    void aScannerThatDiesOfAnErrorIsToldOnceToTheFatalErrorHandlerAndTheDaemonStillCloses() throws Exception {
        List<String> notices = new CopyOnWriteArrayList<>();
        List<DaemonException> fatal = new CopyOnWriteArrayList<>();
        CountDownLatch told = new CountDownLatch(1);
        ThreadFaultingHasher hasher = new ThreadFaultingHasher("samepage-scanner");
        Daemon.Context context = context(notices).fatalErrorHandler(e -> {
            fatal.add(e);
            told.countDown();
        });
        context.engineContext().customHasher(hasher);
        Daemon daemon = Daemon.launch(context);
        try {
            assertTrue(told.await(50, TimeUnit.SECONDS), "the fatal error handler was never told; notices: " + notices);
            DaemonException stopped = fatal.getFirst();
            assertEquals(DaemonException.Kind.FAILED, stopped.kind());
            assertTrue(stopped.getMessage().startsWith("samepage-scanner stopped on java.lang.InternalError: a fault "
                    + "occurred in an unsafe memory access operation (test)"), stopped.getMessage());
            assertTrue(stopped.getCause() instanceof InternalError, String.valueOf(stopped.getCause()));
            assertEquals(List.of("samepage-scanner: java.lang.InternalError: a fault occurred in an unsafe memory "
                    + "access operation (test)"), notices, "the error handler heard of the error itself first");
            while (threadAlive("samepage-scanner")) {
                Thread.sleep(5);        // the runner rethrows the error after telling it: the thread ends
            }
            assertTrue(threadAlive("samepage-daemon-publisher"), "only the scanner's thread ended");
        } finally {
            daemon.close();
        }
        assertEquals(1, fatal.size(), "told once");
        assertFalse(threadAlive("samepage-daemon-publisher"));
        assertFalse(CountersFileReader.read(dir.resolve("run").resolve("counters")).running(), "closed as usual");
    }

    @Test
    void byDefaultTheFatalErrorIsOneNotice() throws Exception {
        List<String> notices = new CopyOnWriteArrayList<>();
        ThreadFaultingHasher hasher = new ThreadFaultingHasher("samepage-scanner");
        Daemon.Context context = context(notices);
        context.engineContext().customHasher(hasher);
        try (Daemon _ = Daemon.launch(context)) {
            while (notices.size() < 2) {
                Thread.sleep(5);
            }
        }
        assertEquals(2, notices.size(), String.valueOf(notices));
        assertTrue(notices.get(1).startsWith("samepage-scanner stopped on java.lang.InternalError: "), notices.get(1));
        assertTrue(notices.get(1).endsWith("; the daemon no longer does that thread's work: restart it"), notices.get(1));
    }

    /** An agent that throws {@code thrown} on its first {@code doWork}, then counts its calls. */
    private static Agent throwingOnce(String role, RuntimeException runtime, Error error, AtomicInteger calls) {
        return new Agent() {
            @Override
            public int doWork() {
                if (calls.getAndIncrement() == 0) {
                    if (error != null) {
                        throw error;
                    }
                    throw runtime;
                }
                return 0;
            }

            @Override
            public String roleName() {
                return role;
            }
        };
    }

    @Test
    void anExceptionIsToldAndTheAgentGoesOnOnlyTheFirstErrorIsFatal() throws Exception {
        List<Throwable> errors = new CopyOnWriteArrayList<>();
        List<DaemonException> fatal = new CopyOnWriteArrayList<>();
        AtomicInteger goesOn = new AtomicInteger();
        AtomicInteger dies = new AtomicInteger();
        AtomicInteger diesToo = new AtomicInteger();
        Error first = new OutOfMemoryError("Java heap space (test)");
        Error second = new StackOverflowError("test");
        DaemonAgents agents = new DaemonAgents(errors::add, fatal::add);
        try {
            agents.start(throwingOnce("test-goes-on", new IllegalStateException("refused (test)"), null, goesOn), 1);
            while (goesOn.get() < 3) {
                Thread.sleep(1);        // called again after it threw
            }
            assertNull(agents.failure(), "an exception is not fatal");
            assertEquals(List.of(), fatal);
            agents.start(throwingOnce("test-dies", null, first, dies), 1);
            while (threadAlive("test-dies")) {
                Thread.sleep(1);
            }
            agents.start(throwingOnce("test-dies-too", null, second, diesToo), 1);
            while (threadAlive("test-dies-too")) {
                Thread.sleep(1);
            }
            assertEquals(1, dies.get(), "its thread ended with the error");
            assertSame(first, agents.failure().getCause());
            assertEquals(1, fatal.size(), "the second error is told to the error handler only: " + fatal);
            assertSame(agents.failure(), fatal.getFirst());
            assertEquals("test-dies stopped on java.lang.OutOfMemoryError: Java heap space (test); the daemon no longer "
                    + "does that thread's work: restart it", fatal.getFirst().getMessage());
            List<Throwable> told = new ArrayList<>(errors);
            assertEquals(3, told.size(), String.valueOf(told));
            assertSame(first, told.get(1));
            assertSame(second, told.get(2));
            assertTrue(threadAlive("test-goes-on"));
        } finally {
            agents.close();
        }
        assertFalse(threadAlive("test-goes-on"), "close stops the agents that still run");
    }

    /** An agent named {@code role} that ends its thread as {@code how} says, counting its doWork calls in {@code calls}. */
    private static Agent endingAs(String how, String role, AtomicInteger calls) {
        return new Agent() {
            @Override
            public void onStart() {
                if (how.equals("onStart throws")) {
                    throw new IllegalStateException("cannot start (test)");
                }
            }

            @Override
            public int doWork() throws Exception {
                calls.incrementAndGet();
                switch (how) {
                    case "asks to end" -> throw new AgentTerminationException("done (test)", true);
                    case "is interrupted" -> throw new InterruptedException("test");
                    case "handler throws" -> throw new IllegalArgumentException("a refusal (test)");
                    default -> {
                        return 0;
                    }
                }
            }

            @Override
            public String roleName() {
                return role;
            }
        };
    }

    /**
     * Agrona ends an agent's thread in other ways than an Error, and did so without the fatal error handler
     * hearing: after {@code onStart} threw (one notice, then the daemon ran on without the agent), or with
     * nothing told at all (an expected {@code AgentTerminationException}, an {@code InterruptedException}, an
     * error handler that threw, whose exception the thread's handler dropped). Each is a failure now.
     */
    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
        "onStart throws | test-start | test-start stopped after java.lang.IllegalStateException: cannot start (test)",
        "asks to end    | test-end   | test-end stopped (its agent ended without an error: an interrupt, or it asked to end)",
        "is interrupted | test-intr  | test-intr stopped (its agent ended without an error: an interrupt, or it asked to end)",
        "handler throws | test-hand  | test-hand stopped on java.lang.IllegalStateException: the handler broke (test)",
    })
    void anAgentWhoseThreadEndsAnyOtherWayIsToldToTheFatalErrorHandlerToo(String how, String role, String expected)
            throws Exception {
        List<Throwable> errors = new CopyOnWriteArrayList<>();
        List<DaemonException> fatal = new CopyOnWriteArrayList<>();
        DaemonAgents agents = new DaemonAgents(e -> {
            errors.add(e);
            if (how.equals("handler throws")) {
                throw new IllegalStateException("the handler broke (test)");
            }
        }, fatal::add);
        AtomicInteger calls = new AtomicInteger();
        try {
            agents.start(endingAs(how, role, calls), 1);
            while (threadAlive(role)) {
                Thread.sleep(1);        // each of these ends the runner's thread
            }
            assertEquals(1, fatal.size(), how + ": the fatal error handler heard " + fatal + "; the error handler "
                    + errors + "; doWork was called " + calls.get() + " times");
            assertSame(agents.failure(), fatal.getFirst());
            assertEquals(DaemonException.Kind.FAILED, fatal.getFirst().kind());
            assertEquals(expected + "; the daemon no longer does that thread's work: restart it",
                    fatal.getFirst().getMessage());
        } finally {
            agents.close();
        }
        assertEquals(1, fatal.size(), "told once; close tells nothing more");
    }

    @Test
    void anAgentStoppedByCloseIsNoFailure() {
        List<DaemonException> fatal = new CopyOnWriteArrayList<>();
        DaemonAgents agents = new DaemonAgents(e -> { }, fatal::add);
        agents.start(endingAs("runs", "test-runs", new AtomicInteger()), 1);
        assertTrue(threadAlive("test-runs"));
        agents.close();
        assertFalse(threadAlive("test-runs"));
        assertNull(agents.failure());
        assertEquals(List.of(), fatal);
    }
}
