package io.samepage.testing;

import java.net.URL;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.function.Predicate;

/**
 * A class loader for allocation fault injection: it loads the classes of some packages itself, from
 * its parent's class path ({@link ChildFirstLoader}), and rewrites those a predicate names so that each
 * allocation first asks {@link AllocationFaults} whether to fail ({@link AllocationSites} says which
 * bytecodes and calls count). Every other class, {@code java.*} and {@link AllocationFaults} among them,
 * comes from the parent, so the rewritten code and the test share one counter and the JDK's types.
 *
 * <p>A test loads its scenario through this loader too (a class in one of the packages, not rewritten),
 * so the scenario sees the rewritten classes, and talks to it through a JDK interface. Run the scenario
 * once unarmed before counting: class loading and static initializers ({@code <clinit>}, never rewritten)
 * happen on first use, and would make the first run's count differ from the next.
 *
 * <p>Where the JVM itself allocates (an exception it creates, class loading, a JDK method not listed
 * in {@link AllocationSites}) nothing is injected: this finds sites in the rewritten code only.
 *
 * <p>Thread safety: safe for concurrent class loading (registered as parallel capable).
 */
public final class AllocationFaultLoader extends ChildFirstLoader {

    static {
        registerAsParallelCapable();
    }

    private final List<String> childFirst;
    private final Predicate<String> rewritten;
    private final Set<String> moreCalls;

    /**
     * @param parent             where every class outside {@code childFirstPrefixes} comes from, and the
     *                           class files of those inside
     * @param childFirstPrefixes package prefixes ({@code "io.samepage.core."}) this loader defines itself
     * @param rewritten          which of those classes (binary names) to rewrite; the others are defined as they are
     * @throws IllegalArgumentException if a prefix would load {@link AllocationFaults} here: the rewritten
     *                                  code would count on a counter the test cannot see
     */
    public AllocationFaultLoader(ClassLoader parent, List<String> childFirstPrefixes, Predicate<String> rewritten) {
        this(parent, childFirstPrefixes, rewritten, Set.of());
    }

    /**
     * As above, and the calls named in {@code moreCalls} count as allocation sites too
     * ({@code "java/lang/Throwable.addSuppressed"}: the owner's internal name, a dot, the method's name):
     * calls into the JDK that allocate and that {@link AllocationSites} does not list.
     */
    public AllocationFaultLoader(ClassLoader parent, List<String> childFirstPrefixes, Predicate<String> rewritten,
            Set<String> moreCalls) {
        super("allocation-faults", parent);
        for (String prefix : childFirstPrefixes) {
            if (AllocationFaults.class.getName().startsWith(prefix)) {
                throw new IllegalArgumentException("child-first prefix '" + prefix + "' takes in "
                        + AllocationFaults.class.getName() + ", which must come from the parent loader");
            }
        }
        this.childFirst = List.copyOf(childFirstPrefixes);
        this.rewritten = rewritten;
        this.moreCalls = Set.copyOf(moreCalls);
    }

    /**
     * A predicate for {@code rewritten}: the classes whose class files {@code parent} finds where one of
     * {@code anchors} came from (its code source: a {@code target/classes} directory, a jar). So a
     * module's main classes are rewritten and its test classes, in another directory, are not.
     */
    public static Predicate<String> fromCodeSourcesOf(ClassLoader parent, Class<?>... anchors) {
        List<String> locations = new ArrayList<>();
        for (Class<?> anchor : anchors) {
            locations.add(anchor.getProtectionDomain().getCodeSource().getLocation().toString());
        }
        return name -> {
            URL url = parent.getResource(name.replace('.', '/') + ".class");
            if (url == null) {
                return false;
            }
            String at = url.toString();
            return locations.stream().anyMatch(at::contains);
        };
    }

    @Override
    protected boolean definesItself(String name) {
        return childFirst.stream().anyMatch(name::startsWith);
    }

    @Override
    protected byte[] rewrite(String name, byte[] bytes) {
        return rewritten.test(name) ? AllocationSites.rewrite(bytes, getParent(), moreCalls) : bytes;
    }
}
