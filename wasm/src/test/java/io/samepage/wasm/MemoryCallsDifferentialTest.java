package io.samepage.wasm;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.dylibso.chicory.runtime.ByteArrayMemory;
import com.dylibso.chicory.runtime.Memory;
import com.dylibso.chicory.wasm.types.MemoryLimits;
import io.samepage.core.DedupEngine;
import io.samepage.core.EngineContext;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.function.Function;
import org.junit.jupiter.api.Test;

/**
 * {@link SamepageMemory} against {@code ByteArrayMemory} one {@code Memory} call at a time, below the
 * interpreter: random loads and stores of every width at addresses near 4 KiB and 64 KiB boundaries and
 * out of bounds, bulk reads, writes, fills and overlapping copies larger than the copy buffer, grows and
 * strings; outcomes (values, or exception class and message) and every byte compared after each call,
 * with flushes, releases and full scans in between. Seeds: {@code -Dwasm.seeds=N} (default 3, each 400
 * calls), {@code -Dwasm.seed=S} for one.
 */
class MemoryCallsDifferentialTest {

    private static final int CALLS = 400;

    @Test
    void everyMemoryCallBehavesAsOnByteArrayMemory() {
        List<String> mismatches = new ArrayList<>();
        Integer one = Integer.getInteger("wasm.seed");
        int seeds = Integer.getInteger("wasm.seeds", 3);
        for (int seed = one == null ? 1 : one; seed <= (one == null ? seeds : one) && mismatches.isEmpty(); seed++) {
            System.out.println("memory calls: seed " + seed + "; rerun with: ./mvnw -o -q -pl wasm -am test -Dfuzz.skip "
                    + "-Dtest=MemoryCallsDifferentialTest -Dsurefire.failIfNoSpecifiedTests=false -Dwasm.seed=" + seed);
            run(seed, mismatches);
        }
        assertEquals(List.of(), mismatches);
    }

    private static void run(int seed, List<String> mismatches) {
        Random r = new Random(seed);
        EngineContext context = new EngineContext().poolBytes(64L << 20).hashSeed(seed).conclude();
        context.knobs().useZeroPages(true);
        try (DedupEngine engine = DedupEngine.create(context)) {
            SamepageMemoryFactory factory = new SamepageMemoryFactory(engine, engine.createDomain("calls"))
                    .cachePages(1 << r.nextInt(4));
            MemoryLimits limits = new MemoryLimits(2, 5);
            Memory expected = new ByteArrayMemory(limits);
            SamepageMemory actual = (SamepageMemory) factory.apply(limits);
            for (int call = 0; call < CALLS && mismatches.isEmpty(); call++) {
                long state = r.nextLong();
                Function<Memory, String> op = op(new Random(state), expected.pages() * Memory.PAGE_SIZE);
                String want = Call.outcome(() -> op.apply(expected));
                String got = Call.outcome(() -> op.apply(actual));
                String where = "seed " + seed + " call " + call + " (" + Call.outcome(() -> describe(new Random(state), expected)) + ")";
                if (!want.equals(got)) {
                    mismatches.add(where + ": ByteArrayMemory gave " + want + ", SamepageMemory gave " + got);
                }
                switch (r.nextInt(8)) {
                    case 0 -> actual.flush();
                    case 1 -> actual.release();
                    case 2 -> {
                        actual.flush();
                        engine.scanner().scanFullPass();
                    }
                    default -> { }
                }
                byte[] a = expected.readBytes(0, expected.pages() * Memory.PAGE_SIZE);
                byte[] b = actual.pages() == expected.pages() ? actual.readBytes(0, a.length) : new byte[0];
                int differs = Arrays.mismatch(a, b);
                if (differs >= 0) {
                    mismatches.add(where + ": memory differs first at " + differs);
                }
            }
            actual.close();
        }
    }

    private static String describe(Random r, Memory memory) {
        return NAMES[r.nextInt(NAMES.length)];
    }

    private static final String[] NAMES = {"readByte", "readShort", "readInt", "readLong", "readFloat", "readDouble",
        "writeByte", "writeShort", "writeI32", "writeLong", "writeF32", "writeF64", "readBytes", "write", "fill", "copy",
        "grow", "readU16", "writeString/readCString", "zero"};

    private static int address(Random r, int bytes) {
        return switch (r.nextInt(5)) {
            case 0 -> r.nextInt(bytes / 65536 + 2) * 65536 - 8 + r.nextInt(16);
            case 1 -> r.nextInt(bytes / 4096 + 2) * 4096 - 8 + r.nextInt(16);
            case 2 -> bytes - 16 + r.nextInt(32);
            case 3 -> r.nextInt(50) == 0 ? -r.nextInt(70_000) - 1 : r.nextInt(bytes);
            default -> r.nextInt(bytes);
        };
    }

    private static int length(Random r) {
        return switch (r.nextInt(4)) {
            case 0 -> r.nextInt(16);
            case 1 -> r.nextInt(5_000);
            case 2 -> 65_000 + r.nextInt(70_000);
            default -> r.nextInt(20) == 0 ? -1 - r.nextInt(10) : r.nextInt(9_000);
        };
    }

    /** The call drawn from {@code r}, the same for both memories (drawn before either runs). */
    private static Function<Memory, String> op(Random r, int bytes) {
        int kind = r.nextInt(NAMES.length);
        int addr = address(r, bytes);
        int addr2 = r.nextBoolean() ? address(r, bytes) : addr + r.nextInt(9_000) - 4_500;
        int len = length(r);
        long value = r.nextLong();
        byte[] data = new byte[Math.max(0, len) + r.nextInt(8)];
        r.nextBytes(data);
        int offset = r.nextInt(10) == 0 ? r.nextInt(data.length + 4) : 0;
        String text = "samepage " + value;
        return m -> switch (kind) {
            case 0 -> String.valueOf(m.read(addr));
            case 1 -> String.valueOf(m.readShort(addr));
            case 2 -> String.valueOf(m.readInt(addr));
            case 3 -> String.valueOf(m.readLong(addr));
            case 4 -> String.valueOf(Float.floatToRawIntBits(m.readFloat(addr)));
            case 5 -> String.valueOf(Double.doubleToRawLongBits(m.readDouble(addr)));
            case 6 -> run(() -> m.writeByte(addr, (byte) value));
            case 7 -> run(() -> m.writeShort(addr, (short) value));
            case 8 -> run(() -> m.writeI32(addr, (int) value));
            case 9 -> run(() -> m.writeLong(addr, value));
            case 10 -> run(() -> m.writeF32(addr, Float.intBitsToFloat((int) value)));
            case 11 -> run(() -> m.writeF64(addr, Double.longBitsToDouble(value)));
            case 12 -> Arrays.hashCode(m.readBytes(addr, len)) + "";
            case 13 -> run(() -> m.write(addr, data, offset, len));
            case 14 -> run(() -> m.fill((byte) value, addr, addr + len));
            case 15 -> run(() -> m.copy(addr2, addr, len));
            case 16 -> String.valueOf(m.grow((int) (value & 1)));
            case 17 -> String.valueOf(m.readU16(addr));
            case 18 -> {
                m.writeCString(addr, text);
                yield m.readCString(addr);
            }
            default -> value % 7 == 0 ? run(m::zero) : String.valueOf(m.readF64(addr));
        };
    }

    private static String run(Runnable action) {
        action.run();
        return "done";
    }
}
