package io.samepage.core;

/**
 * A mapped guest's copy-on-write break whose remap the host refused ({@link PageMapping#map}); thrown
 * inside {@link Guest} only after the page's fresh frame was taken and given back, and turned into a
 * {@link DedupException} before it leaves. Carries the page for the message.
 */
final class BreakRefused extends RuntimeException {

    private static final long serialVersionUID = 1L;

    final int page;

    BreakRefused(int page, RuntimeException cause) {
        super(cause);
        this.page = page;
    }
}
