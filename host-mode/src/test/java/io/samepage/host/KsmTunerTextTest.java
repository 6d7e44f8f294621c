package io.samepage.host;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.List;
import org.junit.jupiter.api.Test;

/** {@link KsmTunerText}: what {@code samepage ksm tune} prints, line by line. */
class KsmTunerTextTest {

    @Test
    void oneLinePerDecision() {
        MergeableProcesses.Found none = new MergeableProcesses.Found(List.of(), 80, 0, false);
        KsmTuner.Plan stop = new KsmTuner.Plan(false, "no process has mergeable memory, so ksmd has nothing to scan",
                List.of(new KsmTuner.Step(KsmKnob.RUN, "1", "0", "nothing to merge: stop ksmd")));
        assertEquals(List.of("mergeable: none of 80 processes has mergeable memory",
                "decision: stop: no process has mergeable memory, so ksmd has nothing to scan",
                "run: 1 -> 0: nothing to merge: stop ksmd", "written: run: 1 -> 0"),
                KsmTunerText.lines(new KsmTuner.Report(false, none, MergeableEstimate.Potential.none(),
                        new HostMemory(1L << 34, 1L << 33), stop, List.of(new KnobChange(KsmKnob.RUN, "1", "0")))));

        MemoryRegion region = new MemoryRegion(1L << 30, (1L << 30) + (128L << 20), "rw-p", 0, "00:00", 0, "");
        MergeableProcesses.Found one = new MergeableProcesses.Found(List.of(new MergeableProcesses.Process(4242,
                "qemu-system-x86", List.of(region), 128L << 20, 0)), 80, 1, false);
        KsmTuner.Plan merge = new KsmTuner.Plan(true, "KSM would save 50.0% of the pages read (at least 5.0%), "
                + "about 64.00 MiB (at least 64.00 MiB)", List.of(
                new KsmTuner.Step(KsmKnob.ADVISOR_MODE, "none", "scan-time", "the advisor steers"),
                new KsmTuner.Step(KsmKnob.RUN, "1", "1", "ksmd runs already")));
        assertEquals(List.of("mergeable: 1 of 80 processes, 1 could not be read: 4242 qemu-system-x86 (128.0 MiB); "
                        + "128.0 MiB resident in mergeable regions",
                "estimate: read 32768 of 32768 resident mergeable pages (128.0 MiB) once, a digest each, 0 all-zero; "
                        + "KSM would reach pages_shared 1, pages_sharing 16384, ksm_zero_pages 0 (max_page_sharing "
                        + "256, use_zero_pages 0); 50.0% saved, about 64.00 MiB",
                "decision: merge: " + merge.reason(),
                "advisor_mode: none -> scan-time: the advisor steers",
                "run: 1 (kept): ksmd runs already",
                "dry run: nothing written"),
                KsmTunerText.lines(new KsmTuner.Report(true, one,
                        new MergeableEstimate.Potential(32768, 32768, 0, 1, 16384, 0, 0, 0, 256, false),
                        new HostMemory(1L << 34, 1L << 33),
                        merge, List.of())));
    }

    /**
     * A process's name is its own to set (prctl PR_SET_NAME): 'samepage ksm tune' printed it as it was,
     * escapes and line breaks and all.
     */
    @Test
    void processNamesAreQuotedOnOnePrintableLine() {
        MemoryRegion region = new MemoryRegion(1L << 30, (1L << 30) + (1L << 20), "rw-p", 0, "00:00", 0, "");
        MergeableProcesses.Found found = new MergeableProcesses.Found(List.of(new MergeableProcesses.Process(4242,
                "\u001b[31mEVIL\nX", List.of(region), 1L << 20, 0)), 80, 0, false);
        List<String> lines = KsmTunerText.lines(new KsmTuner.Report(true, found, MergeableEstimate.Potential.none(),
                new HostMemory(1L << 34, 1L << 33), new KsmTuner.Plan(false, "too little to save", List.of()),
                List.of()));
        assertEquals("mergeable: 1 of 80 processes: 4242 \\x1b[31mEVIL\\x0aX (1.0 MiB); 1.0 MiB resident in "
                + "mergeable regions", lines.getFirst());
        for (String line : lines) {
            assertEquals(-1, line.chars().filter(Character::isISOControl).findFirst().orElse(-1), line);
        }
    }
}
