package io.samepage.core;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * A {@link PageMapping} that maps nothing: it keeps its own copy of what each page would map, logs the
 * engine's calls in order, and reports the pages a test says were written behind the engine's back.
 * Single-threaded tests only.
 */
final class RecordingMapping implements PageMapping {

    final int[] frames;
    final boolean[] writable;
    final List<String> calls = new ArrayList<>();
    /** Returned by {@link #writeProtect}: false makes every merge of this guest's pages be refused. */
    boolean allowProtect = true;
    /** False: {@link #pagesWritten} cannot tell (no dirty log), so every page counts as written. */
    boolean tellsWrites = true;
    /** True: {@link #pagesWritten} throws, as a dirty log that cannot be read does. */
    boolean dirtyLogFails;
    private final long[] written;
    boolean unmapped;
    /** How many times {@link #unmapAll} took the mapping down: a host mapping is taken down once. */
    int unmapAllCalls;
    /** True: {@link #unmapAll} throws, changing nothing. */
    boolean refuseUnmap;
    /** Pages whose {@link #unprotect} the host refused ({@link FaultyHost}) since they were last mapped or unprotected. */
    final boolean[] leftReadOnly;

    RecordingMapping(int firstFrame, int pages) {
        frames = new int[pages];
        Arrays.setAll(frames, page -> firstFrame + page);
        writable = new boolean[pages];
        Arrays.fill(writable, true);
        written = new long[(pages + 63) / 64];
        leftReadOnly = new boolean[pages];
    }

    /**
     * Fails unless this host view agrees with the engine's {@code guest}, page by page: the same frame,
     * read-only where the page is merged, writable where it is private but where the host refused to make
     * it writable again since ({@link #leftReadOnly}; its next write fault does). A page the host maps
     * elsewhere would show a KVM guest another frame's bytes; a merged page left writable would let it
     * write a shared one. Call it with the scanner held.
     */
    synchronized void assertAgreesWith(Guest guest, String where) {
        for (int page = 0; page < frames.length; page++) {
            boolean merged = guest.isMerged(page);
            if (frames[page] != guest.frameAt(page) || (writable[page] ? merged : !merged && !leftReadOnly[page])) {
                throw new AssertionError(where + ": " + guest.name() + " page " + page + ": the host maps frame "
                        + frames[page] + (writable[page] ? " writable" : " read-only") + ", the engine frame "
                        + guest.frameAt(page) + (merged ? " merged" : " private"));
            }
        }
    }

    /** Records that {@code page} was written behind the engine's back, for the next {@link #pagesWritten}. */
    void wroteBehindTheEnginesBack(int page) {
        written[page >>> 6] |= 1L << page;
    }

    @Override
    public void map(int page, int frame, boolean writable) {
        calls.add("map " + page + " " + frame + (writable ? " rw" : " ro"));
        frames[page] = frame;
        this.writable[page] = writable;
        leftReadOnly[page] = false;
    }

    @Override
    public boolean writeProtect(int page) {
        calls.add("protect " + page + (allowProtect ? "" : " refused"));
        if (allowProtect) {
            writable[page] = false;
        }
        return allowProtect;
    }

    @Override
    public void unprotect(int page) {
        calls.add("unprotect " + page);
        writable[page] = true;
        leftReadOnly[page] = false;
    }

    @Override
    public boolean pagesWritten(long[] bitmap) {
        if (dirtyLogFails) {
            throw new IllegalStateException("KVM_GET_DIRTY_LOG: Bad address (injected)");
        }
        for (int i = 0; i < written.length; i++) {
            bitmap[i] |= written[i];
        }
        Arrays.fill(written, 0);
        return tellsWrites;
    }

    @Override
    public void unmapAll() {
        if (refuseUnmap) {
            throw new IllegalStateException("munmap: the VMM still holds the memory (injected)");
        }
        unmapped = true;
        unmapAllCalls++;
    }
}
