package io.samepage.testing;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;

/**
 * A class loader that defines the classes a subclass takes ({@link #definesItself}) itself, child first,
 * from the class files its parent's class path holds, each as the subclass rewrites it
 * ({@link #rewrite}); every other class comes from the parent. So a test can run code whose bytecode was
 * changed (an allocation that fails, a fault raised where the source calls nothing) while the JDK's types,
 * JUnit's and the hooks the rewritten code calls stay the parent's, one set shared with the test.
 *
 * <p>Each class it takes is defined once, on first use, under its class loading lock.
 *
 * <p>Thread safety: safe for concurrent class loading (registered as parallel capable; a subclass is too
 * once it registers itself).
 */
public abstract class ChildFirstLoader extends ClassLoader {

    static {
        registerAsParallelCapable();
    }

    /**
     * @param name   the loader's name, as stack traces and {@link ClassLoader#getName} show it
     * @param parent where every class this loader does not take comes from, and the class files of those it takes
     */
    protected ChildFirstLoader(String name, ClassLoader parent) {
        super(name, parent);
    }

    /** Whether this loader defines the class of binary name {@code name} itself rather than its parent. */
    protected abstract boolean definesItself(String name);

    /**
     * The class file to define for {@code name}: {@code bytes}, the one the parent's class path holds, as it
     * is or rewritten. Called once per class this loader takes, under that class's loading lock.
     */
    protected abstract byte[] rewrite(String name, byte[] bytes);

    @Override
    protected final Class<?> loadClass(String name, boolean resolve) throws ClassNotFoundException {
        if (!definesItself(name)) {
            return super.loadClass(name, resolve);
        }
        synchronized (getClassLoadingLock(name)) {
            Class<?> loaded = findLoadedClass(name);
            if (loaded == null) {
                loaded = define(name);
            }
            if (resolve) {
                resolveClass(loaded);
            }
            return loaded;
        }
    }

    private Class<?> define(String name) throws ClassNotFoundException {
        String resource = name.replace('.', '/') + ".class";
        byte[] bytes;
        try (InputStream in = getParent().getResourceAsStream(resource)) {
            if (in == null) {
                throw new ClassNotFoundException(name + ": no " + resource + " on the parent loader's class path");
            }
            bytes = in.readAllBytes();
        } catch (IOException e) {
            throw new UncheckedIOException("reading " + resource, e);
        }
        bytes = rewrite(name, bytes);
        return defineClass(name, bytes, 0, bytes.length);
    }
}
