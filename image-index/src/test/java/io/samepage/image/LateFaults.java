package io.samepage.image;

import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The hook that code rewritten by a {@link LateFaultLoader} calls at each of its sites: it throws the
 * throwable a test armed for that site, once, as a fault the JVM raises late does when it surfaces there
 * (where the source calls nothing, so no seam can stand for it). One instance per JVM (the rewritten code
 * calls it statically), loaded by the parent loader so that the test and the rewritten code share it.
 * Allocates nothing unless it throws. Thread safe.
 *
 * <p>Public, with public methods, because the classes a {@link LateFaultLoader} defines (the rewritten code
 * and the test run through it) are of another runtime package than this one.
 */
public final class LateFaults {

    private static final Map<String, Error> ARMED = new ConcurrentHashMap<>();

    private LateFaults() {
    }

    /**
     * Called by rewritten code at {@code site} ({@code "BatchRing.drain"}, {@code "BatchRing.drain handler 2"}).
     *
     * @throws Error the one armed for {@code site}, which is then disarmed
     */
    public static void at(String site) {
        Error armed = ARMED.remove(site);
        if (armed != null) {
            throw armed;
        }
    }

    /** Makes the next passage through {@code site} throw {@code thrown}. */
    public static void arm(String site, Error thrown) {
        ARMED.put(site, thrown);
    }

    /** The sites armed and not yet passed. */
    public static Set<String> armed() {
        return Set.copyOf(ARMED.keySet());
    }

    /** Disarms every site. */
    public static void reset() {
        ARMED.clear();
    }
}
