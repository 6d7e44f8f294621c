package io.samepage.core;

/**
 * A {@link PageMapping} that passes every call to a {@link RecordingMapping}: tests override the calls
 * they watch or make fail, and read the host's view from {@link #recorded}.
 */
class ForwardingMapping implements PageMapping {

    final RecordingMapping recorded;

    ForwardingMapping(RecordingMapping recorded) {
        this.recorded = recorded;
    }

    /** Forwards to a new recording of {@code pages} pages that starts on {@code firstFrame}. */
    ForwardingMapping(int firstFrame, int pages) {
        this(new RecordingMapping(firstFrame, pages));
    }

    @Override
    public void map(int page, int frame, boolean writable) {
        recorded.map(page, frame, writable);
    }

    @Override
    public boolean writeProtect(int page) {
        return recorded.writeProtect(page);
    }

    @Override
    public void unprotect(int page) {
        recorded.unprotect(page);
    }

    @Override
    public boolean pagesWritten(long[] bitmap) {
        return recorded.pagesWritten(bitmap);
    }

    @Override
    public void unmapAll() {
        recorded.unmapAll();
    }
}
