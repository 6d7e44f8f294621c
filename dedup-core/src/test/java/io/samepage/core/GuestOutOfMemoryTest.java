package io.samepage.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * A mapped guest whose tables run out of heap after its mapping was made: the mapping comes down before
 * the run of frames goes back to the pool, and where it cannot come down the run is never reused (a
 * mapping left up on a reused run would show the next guest's frames to whoever holds it).
 *
 * <p>The heap really runs out: each case runs {@link Child} in a JVM of 32 MiB whose mapping factory
 * fills the heap before it returns, so the guest's own allocations fail next; the mapping lets the heap
 * go when it is taken down. The child prints what it saw, one {@code name value} line each.
 */
class GuestOutOfMemoryTest {

    @Test
    void theMappingComesDownBeforeTheRunIsFreed() throws Exception {
        List<String> seen = run("unmaps");
        assertEquals(List.of("threw OutOfMemoryError", "unmapAllCalled true", "framesTaken 0", "guests 0",
                "sameRunAgain created"), seen);
    }

    @Test
    void aMappingThatCannotComeDownKeepsItsRunForGood() throws Exception {
        List<String> seen = run("refuses");
        assertEquals(List.of("threw OutOfMemoryError", "unmapAllCalled true",
                "framesTaken " + Child.PAGES, "guests 0",
                "sameRunAgain refused POOL_EXHAUSTED"), seen);
    }

    /**
     * The run comes off the cold list (a mapped guest made after another was destroyed, a frame taken
     * since), so it cannot be made never-used again, and the heap stays full after the mapping comes
     * down: the run still goes back to the pool. Before, its frames were freed through an array made for
     * them, and under a full heap that array could not be made: the run stayed taken for good.
     */
    @Test
    void aReusedRunGoesBackToThePoolWhileTheHeapStaysFull() throws Exception {
        List<String> seen = run("keepsHeapFull");
        assertEquals(List.of("threw OutOfMemoryError", "unmapAllCalled true", "framesTaken 0", "guests 1",
                "sameRunAgain created"), seen);
    }

    private static List<String> run(String mode) throws IOException, InterruptedException {
        String java = ProcessHandle.current().info().command().orElseThrow();
        Path errors = Files.createTempFile("guest-oom", ".err");
        try {
            Process process = new ProcessBuilder(java, "--enable-native-access=ALL-UNNAMED", "-Xmx32m",
                    "-XX:+UseSerialGC", "-cp", System.getProperty("java.class.path"), Child.class.getName(), mode)
                    .redirectError(errors.toFile())
                    .start();
            String out = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            boolean exited = process.waitFor(60, TimeUnit.SECONDS);
            if (!exited) {
                process.destroyForcibly();
            }
            String said = "; it printed:\n" + out + "and on stderr:\n" + Files.readString(errors);
            assertTrue(exited, "the child exited" + said);
            assertEquals(0, process.exitValue(), "the child's exit code" + said);
            return out.lines().toList();
        } finally {
            Files.delete(errors);
        }
    }

    /**
     * Makes one mapped guest of the whole pool whose factory leaves no heap, then reports. With {@code
     * keepsHeapFull}, the run is one a destroyed guest freed (a frame was taken after it, by a guest that
     * stays), no freed frame is kept warm, and the heap stays full to the last byte until the child
     * catches the error.
     */
    static final class Child {
        static final int PAGES = 16384;                             // 64 MiB: the guest's tables need 100s of KiB

        /** Holds the heap full from the factory until the mapping is taken down (or the child catches the error). */
        private static List<long[]> hog = new ArrayList<>();
        /** With {@code keepsHeapFull}: what fills the room {@link #hog} left, to the last few bytes. */
        private static Object[] crumbs;
        private static boolean unmapAllCalled;

        public static void main(String[] args) {
            boolean refuses = args[0].equals("refuses");
            boolean keepsHeapFull = args[0].equals("keepsHeapFull");
            EngineContext context = new EngineContext().poolBytes((PAGES + 16L) * 4096);
            if (keepsHeapFull) {
                context.warmFrames(0);
            }
            try (DedupEngine engine = DedupEngine.create(context.conclude())) {
                MergeDomain domain = engine.createDomain("d");
                if (keepsHeapFull) {
                    Guest old = engine.createGuest(domain, "old", (long) PAGES * 4096, RecordingMapping::new);
                    engine.createGuest(domain, "stays", 4096).write(0, new byte[] {1}, 0, 1);
                    old.destroy();                  // its run goes on the cold list; the frame after it stays taken
                }
                long before = engine.framesInUse();
                PageMapping hogging = new PageMapping() {
                    @Override
                    public void map(int page, int frame, boolean writable) {
                    }

                    @Override
                    public boolean writeProtect(int page) {
                        return true;
                    }

                    @Override
                    public void unprotect(int page) {
                    }

                    @Override
                    public boolean pagesWritten(long[] bitmap) {
                        return false;
                    }

                    @Override
                    public void unmapAll() {
                        if (!keepsHeapFull) {
                            hog = null;
                        }
                        unmapAllCalled = true;
                        if (refuses) {
                            throw new IllegalStateException("injected: the host kept the mapping");
                        }
                    }
                };
                String threw = "nothing";
                try {
                    engine.createGuest(domain, "vm", (long) PAGES * 4096,
                            (first, pages) -> keepsHeapFull ? fillHeapTightly(hogging) : fillHeap(hogging));
                } catch (OutOfMemoryError e) {
                    hog = null;
                    crumbs = null;
                    threw = "OutOfMemoryError";
                }
                System.out.println("threw " + threw);
                System.out.println("unmapAllCalled " + unmapAllCalled);
                System.out.println("framesTaken " + (engine.framesInUse() - before));
                System.out.println("guests " + engine.guests().size());
                String again;
                try {
                    engine.createGuest(domain, "vm", (long) PAGES * 4096, RecordingMapping::new);
                    again = "created";
                } catch (DedupException e) {
                    again = "refused " + e.kind();
                }
                System.out.println("sameRunAgain " + again);
            }
        }

        /**
         * {@link #fillHeap}, then the room it left, which may be large (the error may come from the list's
         * growth), with arrays of half the size each time one cannot be made, down to two references.
         */
        private static PageMapping fillHeapTightly(PageMapping mapping) {
            fillHeap(mapping);
            for (int size = 1 << 16; size >= 2; ) {
                try {
                    Object[] crumb = new Object[size];
                    crumb[0] = crumbs;
                    crumbs = crumb;
                } catch (OutOfMemoryError full) {
                    size /= 2;
                }
            }
            return mapping;
        }

        private static PageMapping fillHeap(PageMapping mapping) {
            try {
                while (true) {
                    hog.add(new long[1024]);
                }
            } catch (OutOfMemoryError full) {
                return mapping;         // the heap stays full: the guest's first table cannot be allocated
            }
        }
    }
}
