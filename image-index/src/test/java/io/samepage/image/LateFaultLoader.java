package io.samepage.image;

import io.samepage.testing.ChildFirstLoader;
import java.lang.classfile.ClassFile;
import java.lang.classfile.ClassHierarchyResolver;
import java.lang.classfile.ClassModel;
import java.lang.classfile.CodeBuilder;
import java.lang.classfile.CodeElement;
import java.lang.classfile.CodeModel;
import java.lang.classfile.CodeTransform;
import java.lang.classfile.Instruction;
import java.lang.classfile.Label;
import java.lang.classfile.MethodModel;
import java.lang.classfile.instruction.ExceptionCatch;
import java.lang.classfile.instruction.LabelTarget;
import java.lang.classfile.instruction.StoreInstruction;
import java.lang.constant.ClassDesc;
import java.lang.constant.ConstantDescs;
import java.lang.constant.MethodTypeDesc;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.util.HashSet;
import java.util.Set;

/**
 * A class loader that defines the classes of {@code io.samepage.image} itself (main and test, from its
 * parent's class path), so that a test run through it ({@link #run}) sees rewritten classes: each method
 * named in {@code methods} ({@code "BatchRing.drain"}) calls {@link LateFaults#at} on entry (site
 * {@code "BatchRing.drain"}) and at the start of each of its exception handlers, right after the handler
 * stored what it caught (site {@code "BatchRing.drain handler N"}, N from 1 in the order the handlers' code
 * comes in the method). Those are places where a fault the JVM raises late (its InternalError for a read of
 * a mapped file cut short) can surface though the source calls nothing there, so no seam of
 * {@link LoadWorkers.Seams} can stand for it. {@link LateFaults} and every class of another package (the
 * engine's, the JDK's, JUnit's) come from the parent ({@link ChildFirstLoader}).
 */
final class LateFaultLoader extends ChildFirstLoader {

    private static final String PACKAGE = "io.samepage.image.";
    private static final ClassDesc HOOK = ClassDesc.of(LateFaults.class.getName());
    private static final MethodTypeDesc AT = MethodTypeDesc.of(ConstantDescs.CD_void, ConstantDescs.CD_String);

    static {
        registerAsParallelCapable();
    }

    private final Set<String> methods;

    private LateFaultLoader(ClassLoader parent, Set<String> methods) {
        super("late-faults", parent);
        this.methods = Set.copyOf(methods);
    }

    /**
     * Runs {@code test.method(arguments...)} on a new instance of {@code test} defined by a loader that
     * rewrites {@code methods}; throws what it throws, disarming {@link LateFaults} after.
     */
    static void run(Class<?> test, String method, Set<String> methods, Object... arguments) throws Throwable {
        LateFaultLoader loader = new LateFaultLoader(test.getClassLoader(), methods);
        Class<?> type = loader.loadClass(test.getName());
        Method body = null;
        for (Method candidate : type.getDeclaredMethods()) {
            if (candidate.getName().equals(method)) {
                body = candidate;
            }
        }
        if (body == null) {
            throw new IllegalArgumentException(test.getName() + " has no method " + method);
        }
        body.setAccessible(true);
        var constructor = type.getDeclaredConstructor();
        constructor.setAccessible(true);
        try {
            body.invoke(constructor.newInstance(), arguments);
        } catch (InvocationTargetException e) {
            throw e.getCause();
        } finally {
            LateFaults.reset();
        }
    }

    @Override
    protected boolean definesItself(String name) {
        return name.startsWith(PACKAGE) && name.indexOf('.', PACKAGE.length()) < 0
                && !name.equals(LateFaults.class.getName());
    }

    @Override
    protected byte[] rewrite(String name, byte[] bytes) {
        ClassFile classFile = ClassFile.of(ClassFile.ClassHierarchyResolverOption.of(
                ClassHierarchyResolver.ofResourceParsing(getParent()).orElse(ClassHierarchyResolver.defaultResolver())));
        ClassModel model = classFile.parse(bytes);
        String internal = model.thisClass().asInternalName();
        String simple = internal.substring(internal.lastIndexOf('/') + 1);
        if (model.methods().stream().noneMatch(m -> methods.contains(simple + "." + m.methodName().stringValue()))) {
            return bytes;
        }
        return classFile.transformClass(model, (builder, element) -> {
            if (element instanceof MethodModel method && method.code().isPresent()
                    && methods.contains(simple + "." + method.methodName().stringValue())) {
                String site = simple + "." + method.methodName().stringValue();
                CodeModel code = method.code().orElseThrow();
                builder.transformMethod(method, (methodBuilder, methodElement) -> {
                    if (methodElement instanceof CodeModel) {
                        methodBuilder.transformCode(code, new Hooks(site, code));
                    } else {
                        methodBuilder.with(methodElement);
                    }
                });
            } else {
                builder.with(element);
            }
        });
    }

    /** One method's rewriting: a hook on entry, and one in each handler once it stored what it caught. */
    private static final class Hooks implements CodeTransform {
        private final String site;
        private final Set<Label> handlers = new HashSet<>();
        private int handlersSeen;
        /** The site of the handler whose first instruction comes next; null if none. */
        private String pending;

        Hooks(String site, CodeModel code) {
            this.site = site;
            for (ExceptionCatch handler : code.exceptionHandlers()) {
                handlers.add(handler.handler());
            }
        }

        @Override
        public void atStart(CodeBuilder builder) {
            hook(builder, site);
        }

        @Override
        public void accept(CodeBuilder builder, CodeElement element) {
            if (element instanceof LabelTarget target && handlers.remove(target.label())) {
                pending = site + " handler " + ++handlersSeen;
            }
            if (pending != null && element instanceof Instruction && !(element instanceof StoreInstruction)) {
                hook(builder, pending);
                pending = null;
            }
            builder.with(element);
            if (pending != null && element instanceof StoreInstruction) {
                hook(builder, pending);
                pending = null;
            }
        }

        private static void hook(CodeBuilder builder, String site) {
            builder.loadConstant(site);
            builder.invokestatic(HOOK, "at", AT);
        }
    }
}
