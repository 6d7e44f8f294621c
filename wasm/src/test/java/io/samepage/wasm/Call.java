package io.samepage.wasm;

import com.dylibso.chicory.runtime.Instance;
import java.util.Arrays;
import java.util.Random;
import java.util.function.Supplier;

/** One call of an exported function, drawn at random for a test program; addresses are sometimes out of bounds. */
record Call(String export, long[] args) {

    /** The call's outcome as text: its results, or the exception's class and message. */
    String on(Instance instance) {
        return outcome(() -> Arrays.toString(instance.export(export).apply(args)));
    }

    static String outcome(Supplier<Object> action) {
        try {
            return "returned " + action.get();
        } catch (RuntimeException e) {
            return e.getClass().getName() + ": " + e.getMessage();
        }
    }

    @Override
    public String toString() {
        return export + Arrays.toString(args);
    }

    static Call next(String program, Random r) {
        return switch (program) {
            case "sort" -> sort(r);
            case "hashtable" -> hashtable(r);
            case "grow" -> grow(r);
            case "bulk" -> bulk(r);
            case "atomics" -> atomics(r);
            case "trap" -> trap(r);
            default -> throw new IllegalArgumentException("no calls for program " + program);
        };
    }

    private static Call of(String export, long... args) {
        return new Call(export, args);
    }

    /** An address near a 4 KiB or 64 KiB boundary, anywhere, or out of bounds, for a memory of about {@code bytes}. */
    private static long address(Random r, int bytes) {
        return switch (r.nextInt(6)) {
            case 0 -> r.nextInt(bytes / 65536 + 2) * 65536L - 8 + r.nextInt(16);
            case 1 -> r.nextInt(bytes / 4096 + 2) * 4096L - 8 + r.nextInt(16);
            case 2 -> bytes - 16 + r.nextInt(32);
            case 3 -> r.nextInt(100) == 0 ? -1 - r.nextInt(1000) : r.nextInt(bytes);
            default -> r.nextInt(bytes);
        } & 0xFFFF_FFFFL;
    }

    private static Call sort(Random r) {
        int n = r.nextInt(20) == 0 ? 40_000 : r.nextInt(2_000);
        return switch (r.nextInt(5)) {
            case 0, 1 -> of("fill", r.nextInt(), n);
            case 2 -> of("sort", n);
            case 3 -> of(r.nextBoolean() ? "sorted" : "checksum", n);
            default -> of("get", r.nextInt(10) == 0 ? r.nextInt() & 0xFFFF_FFFFL : r.nextInt(40_000));
        };
    }

    private static Call hashtable(Random r) {
        return switch (r.nextInt(8)) {
            case 0, 1 -> of("put", r.nextInt(5_000), r.nextLong());
            case 2 -> of("get", r.nextInt(5_000));
            case 3, 4 -> of("bulk", r.nextInt(), r.nextInt(3_000));
            case 5 -> of("count");
            case 6 -> r.nextInt(3) == 0 ? of("clear") : of("count");
            default -> of("get", r.nextInt(1 << 20) | 1);
        };
    }

    private static final String[] GROW_STORES = {"store8", "store16", "store32", "store64", "storef32", "storef64"};
    private static final String[] GROW_LOADS = {"load8s", "load16u", "load16s", "load32", "load32u", "load64", "loadf32", "loadf64"};

    private static Call grow(Random r) {
        int bytes = 6 * 65536;
        return switch (r.nextInt(7)) {
            case 0 -> of("grow", r.nextInt(10) == 0 ? r.nextInt(8) : r.nextInt(2));
            case 1 -> of("size");
            case 2, 3 -> of(GROW_STORES[r.nextInt(GROW_STORES.length)], address(r, bytes), r.nextLong());
            case 4, 5 -> of(GROW_LOADS[r.nextInt(GROW_LOADS.length)], address(r, bytes));
            default -> of("stride", address(r, bytes), r.nextInt(3_000), 1 + r.nextInt(9_000));
        };
    }

    private static Call bulk(Random r) {
        int bytes = 3 * 65536;
        int length = r.nextBoolean() ? r.nextInt(5_000) : r.nextInt(70_000);
        return switch (r.nextInt(12)) {
            case 11 -> of("noise", r.nextLong(), r.nextInt(1_000), r.nextInt(16_384));
            case 0, 1 -> of("fill", address(r, bytes), r.nextInt(4) == 0 ? 0 : r.nextInt(256), length);
            case 2 -> {
                int src = r.nextInt(60_000);
                int dst = src + 1 + r.nextInt(9_000);
                int big = 65_537 + r.nextInt(2 * 65_536 - 65_537 - dst);     // within the two pages the memory starts with
                yield r.nextBoolean() ? of("copy", dst, src, big) : of("copy", src, dst, big);
            }
            case 3 -> {
                long src = address(r, bytes);
                long dst = r.nextBoolean() ? (src + r.nextInt(9_000) - 4_500) & 0xFFFF_FFFFL : address(r, bytes);
                yield of("copy", dst, src, length);
            }
            case 4 -> of("init0", address(r, bytes), r.nextInt(6_100), r.nextInt(6_100));
            case 5 -> of("init1", address(r, bytes), r.nextInt(45), r.nextInt(45));
            case 6 -> of(r.nextInt(4) == 0 ? "drop0" : "drop1");
            case 7 -> of("grow", r.nextInt(2));
            default -> of("sum", address(r, bytes), r.nextInt(5_000));
        };
    }

    private static final String[] ATOMIC_32 = {"add32", "sub32", "and32", "or8", "xor16"};

    private static Call atomics(Random r) {
        long at = r.nextInt(20) == 0 ? address(r, 65536) : (r.nextInt(65536 / 8) * 8L);
        return switch (r.nextInt(9)) {
            case 0, 1 -> of(ATOMIC_32[r.nextInt(ATOMIC_32.length)], at, r.nextInt());
            case 2 -> of(r.nextBoolean() ? "xchg64" : "add64", at, r.nextLong());
            case 3 -> of("cas32", at, r.nextInt(3), r.nextInt());
            case 4 -> of("cas64", at, r.nextInt(3), r.nextLong());
            case 5 -> of(r.nextBoolean() ? "load32" : "load64", at);
            case 6 -> r.nextBoolean() ? of("store16", at, r.nextInt()) : of("store64", at, r.nextLong());
            case 7 -> of(r.nextBoolean() ? "notify" : "wait", at);
            default -> of("fence");
        };
    }

    private static Call trap(Random r) {
        return switch (r.nextInt(4)) {
            case 0 -> of("store_then_trap", address(r, 65536), r.nextInt());
            case 1 -> of("load", address(r, 65536));
            case 2 -> of("unreachable");
            default -> of("div", r.nextInt(), r.nextInt(3) - 1);
        };
    }
}
