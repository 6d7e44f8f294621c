package io.samepage.testing;

import java.lang.classfile.ClassFile;
import java.lang.classfile.ClassHierarchyResolver;
import java.lang.classfile.ClassModel;
import java.lang.classfile.CodeBuilder;
import java.lang.classfile.CodeElement;
import java.lang.classfile.CodeTransform;
import java.lang.classfile.MethodModel;
import java.lang.classfile.MethodTransform;
import java.lang.classfile.instruction.InvokeDynamicInstruction;
import java.lang.classfile.instruction.InvokeInstruction;
import java.lang.classfile.instruction.LineNumber;
import java.lang.classfile.instruction.NewMultiArrayInstruction;
import java.lang.classfile.instruction.NewObjectInstruction;
import java.lang.classfile.instruction.NewPrimitiveArrayInstruction;
import java.lang.classfile.instruction.NewReferenceArrayInstruction;
import java.lang.constant.ClassDesc;
import java.lang.constant.ConstantDescs;
import java.lang.constant.MethodTypeDesc;
import java.util.Set;

/**
 * Rewrites a class so that every allocation site calls {@link AllocationFaults#beforeAllocation} first,
 * with the site as {@code SimpleClass.method:line}. A site is a {@code new}, {@code newarray},
 * {@code anewarray} or {@code multianewarray}; an {@code invokedynamic} that allocates (a string
 * concatenation, a lambda that captures); an array's {@code clone}; and a call into the JDK that may
 * allocate: a {@code java.util} collection's growth or copy ({@link #GROWING_CALLS}), an iterator or a
 * stream, boxing, a {@code MemorySegment} view. Such a call counts whether it allocates this time or
 * not (an {@code add} with room left does not): an injection there stands for the growth that would fail.
 *
 * <p>Some collections allocate after they changed ({@link #CHANGED_FIRST}): a {@code HashMap} links its
 * entry before it grows its table, an {@code ArrayDeque} grows after it stores, a
 * {@code ConcurrentSkipListMap} adds index nodes after it links a put's node, and a marker node after
 * it unlinks a removal's (so its {@code remove} counts only there). A call that changes one of those
 * ({@link #CHANGING_CALLS}), named by its class rather than an interface, is a second site, named
 * {@code Class.method:line, after name}, counted once the call returns. An {@code ArrayList} or a
 * {@code CopyOnWriteArrayList} makes its new array before it changes, so its calls count only before.
 *
 * <p>Static initializers are left alone: a class whose initialization failed could not be loaded
 * again, and every later run would fail on that instead.
 */
final class AllocationSites {

    /** Names of {@code java.util} methods that may allocate: they grow, copy or make something. */
    static final Set<String> GROWING_CALLS = Set.of("add", "addAll", "addFirst", "addLast", "offer", "offerFirst",
            "offerLast", "push", "put", "putAll", "putIfAbsent", "compute", "computeIfAbsent", "computeIfPresent",
            "merge", "toArray", "copyOf", "copyOfRange", "of", "ofEntries", "iterator", "spliterator", "stream",
            "toList", "collect", "ensureCapacity");
    /** Names of {@code java.util} methods that change their collection, and may allocate after the change. */
    static final Set<String> CHANGING_CALLS = Set.of("add", "addAll", "addFirst", "addLast", "offer", "offerFirst",
            "offerLast", "push", "put", "putAll", "putIfAbsent", "compute", "computeIfAbsent", "computeIfPresent", "merge");
    /** Collections that may allocate after a change: see the class comment. */
    static final Set<String> CHANGED_FIRST = Set.of("java/util/HashMap", "java/util/HashSet", "java/util/LinkedHashMap",
            "java/util/LinkedHashSet", "java/util/ArrayDeque", "java/util/concurrent/ConcurrentHashMap",
            "java/util/concurrent/ConcurrentSkipListMap", "java/util/concurrent/ConcurrentSkipListSet");
    private static final Set<String> SEGMENT_VIEWS = Set.of("ofArray", "asSlice", "reinterpret", "toArray",
            "asByteBuffer", "asReadOnly");
    private static final Set<String> BOXES = Set.of("java/lang/Integer", "java/lang/Long", "java/lang/Short",
            "java/lang/Byte", "java/lang/Character", "java/lang/Double", "java/lang/Float", "java/lang/Boolean");
    private static final ClassDesc FAULTS = ClassDesc.of(AllocationFaults.class.getName());
    private static final MethodTypeDesc BEFORE = MethodTypeDesc.of(ConstantDescs.CD_void, ConstantDescs.CD_String);

    private AllocationSites() {
    }

    /**
     * The class {@code bytes} with a call to the counter before each allocation site; stack maps are
     * computed again, resolving types through {@code loader}.
     */
    static byte[] rewrite(byte[] bytes, ClassLoader loader) {
        return rewrite(bytes, loader, Set.of());
    }

    /**
     * As {@link #rewrite(byte[], ClassLoader)}, and a call named in {@code moreCalls}
     * ({@code "java/lang/Throwable.addSuppressed"}: owner's internal name, a dot, the method's name) is
     * a site too, counted before the call.
     */
    static byte[] rewrite(byte[] bytes, ClassLoader loader, Set<String> moreCalls) {
        ClassFile classFile = ClassFile.of(ClassFile.ClassHierarchyResolverOption.of(
                ClassHierarchyResolver.ofResourceParsing(loader).orElse(ClassHierarchyResolver.defaultResolver())));
        ClassModel model = classFile.parse(bytes);
        String internal = model.thisClass().asInternalName();
        String simple = internal.substring(internal.lastIndexOf('/') + 1);
        return classFile.transformClass(model, (builder, element) -> {
            if (element instanceof MethodModel method && method.code().isPresent()
                    && !method.methodName().equalsString(ConstantDescs.CLASS_INIT_NAME)) {
                builder.transformMethod(method,
                        MethodTransform.transformingCode(new Sites(simple + "." + method.methodName().stringValue(), moreCalls)));
            } else {
                builder.with(element);
            }
        });
    }

    /** True if {@code element} allocates, or is a call that may. */
    static boolean allocates(CodeElement element) {
        return switch (element) {
            case NewObjectInstruction n -> true;
            case NewPrimitiveArrayInstruction n -> true;
            case NewReferenceArrayInstruction n -> true;
            case NewMultiArrayInstruction n -> true;
            case InvokeDynamicInstruction indy -> indyAllocates(indy);
            case InvokeInstruction call -> callAllocates(call.owner().asInternalName(), call.name().stringValue());
            default -> false;
        };
    }

    /** String concatenation always makes a string; a lambda or method reference only when it captures. */
    private static boolean indyAllocates(InvokeDynamicInstruction indy) {
        String bootstrap = indy.bootstrapMethod().owner().descriptorString();
        if (bootstrap.equals("Ljava/lang/invoke/StringConcatFactory;")) {
            return true;
        }
        return bootstrap.equals("Ljava/lang/invoke/LambdaMetafactory;") && indy.typeSymbol().parameterCount() > 0;
    }

    static boolean callAllocates(String owner, String name) {
        if (owner.startsWith("[")) {
            return name.equals("clone");
        }
        if (owner.equals("java/util/BitSet")) {
            return name.equals("set") || name.equals("flip") || name.equals("or") || name.equals("xor");
        }
        if (javaUtil(owner)) {
            return GROWING_CALLS.contains(name);
        }
        if (owner.equals("java/lang/foreign/MemorySegment")) {
            return SEGMENT_VIEWS.contains(name);
        }
        return BOXES.contains(owner) && name.equals("valueOf");
    }

    /** True if a call may allocate after it changed its collection: a second site, once it returns. */
    static boolean allocatesAfter(CodeElement element) {
        if (!(element instanceof InvokeInstruction call) || !CHANGED_FIRST.contains(call.owner().asInternalName())) {
            return false;
        }
        String name = call.name().stringValue();
        return CHANGING_CALLS.contains(name)
                || name.equals("remove") && call.owner().asInternalName().startsWith("java/util/concurrent/ConcurrentSkipList");
    }

    private static boolean javaUtil(String owner) {
        return owner.startsWith("java/util/") && !owner.startsWith("java/util/concurrent/locks/")
                && !owner.startsWith("java/util/concurrent/atomic/");
    }

    /** One method's rewriting: knows the line it is at, so each site is named by it. */
    private static final class Sites implements CodeTransform {
        private final String method;
        private final Set<String> moreCalls;
        private int line = -1;

        Sites(String method, Set<String> moreCalls) {
            this.method = method;
            this.moreCalls = moreCalls;
        }

        @Override
        public void accept(CodeBuilder builder, CodeElement element) {
            if (element instanceof LineNumber number) {
                line = number.line();
            } else if (allocates(element) || element instanceof InvokeInstruction call
                    && moreCalls.contains(call.owner().asInternalName() + "." + call.name().stringValue())) {
                builder.loadConstant(method + ":" + line);
                builder.invokestatic(FAULTS, "beforeAllocation", BEFORE);
            }
            builder.with(element);
            if (allocatesAfter(element)) {
                builder.loadConstant(method + ":" + line + ", after " + ((InvokeInstruction) element).name().stringValue());
                builder.invokestatic(FAULTS, "beforeAllocation", BEFORE);
            }
        }
    }
}
