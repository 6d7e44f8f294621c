package io.samepage.density;

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import javax.management.JMException;
import javax.management.ObjectName;

/**
 * What a run of the density suite or the demo leaves in this process that it should not, for the
 * allocation fault scenarios: engines' frame pools not unmapped, native memory not freed (a
 * {@code PageMix}'s image bytes, an index's tables), the engines' and loaders' threads, mappings of files
 * under a directory, and files in a directory. Each is compared with a baseline taken before the run.
 *
 * <p>A frame pool is a private anonymous mapping made with {@code MAP_NORESERVE} and read-write access
 * ({@code VmFlags} {@code nr} in {@code /proc/self/smaps}; the JVM commits its own memory without it), of
 * a size the scenario knows. Native memory is what the JVM's native memory tracking counts as "Other":
 * what {@code Arena.allocate} takes (no FFM call here: those live in the linux module). Not thread safe.
 */
final class DensityLeftovers {

    /** What the JVM's native memory tracking calls the memory {@code Arena.allocate} takes. */
    private static final Pattern OTHER = Pattern.compile("Other \\(reserved=(\\d+)KB");

    private final Set<Long> poolSizes;
    private final Set<String> pools;
    private final long nativeBytes;
    private final Set<Thread> threads;

    private DensityLeftovers(Set<Long> poolSizes, Set<String> pools, long nativeBytes, Set<Thread> threads) {
        this.poolSizes = poolSizes;
        this.pools = pools;
        this.nativeBytes = nativeBytes;
        this.threads = threads;
    }

    /**
     * The frame pools of {@code poolSizes} ({@link #pools}), the native memory of arenas ({@link #nativeBytes})
     * and Samepage's threads now.
     */
    static DensityLeftovers baseline(Set<Long> poolSizes) throws IOException {
        return new DensityLeftovers(Set.copyOf(poolSizes), pools(poolSizes), nativeBytes(), samepageThreads());
    }

    /**
     * What is left since the baseline, one line each, each starting with {@code state}: {@code slackBytes}
     * of arenas' native memory may stay (a dead thread's automatic arena, until a collection frees it); a
     * pool or a thread left is always a finding. A thread that is ending is given two seconds to end, and
     * native memory above the slack as long, and collections, to come down.
     */
    List<String> left(String state, long slackBytes) throws IOException, InterruptedException {
        List<String> found = new ArrayList<>();
        Set<String> poolsNow = pools(poolSizes);
        poolsNow.removeAll(pools);
        if (!poolsNow.isEmpty()) {
            found.add(state + ", and frame pools are left mapped: " + poolsNow);
        }
        long allocated = settledNativeBytes(slackBytes);
        if (allocated - nativeBytes > slackBytes) {
            found.add(state + ", and native memory is left allocated: " + (allocated - nativeBytes) + " bytes");
        }
        List<String> names = new ArrayList<>();
        for (Thread thread : samepageThreads()) {
            if (!threads.contains(thread)) {
                thread.join(2_000);
                if (thread.isAlive()) {
                    names.add(thread.getName());
                }
            }
        }
        if (!names.isEmpty()) {
            found.add(state + ", and threads are left: " + names);
        }
        return found;
    }

    /**
     * The read-write anonymous mappings made with {@code MAP_NORESERVE} whose size is one of
     * {@code poolSizes}, by address: the frame pools of those sizes. The JVM changes a few mappings of
     * that kind of its own as it runs, of other sizes.
     */
    static Set<String> pools(Set<Long> poolSizes) throws IOException {
        Set<String> found = new HashSet<>();
        String range = null;
        long size = 0;
        for (String line : Files.readAllLines(Path.of("/proc/self/smaps"))) {
            String[] fields = line.trim().split("\\s+");
            if (fields.length >= 5 && fields[0].matches("[0-9a-f]+-[0-9a-f]+")) {
                String[] ends = fields[0].split("-");
                size = Long.parseUnsignedLong(ends[1], 16) - Long.parseUnsignedLong(ends[0], 16);
                range = fields[1].startsWith("rw") && fields.length == 5 && poolSizes.contains(size) ? fields[0] : null;
            } else if (range != null && line.startsWith("VmFlags:") && Arrays.asList(fields).contains("nr")) {
                found.add(range + " (" + size + " bytes)");
            }
        }
        return found;
    }

    /** {@link #nativeBytes}, given up to two seconds (and collections) to come within {@code slackBytes}. */
    private long settledNativeBytes(long slackBytes) throws InterruptedException {
        long mapped = nativeBytes();
        for (int i = 0; i < 40 && mapped - nativeBytes > slackBytes; i++) {
            Thread.sleep(50);
            System.gc();
            mapped = nativeBytes();
        }
        return mapped;
    }

    /**
     * Bytes of native memory the JVM made for {@code Arena.allocate} and {@code Unsafe.allocateMemory}:
     * the category "Other" of its native memory tracking, which the tests' JVM turns on.
     *
     * @throws IllegalStateException if the JVM does not track its native memory
     *                               ({@code -XX:NativeMemoryTracking=summary}, which density's pom sets)
     */
    static long nativeBytes() {
        String summary;
        try {
            summary = (String) ManagementFactory.getPlatformMBeanServer().invoke(
                    new ObjectName("com.sun.management:type=DiagnosticCommand"), "vmNativeMemory",
                    new Object[] {new String[] {"summary"}}, new String[] {String[].class.getName()});
        } catch (JMException e) {
            throw new IllegalStateException("vmNativeMemory summary", e);
        }
        Matcher other = OTHER.matcher(summary);
        if (!other.find()) {
            throw new IllegalStateException("no native memory tracking (-XX:NativeMemoryTracking=summary): " + summary);
        }
        return Long.parseLong(other.group(1)) << 10;
    }

    private static Set<Thread> samepageThreads() {
        Set<Thread> found = new HashSet<>();
        for (Thread thread : Thread.getAllStackTraces().keySet()) {
            if (thread.getName().startsWith("samepage-")) {
                found.add(thread);
            }
        }
        return found;
    }

    /** The lines of {@code /proc/self/maps} that map a file under {@code dir}. */
    static List<String> mappingsUnder(Path dir) throws IOException {
        String prefix = " " + dir.toAbsolutePath() + "/";
        return Files.readAllLines(Path.of("/proc/self/maps")).stream().filter(l -> l.contains(prefix)).toList();
    }

    /** The names of the files in {@code dir}, sorted. */
    static List<String> files(Path dir) throws IOException {
        try (Stream<Path> files = Files.list(dir)) {
            return files.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }
}
