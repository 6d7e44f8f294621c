package io.samepage.daemon;

import io.samepage.daemon.DaemonException.Kind;
import io.samepage.linux.Renames;
import java.io.IOException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.List;
import java.util.function.Consumer;
import org.agrona.IoUtil;
import org.agrona.concurrent.status.CountersManager;
import org.agrona.concurrent.status.CountersReader;

/**
 * The daemon's counters file, read by {@code samepage stat} from another process
 * ({@link CountersFileReader}) as AeronStat reads Aeron's CnC file. One memory-mapped file of
 * {@link #FILE_BYTES} bytes: a header, then the two buffers of an Agrona {@link CountersManager}, in
 * the byte order Agrona writes (the machine's: little-endian on x86-64 and aarch64).
 *
 * <pre>
 * offset  size  field
 *      0     4  magic             0x4E435053 ("SPCN" as bytes)
 *      4     4  layout version    {@link #LAYOUT_VERSION}; written last, with release semantics, so a reader
 *                                 that sees it sees every other field initialised. Version 1 was a
 *                                 fixed array of 64 slots, without Agrona; a reader refuses it by name.
 *      8     8  pid               the daemon's process id
 *     16     8  start time        the daemon's start, epoch milliseconds
 *     24     8  state             {@link #STATE_RUNNING} (1) or {@link #STATE_CLOSED} (2)
 *     32     8  heartbeat         epoch milliseconds of the last update
 *     40     4  metadata length   {@link #METADATA_BYTES}
 *     44     4  values length     {@link #VALUES_BYTES}
 *     48    80  reserved          0
 *    128     M  counters metadata Agrona's layout ({@link CountersReader}): one 512-byte record per
 *                                 counter id: state, type id, free-for-reuse deadline, key, label
 *  128+M     V  counters values   one 128-byte record per counter id, its signed 64-bit value first
 * </pre>
 *
 * <p>{@link #MAX_COUNTERS} counter ids fit. The counters are allocated in {@link #COUNTER_NAMES}' order,
 * each with its name as label and its index there as type id: the type id is what a counter means. An id
 * never changes meaning: new counters take new ids, a retired id stays reserved, and a counter a reader
 * does not find reads 0.
 *
 * <p>The file is written whole under a temporary name in the same directory ({@code .NAME.PID.new}),
 * then, once the daemon is up, put into place: a reader finds at the path either the old file or the
 * new one, complete, and a launch that fails leaves the old one as it was. Before anything is written
 * the path is claimed ({@link CountersFileClaim}): a file that is not a counters file is never replaced,
 * and a path another daemon holds is refused. The claim looks at the path long before the file is put
 * there (sources load in between), so {@link #publish} does not trust that look: it swaps the new file
 * with what is at the path in one step ({@link Renames#exchange}), looks at what it swapped out, now
 * under the temporary name, and swaps it back, unchanged, if it is not a counters file; onto a path
 * with nothing there it links the new file, which fails rather than replaces if a file appears.
 *
 * <p>A counters file deleted while the daemon runs (a temporary-files cleaner, an operator) is written
 * anew at the next {@link #update}, whole and linked in the same way, and told on one line; a path that
 * holds another file then is left alone, told once, until it is free again.
 *
 * <p>Thread safety: single writer (the daemon's publisher); safe for concurrent readers in any process.
 * A reader may see a counter one update older than its neighbour, never a torn 64-bit value.
 */
public final class CountersFile implements AutoCloseable {

    public static final int MAGIC = 0x4E435053;
    public static final int LAYOUT_VERSION = 2;
    public static final long STATE_RUNNING = 1;
    public static final long STATE_CLOSED = 2;
    public static final int MAX_COUNTERS = 64;
    public static final int HEADER_BYTES = 128;
    public static final int METADATA_BYTES = MAX_COUNTERS * CountersReader.METADATA_LENGTH;
    public static final int VALUES_BYTES = MAX_COUNTERS * CountersReader.COUNTER_LENGTH;
    public static final int FILE_BYTES = HEADER_BYTES + METADATA_BYTES + VALUES_BYTES;

    /**
     * A running daemon's heartbeat is at most this old (it beats at least every publish interval, 250 ms
     * by default; the live sources are re-read on a thread of their own): an older one means the daemon
     * is gone or hung. Aeron's driver timeout is the model, and its 10 s.
     */
    public static final long LIVENESS_TIMEOUT_MILLIS = 10_000;

    /** Counter id (and type id) -> name, which is also its label: the one place ids are defined. Append only. */
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
            "guests",              // 14
            "frame_release_failures", // 15: EngineCounters.frameReleaseFailures
            "frames_withheld");    // 16: EngineCounters.framesWithheld

    static final int OFFSET_MAGIC = 0;
    static final int OFFSET_VERSION = 4;
    static final int OFFSET_PID = 8;
    static final int OFFSET_START = 16;
    static final int OFFSET_STATE = 24;
    static final int OFFSET_HEARTBEAT = 32;
    static final int OFFSET_METADATA_LENGTH = 40;
    static final int OFFSET_VALUES_LENGTH = 44;

    /** Attempts of {@link #publish} to put the file in place while the path keeps changing under it. */
    private static final int PUBLISH_ATTEMPTS = 3;

    private final Path path;
    private final Path absolute;
    private final Path temporary;
    private final CountersFileClaim claim;
    /**
     * {@code NOFOLLOW_LINKS} as the varargs array, made once: a close that deletes the temporary file must
     * not allocate one (it runs after an OutOfMemoryError, on a heap that may still be full). Never changed.
     */
    private static final LinkOption[] NO_FOLLOW = {LinkOption.NOFOLLOW_LINKS};

    private final long pid;
    private final long startMillis;
    private final Consumer<String> notices;
    /** The file written: the one prepared, or a new one if the path's was deleted under the daemon. */
    private CountersFileMapping mapping;
    /** The last thing told about the path, so that a state that lasts is told once. */
    private String told;
    /** Set if a file that an exchange took from the path could not be put back: it is under the temporary name. */
    private boolean stranded;
    private boolean published;
    private boolean closed;

    private CountersFile(Path path, Path absolute, Path temporary, CountersFileClaim claim, long pid, long startMillis,
            Consumer<String> notices, CountersFileMapping mapping) {
        this.path = path;
        this.absolute = absolute;
        this.temporary = temporary;
        this.claim = claim;
        this.pid = pid;
        this.startMillis = startMillis;
        this.notices = notices;
        this.mapping = mapping;
    }

    /**
     * Where the counters file lives when the config does not say: {@code /run/samepage/counters} if
     * {@code /run/samepage} exists or can be created, else {@code samepage/counters} under
     * {@code java.io.tmpdir}. {@code stat} looks where the daemon would. The daemon creates this
     * default's directory; any other path's directory must exist.
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
     * Creates the file and puts it into place at once: {@link #prepare} then {@link #publish}, with the
     * directory required to exist. A file deleted under it is written anew without a word.
     *
     * @throws DaemonException as {@link #prepare}
     */
    public static CountersFile create(Path path, long pid, long startMillis) {
        CountersFile file = prepare(path, false, pid, startMillis, _ -> { });
        try {
            file.publish();
            return file;
        } catch (RuntimeException | Error e) {
            file.close();
            throw e;
        }
    }

    /**
     * Claims {@code path} ({@link CountersFileClaim}: no foreign file is replaced, no other daemon's file is
     * taken, a missing directory is created only if {@code createDirectory}), then writes the new file
     * whole under a temporary name beside it, state running, every counter 0, the version word last, and
     * keeps it mapped for {@link #update}. Nothing at {@code path} changes until {@link #publish}; a
     * {@link #close} before it deletes the temporary file, so a launch that fails leaves the old file as it
     * was, byte for byte.
     *
     * @param notices told, one line each, of the path's file deleted or replaced under the daemon, on the
     *                thread that calls {@link #update}
     * @throws DaemonException {@link Kind#COUNTERS_FILE} if it cannot be claimed or created; then nothing
     *                         at {@code path} has changed
     */
    static CountersFile prepare(Path path, boolean createDirectory, long pid, long startMillis,
            Consumer<String> notices) {
        Path absolute = path.toAbsolutePath();
        Path temporary = absolute.resolveSibling("." + absolute.getFileName() + "." + pid + ".new");
        CountersFileClaim claim = CountersFileClaim.acquire(path, createDirectory, pid);
        boolean ours = false;       // whether a file at the temporary name is this start's
        CountersFileMapping mapping = null;
        try {
            CountersFileClaim.deleteStaleTemporaries(absolute);
            if (Files.exists(temporary, LinkOption.NOFOLLOW_LINKS)) {     // not a counters file, so not deleted
                throw new DaemonException(Kind.COUNTERS_FILE, "counters file " + path + ": " + temporary + " is in "
                        + "the way and is not a counters file (a file an earlier start with this pid could not put "
                        + "back?); move it away");
            }
            ours = true;
            mapping = CountersFileMapping.create(temporary, pid, startMillis);
            return new CountersFile(path, absolute, temporary, claim, pid, startMillis, notices, mapping);
        } catch (IOException | RuntimeException | Error e) {     // an OutOfMemoryError too: nothing may be left
            if (mapping != null) {
                IoUtil.unmap(mapping.buffer());
            }
            if (ours) {
                deleteQuietly(temporary, e);
            }
            claim.close();
            if (e instanceof Error error) {
                throw error;
            }
            if (e instanceof DaemonException refused) {
                throw refused;
            }
            throw new DaemonException(Kind.COUNTERS_FILE, "counters file " + path + ": cannot be created: "
                    + why((Exception) e), e);
        }
    }

    /**
     * Puts the prepared file into place: from now on readers of the path see this daemon. Once only. What
     * it replaces is looked at after the swap, not before ({@link #replace}): a file that is not a counters
     * file, renamed to the path at any time since the claim, is left there as it was.
     *
     * @throws DaemonException {@link Kind#COUNTERS_FILE} if the path holds a file that is not a counters
     *                         file, or the file cannot be put in place; the path's file is as it was
     */
    void publish() {
        if (published || closed) {
            throw new IllegalStateException("the counters file is " + (closed ? "closed" : "published already"));
        }
        try {
            replace();
        } catch (IOException e) {
            throw new DaemonException(Kind.COUNTERS_FILE, "counters file " + path + ": cannot be created: " + why(e), e);
        }
        published = true;
        try {
            Files.deleteIfExists(temporary);    // the old counters file, swapped out, or the new one's second name
        } catch (IOException e) {
            // Left for the next start, which deletes such files (CountersFileClaim.deleteStaleTemporaries).
        }
    }

    /**
     * Puts the file under the temporary name at the path, replacing nothing but a counters file. With an
     * exchange, the path's old file lands under the temporary name, where it is looked at and swapped back
     * if it must not be replaced; onto an empty path the file is linked, which fails if a file appears
     * there first, and then the exchange is tried again. Where the filesystem has no exchange (or native
     * access is denied), the path is looked at just before a plain rename: a file renamed there in
     * between, microseconds, would be replaced.
     */
    private void replace() throws IOException {
        for (int attempt = 0; attempt < PUBLISH_ATTEMPTS; attempt++) {
            switch (Renames.exchange(temporary, absolute)) {
                case DONE -> {
                    try {
                        CountersFileClaim.checkReplaceable(path, temporary);
                    } catch (RuntimeException | Error refused) {    // refused, or out of memory looking
                        putBack(refused);
                        throw refused;
                    }
                    return;
                }
                case MISSING -> {
                    try {
                        Files.createLink(absolute, temporary);
                        return;
                    } catch (FileAlreadyExistsException appeared) {
                        // a file came to the path since the exchange: look at it with the next one
                    }
                }
                case UNSUPPORTED -> {
                    CountersFileClaim.checkReplaceable(path, absolute);
                    Files.move(temporary, absolute, StandardCopyOption.ATOMIC_MOVE,
                            StandardCopyOption.REPLACE_EXISTING);
                    return;
                }
            }
        }
        throw new IOException("the path changed under it " + PUBLISH_ATTEMPTS + " times in a row");
    }

    /**
     * Swaps back a file an exchange took from the path; if that fails, says where it is and keeps it. What
     * comes back under the temporary name must be this daemon's file: another file renamed to the path
     * between the two exchanges is kept there too (never deleted as the daemon's), and named.
     */
    private void putBack(Throwable refused) {
        try {
            if (Renames.exchange(temporary, absolute) == Renames.Exchange.DONE) {
                if (isOurs(temporary)) {
                    return;
                }
                stranded = true;
                throw new DaemonException(Kind.COUNTERS_FILE, refused.getMessage() + "; it is back at the path, and "
                        + "another file renamed to the path meanwhile is now " + temporary, refused);
            }
        } catch (IOException e) {
            refused.addSuppressed(e);
        }
        stranded = true;
        throw new DaemonException(Kind.COUNTERS_FILE, refused.getMessage() + "; it was renamed to the path while the "
                + "daemon started, and could not be put back: it is now " + temporary, refused);
    }

    /** Whether {@code file} is the file this daemon wrote (by its file key; true where none is known). */
    private boolean isOurs(Path file) throws IOException {
        return mapping.fileKey() == null || mapping.fileKey().equals(identityOf(file));
    }

    /**
     * Publishes {@code values} (by id, at most {@link #COUNTER_NAMES}' size) and the heartbeat. Once
     * published, the path is looked at too ({@link #keepAtPath}).
     */
    public void update(long[] values, long heartbeatMillis) {
        if (closed) {
            throw new IllegalStateException("the counters file is closed");
        }
        mapping.write(values, heartbeatMillis);
        if (published) {
            keepAtPath(values, heartbeatMillis);
        }
    }

    /**
     * Sees that the path still holds the file written: if it was deleted, writes it anew (whole under the
     * temporary name, then linked, so a file that appears at the path first is never replaced) and says
     * so; if it holds another file, leaves that alone and says so once. A path that cannot be looked at,
     * or a file that cannot be written anew, is told once too, and tried again at the next update.
     */
    private void keepAtPath(long[] values, long heartbeatMillis) {
        Object atPath;
        try {
            atPath = identityOf(absolute);
        } catch (NoSuchFileException e) {
            atPath = null;
        } catch (IOException e) {
            tell("cannot be looked at: " + IoErrors.reason(e) + " (tried again at each update)");
            return;
        }
        if (mapping.fileKey() == null || mapping.fileKey().equals(atPath)) {
            told = null;
            return;
        }
        if (atPath != null) {
            tell("replaced by another file, which is left alone; the counters file is written anew once the path "
                    + "is free");
            return;
        }
        try {
            recreate(values, heartbeatMillis);
            told = null;
            notices.accept("counters file " + path + ": deleted while the daemon ran; written anew");
        } catch (FileAlreadyExistsException e) {
            // a file came to the path meanwhile: the next update looks at it
        } catch (IOException | RuntimeException e) {
            tell("deleted while the daemon ran, and cannot be written anew: " + why(e) + " (tried again at each "
                    + "update)");
        }
    }

    /** Writes a new file with {@code values} under the temporary name, links it to the path, and keeps it. */
    private void recreate(long[] values, long heartbeatMillis) throws IOException {
        Files.deleteIfExists(temporary);
        CountersFileMapping fresh = CountersFileMapping.create(temporary, pid, startMillis);
        try {
            fresh.write(values, heartbeatMillis);
            Files.createLink(absolute, temporary);
        } catch (IOException | RuntimeException | Error e) {
            IoUtil.unmap(fresh.buffer());
            deleteQuietly(temporary, e);
            throw e;
        }
        IoUtil.unmap(mapping.buffer());
        mapping = fresh;
        try {
            Files.delete(temporary);
        } catch (IOException e) {
            // Its second name stays until the next start deletes it; the path holds the file.
        }
    }

    /** Tells {@code what} about the path, unless it was the last thing told. */
    private void tell(String what) {
        if (!what.equals(told)) {
            told = what;
            notices.accept("counters file " + path + ": " + what);
        }
    }

    /**
     * Marks the daemon closed (the counters keep their last values), unmaps the file and releases the
     * claim on its path. Before {@link #publish} it deletes the temporary file instead: the path was never
     * touched. Idempotent.
     */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        try {
            if (published) {
                mapping.header().putLongRelease(OFFSET_HEARTBEAT, System.currentTimeMillis());
                mapping.header().putLongRelease(OFFSET_STATE, STATE_CLOSED);
                mapping.buffer().force();
                IoUtil.unmap(mapping.buffer());
            } else {
                IoUtil.unmap(mapping.buffer());
                if (!stranded && Files.exists(temporary, NO_FOLLOW) && isOurs(temporary)) {
                    Files.delete(temporary);
                }
            }
        } catch (IOException e) {
            throw new DaemonException(Kind.COUNTERS_FILE, "counters file " + path + ": " + temporary
                    + " cannot be deleted: " + IoErrors.reason(e), e);
        } finally {
            claim.close();
        }
    }

    /** Why a create failed, in words: the system's for an I/O error. */
    private static String why(Exception e) {
        return switch (e) {
            case FileAlreadyExistsException f -> f.getFile() + ": not a directory";
            case IOException io -> IoErrors.reason(io);
            default -> e.getMessage() != null ? e.getMessage() : e.getClass().getSimpleName();
        };
    }

    /** The identity of the file at {@code file}, not of what a symbolic link there points to; null if unknown. */
    static Object identityOf(Path file) throws IOException {
        return Files.readAttributes(file, BasicFileAttributes.class, NO_FOLLOW).fileKey();
    }

    private static void deleteQuietly(Path temporary, Throwable failure) {
        try {
            Files.deleteIfExists(temporary);
        } catch (IOException e) {
            failure.addSuppressed(e);
        }
    }
}
