package io.samepage.density;

/** The density suite's ways of holding N guests, with the names the table, JSON and chart use. */
enum Mode {

    NO_DEDUP("a", "no_dedup", "(a) no deduplication"),
    POST_LOAD("b", "post_load", "(b) Samepage, scanning after load"),
    PRE_LOAD("c", "pre_load", "(c) Samepage, image index"),
    KSM_DEFAULTS("d", "ksm_defaults", "(d) kernel KSM, defaults"),
    KSM_FULL_RATE("d", "ksm_full_rate", "(d) kernel KSM, full rate"),
    CONTAINER("e", "container", "(e) container-equivalent");

    private final String letter;
    private final String key;
    private final String title;

    Mode(String letter, String key, String title) {
        this.letter = letter;
        this.key = key;
        this.title = title;
    }

    /** The mode's letter in docs/density.md, (a) to (e); both kernel KSM runs are (d). */
    String letter() {
        return letter;
    }

    /** The JSON key and file-friendly name: {@code post_load}, ... */
    String key() {
        return key;
    }

    /** The chart's series name and the table's column title. */
    String title() {
        return title;
    }

    /** True for the modes that merge while the suite watches, so they have a time to 99% sharing. */
    boolean timed() {
        return this == POST_LOAD || this == PRE_LOAD || this == KSM_DEFAULTS || this == KSM_FULL_RATE;
    }
}
