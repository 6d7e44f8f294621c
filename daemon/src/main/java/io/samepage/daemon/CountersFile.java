package io.samepage.daemon;

import io.samepage.daemon.DaemonException.Kind;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;

/**
 * The daemon's counters file, read by {@code samepage stat} from another process like AeronStat reads
 * Aeron's CnC file. One memory-mapped file of {@link #FILE_BYTES} bytes, little-endian, 8-byte
 * aligned fields:
 *
 * <pre>
 * offset  size  field
 *      0     4  magic             0x4E435053 ("SPCN" as bytes)
 *      4     4  layout version    {@link #LAYOUT_VERSION}; 0 while the file is being initialised. Written
 *                                 last (after a release fence) when the file is created, so a reader that
 *                                 sees the version sees every other field initialised.
 *      8     8  pid               the daemon's process id
 *     16     8  start time        the daemon's start, epoch milliseconds
 *     24     8  state             {@link #STATE_RUNNING} (1) or {@link #STATE_CLOSED} (2)
 *     32     8  heartbeat         epoch milliseconds of the last update (at least once a second)
 *     40     4  slot count        {@link #SLOTS}
 *     44     4  reserved          0
 *     48  8*64  counter slots     slot i at 48 + 8*i holds the signed 64-bit value of counter id i
 * </pre>
 *
 * <p>Counter ids are {@link #COUNTER_NAMES}' indexes. An id never changes meaning: new counters take
 * new ids, a retired id stays reserved, and ids past the list read 0.
 *
 * <p>Thread safety: single writer (the daemon); safe for concurrent readers in any process. A reader
 * may see a counter one update older than its neighbour, never a torn 64-bit value.
 */
public final class CountersFile implements AutoCloseable {

    public static final int MAGIC = 0x4E435053;
    public static final int LAYOUT_VERSION = 1;
    public static final long STATE_RUNNING = 1;
    public static final long STATE_CLOSED = 2;
    public static final int SLOTS = 64;
    public static final int FILE_BYTES = 48 + 8 * SLOTS;

    /** Counter id -> name: the one place ids are defined. Append only. */
    public static final List<String> COUNTER_NAMES = List.of(
            "pages_shared",        // 0
            "pages_sharing",       // 1
            "pages_unshared",      // 2
            "pages_volatile",      // 3
            "full_scans",          // 4
            "pages_scanned",       // 5
            "pages_skipped",       // 6
            "ksm_zero_pages",      // 7
            "stable_node_chains",  // 8
            "stable_node_dups",    // 9
            "general_profit",      // 10
            "pages_total",         // 11
            "metadata_bytes",      // 12
            "frames_in_use",       // 13
            "guests");             // 14

    private static final int OFFSET_MAGIC = 0;
    private static final int OFFSET_VERSION = 4;
    private static final int OFFSET_PID = 8;
    private static final int OFFSET_START = 16;
    private static final int OFFSET_STATE = 24;
    private static final int OFFSET_HEARTBEAT = 32;
    private static final int OFFSET_SLOT_COUNT = 40;
    private static final int OFFSET_SLOTS = 48;

    private static final ValueLayout.OfInt INT = ValueLayout.JAVA_INT.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong LONG = ValueLayout.JAVA_LONG.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final VarHandle LONG_HANDLE = LONG.varHandle();

    /** What a reader saw: the header and every counter, by name in id order. */
    public record Snapshot(long pid, long startMillis, boolean running, long heartbeatMillis, long[] values) {
        public long value(String name) {
            int id = COUNTER_NAMES.indexOf(name);
            return id < 0 ? 0 : values[id];
        }
    }

    private final Arena arena;
    private final MemorySegment segment;

    private CountersFile(Arena arena, MemorySegment segment) {
        this.arena = arena;
        this.segment = segment;
    }

    /**
     * Where the counters file lives when the config does not say: {@code /run/samepage/counters} if
     * {@code /run/samepage} exists or can be created, else {@code samepage/counters} under
     * {@code java.io.tmpdir}. {@code stat} looks where the daemon would.
     */
    public static Path defaultPath() {
        Path run = Path.of("/run/samepage");
        if (Files.isDirectory(run) ? Files.isWritable(run) || Files.exists(run.resolve("counters"))
                : Files.isWritable(run.getParent())) {
            return run.resolve("counters");
        }
        return Path.of(System.getProperty("java.io.tmpdir"), "samepage", "counters");
    }

    /**
     * Creates (or replaces) the file, initialises the header with state running and the version word
     * last, and keeps it mapped for {@link #update}.
     */
    public static CountersFile create(Path path, long pid, long startMillis) {
        Arena arena = Arena.ofShared();
        try {
            Path parent = path.toAbsolutePath().getParent();
            if (parent != null) {
                Files.createDirectories(parent);
            }
            MemorySegment segment;
            try (FileChannel channel = FileChannel.open(path, StandardOpenOption.CREATE, StandardOpenOption.READ,
                    StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING)) {
                segment = channel.map(FileChannel.MapMode.READ_WRITE, 0, FILE_BYTES, arena);
            }
            segment.fill((byte) 0);
            segment.set(INT, OFFSET_MAGIC, MAGIC);
            segment.set(LONG, OFFSET_PID, pid);
            segment.set(LONG, OFFSET_START, startMillis);
            segment.set(LONG, OFFSET_STATE, STATE_RUNNING);
            segment.set(LONG, OFFSET_HEARTBEAT, startMillis);
            segment.set(INT, OFFSET_SLOT_COUNT, SLOTS);
            VarHandle.releaseFence();
            segment.set(INT, OFFSET_VERSION, LAYOUT_VERSION);
            return new CountersFile(arena, segment);
        } catch (IOException | RuntimeException e) {
            arena.close();
            throw new DaemonException(Kind.COUNTERS_FILE, "counters file " + path + ": cannot be created (" + e + ")", e);
        }
    }

    /** Publishes {@code values} (by id; at most {@link #SLOTS}) and the heartbeat. */
    public void update(long[] values, long heartbeatMillis) {
        for (int id = 0; id < values.length; id++) {
            LONG_HANDLE.setRelease(segment, (long) OFFSET_SLOTS + 8L * id, values[id]);
        }
        LONG_HANDLE.setRelease(segment, (long) OFFSET_HEARTBEAT, heartbeatMillis);
    }

    /** Marks the daemon closed (the counters keep their last values) and unmaps the file. */
    @Override
    public void close() {
        LONG_HANDLE.setRelease(segment, (long) OFFSET_HEARTBEAT, System.currentTimeMillis());
        LONG_HANDLE.setRelease(segment, (long) OFFSET_STATE, STATE_CLOSED);
        segment.force();
        arena.close();
    }

    /**
     * Reads the file once.
     *
     * @throws DaemonException if it is missing, unreadable, truncated, foreign, of another layout
     *                         version, or not initialised yet
     */
    public static Snapshot read(Path path) {
        try (Arena arena = Arena.ofConfined();
                FileChannel channel = FileChannel.open(path, StandardOpenOption.READ)) {
            long size = channel.size();
            if (size < FILE_BYTES) {
                throw new DaemonException(Kind.COUNTERS_FILE, path + ": truncated: " + size + " bytes, a counters file has " + FILE_BYTES);
            }
            MemorySegment segment = channel.map(FileChannel.MapMode.READ_ONLY, 0, FILE_BYTES, arena);
            if (segment.get(INT, OFFSET_MAGIC) != MAGIC) {
                throw new DaemonException(Kind.COUNTERS_FILE, path + ": not a samepage counters file (wrong magic)");
            }
            int version = segment.get(INT, OFFSET_VERSION);
            VarHandle.acquireFence();
            if (version == 0) {
                throw new DaemonException(Kind.COUNTERS_FILE, path + ": not initialised yet (the daemon is starting)");
            }
            if (version != LAYOUT_VERSION) {
                throw new DaemonException(Kind.COUNTERS_FILE, path + ": counters file layout version " + version
                        + ", this samepage reads version " + LAYOUT_VERSION);
            }
            int slots = segment.get(INT, OFFSET_SLOT_COUNT);
            if (slots != SLOTS) {
                throw new DaemonException(Kind.COUNTERS_FILE, path + ": corrupt: " + slots + " counter slots, layout version "
                        + LAYOUT_VERSION + " has " + SLOTS);
            }
            long[] values = new long[COUNTER_NAMES.size()];
            for (int id = 0; id < values.length; id++) {
                values[id] = (long) LONG_HANDLE.getAcquire(segment, (long) OFFSET_SLOTS + 8L * id);
            }
            long state = (long) LONG_HANDLE.getAcquire(segment, (long) OFFSET_STATE);
            if (state != STATE_RUNNING && state != STATE_CLOSED) {
                throw new DaemonException(Kind.COUNTERS_FILE, path + ": corrupt: state word " + state);
            }
            return new Snapshot(segment.get(LONG, OFFSET_PID), segment.get(LONG, OFFSET_START),
                    state == STATE_RUNNING, (long) LONG_HANDLE.getAcquire(segment, (long) OFFSET_HEARTBEAT), values);
        } catch (NoSuchFileException e) {
            throw new DaemonException(Kind.COUNTERS_FILE, path + ": no counters file (is the daemon running? give --counters-file)");
        } catch (IOException e) {
            throw new DaemonException(Kind.COUNTERS_FILE, path + ": cannot be read: " + IoErrors.reason(e), e);
        }
    }
}
