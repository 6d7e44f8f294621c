package io.samepage.host;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.samepage.testing.HostKsmLock;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * {@link KernelKsm} on this machine's kernel KSM. A test that writes a knob holds the host-wide lock
 * ({@link HostKsmLock}: another build's test may be writing the same knob meanwhile) and restores what it
 * changed, in a finally. Without {@code /sys/kernel/mm/ksm} these tests fail, saying so: this project's
 * machines have KSM.
 */
class KernelKsmSystemTest {

    private static final KernelKsm KSM = KernelKsm.system();

    @BeforeAll
    static void requireKernelKsm() {
        assertTrue(KSM.present(), "these tests need kernel KSM at " + KernelKsm.SYSFS_DIRECTORY
                + ", which this machine lacks (a kernel without CONFIG_KSM, or no sysfs): run them on a KSM host");
    }

    @Test
    void statusHasEveryFileOfTheKsmDirectory() throws IOException {
        TreeSet<String> files = new TreeSet<>();
        try (Stream<Path> listing = Files.list(KernelKsm.SYSFS_DIRECTORY)) {
            listing.forEach(p -> files.add(p.getFileName().toString()));
        }
        KsmStatus status = KSM.status();
        assertEquals(files, new TreeSet<>(status.values().keySet()));
        for (String counter : KsmStatus.COUNTERS) {
            if (status.value(counter).isPresent()) {
                assertTrue(status.number(counter).isPresent(), counter + " = " + status.value(counter));
            }
        }
        assertTrue(List.of("0", "1", "2").contains(status.value(KsmKnob.RUN).orElseThrow()));
        if (status.hasAdvisor()) {
            assertTrue(List.of("none", "scan-time").contains(status.value(KsmKnob.ADVISOR_MODE).orElseThrow()));
        }
    }

    @Test
    void sleepMillisecsGoesUpByOneAndBack() throws Exception {
        HostKsmLock.run(KernelKsmSystemTest::sleepMillisecsUpByOneAndBack);
    }

    private static void sleepMillisecsUpByOneAndBack() {
        String original = KSM.status().value(KsmKnob.SLEEP_MILLISECS).orElseThrow();
        String next = Long.toString(Long.parseLong(original) + 1);
        try {
            List<KnobChange> changes = KSM.set(Map.of("sleep_millisecs", next));
            assertEquals(List.of(new KnobChange(KsmKnob.SLEEP_MILLISECS, original, next)), changes);
            assertEquals(next, KSM.status().value(KsmKnob.SLEEP_MILLISECS).orElseThrow());
        } finally {
            KSM.set(Map.of("sleep_millisecs", original));
        }
        assertEquals(original, KSM.status().value(KsmKnob.SLEEP_MILLISECS).orElseThrow());
    }

    /**
     * A value Samepage validated but the kernel refuses, as when another writer changes KSM's state in
     * between: the file access writes -1 where the current value was validated, and the kernel's EINVAL
     * comes back naming the knob and the value. A refused write changes nothing; the finally is a guard.
     */
    @Test
    void theKernelsOwnRefusalNamesTheKnobAndValue() throws Exception {
        HostKsmLock.run(KernelKsmSystemTest::aRefusalNamesTheKnobAndValue);
    }

    private static void aRefusalNamesTheKnobAndValue() {
        String original = KSM.status().value(KsmKnob.SLEEP_MILLISECS).orElseThrow();
        KsmFiles raced = new KsmFiles() {
            @Override
            public String read(Path file) throws IOException {
                return DIRECT.read(file);
            }

            @Override
            public void write(Path file, String value) throws IOException {
                DIRECT.write(file, "-1");
            }

            @Override
            public boolean writable(Path file) {
                return DIRECT.writable(file);
            }
        };
        KernelKsm ksm = new KernelKsm(KernelKsm.SYSFS_DIRECTORY, KernelKsm.PROC_DIRECTORY, raced);
        try {
            KernelKsmException e = assertThrows(KernelKsmException.class,
                    () -> ksm.set(Map.of("sleep_millisecs", original)));
            assertEquals(KernelKsmException.Kind.REFUSED, e.kind());
            assertEquals("sleep_millisecs=" + original + ": the kernel refused it (Invalid argument)", e.getMessage());
            assertEquals(List.of(), e.written());
        } finally {
            KSM.set(Map.of("sleep_millisecs", original));
        }
        assertEquals(original, KSM.status().value(KsmKnob.SLEEP_MILLISECS).orElseThrow());
    }

    @Test
    void thisProcessHasAKsmStatAndAMissingProcessHasNone() {
        KsmStat own = KSM.ksmStat(ProcessHandle.current().pid());
        assertTrue(own.present(), own.absentReason().orElse(""));
        assertTrue(own.rmapItems().isPresent(), own.values().toString());
        assertTrue(own.mergingPages().isPresent(), own.values().toString());
        KsmStat gone = KSM.ksmStat(Integer.MAX_VALUE);
        assertFalse(gone.present());
        assertEquals("no process " + Integer.MAX_VALUE + " in /proc", gone.absentReason().orElseThrow());
    }
}
