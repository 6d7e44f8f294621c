package io.samepage.wasm;

import com.dylibso.chicory.runtime.Memory;
import com.dylibso.chicory.runtime.WasmRuntimeException;
import com.dylibso.chicory.wasm.ChicoryException;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.lang.invoke.VarHandle.AccessMode;
import java.nio.ByteOrder;

/**
 * The atomics Chicory defines, for a memory that is not shared: one thread reaches it, so each
 * read-modify-write is a plain read and write, with the plain accessors' bounds checks and exceptions
 * (the interpreter traps misaligned atomics before it calls, so none crosses a page). Waiting on such a
 * memory fails and notifying it wakes nobody.
 *
 * <p>Where the JVM's byte-array views lack an atomic access mode (JDK 25's views of {@code byte[]} have
 * none wider than a byte), {@code ByteArrayMemory} falls back to a monitor table that only shared
 * memories have, and the resulting {@code NullPointerException} becomes its out-of-bounds trap: every
 * 16-, 32- and 64-bit atomic on a non-shared memory traps there. This memory traps the same way, decided
 * by the same capability checks, so the two agree on every JVM; byte atomics work on both.
 */
abstract class PlainAtomics implements Memory {

    private static final VarHandle BYTE = MethodHandles.arrayElementVarHandle(byte[].class);
    private static final VarHandle SHORT = MethodHandles.byteArrayViewVarHandle(short[].class, ByteOrder.LITTLE_ENDIAN);
    private static final VarHandle INT = MethodHandles.byteArrayViewVarHandle(int[].class, ByteOrder.LITTLE_ENDIAN);
    private static final VarHandle LONG = MethodHandles.byteArrayViewVarHandle(long[].class, ByteOrder.LITTLE_ENDIAN);
    private static final boolean BYTE_RMW = fullAtomics(BYTE);
    private static final boolean SHORT_RMW = fullAtomics(SHORT) || fullAtomics(INT);
    private static final boolean INT_RMW = fullAtomics(INT);
    private static final boolean LONG_RMW = fullAtomics(LONG);
    private static final boolean BYTE_GET = BYTE.isAccessModeSupported(AccessMode.GET_VOLATILE);
    private static final boolean SHORT_GET = SHORT.isAccessModeSupported(AccessMode.GET_VOLATILE);
    private static final boolean INT_GET = INT.isAccessModeSupported(AccessMode.GET_VOLATILE);
    private static final boolean LONG_GET = LONG.isAccessModeSupported(AccessMode.GET_VOLATILE);
    private static final boolean BYTE_SET = BYTE.isAccessModeSupported(AccessMode.SET_VOLATILE);
    private static final boolean SHORT_SET = SHORT.isAccessModeSupported(AccessMode.SET_VOLATILE);
    private static final boolean INT_SET = INT.isAccessModeSupported(AccessMode.SET_VOLATILE);
    private static final boolean LONG_SET = LONG.isAccessModeSupported(AccessMode.SET_VOLATILE);

    /** ByteArrayMemory's test for a width's atomics. */
    private static boolean fullAtomics(VarHandle handle) {
        return handle.isAccessModeSupported(AccessMode.GET_VOLATILE)
                && handle.isAccessModeSupported(AccessMode.SET_VOLATILE)
                && handle.isAccessModeSupported(AccessMode.COMPARE_AND_EXCHANGE)
                && handle.isAccessModeSupported(AccessMode.GET_AND_SET)
                && handle.isAccessModeSupported(AccessMode.GET_AND_ADD)
                && handle.isAccessModeSupported(AccessMode.GET_AND_BITWISE_AND)
                && handle.isAccessModeSupported(AccessMode.GET_AND_BITWISE_OR)
                && handle.isAccessModeSupported(AccessMode.GET_AND_BITWISE_XOR);
    }

    /** The out-of-bounds trap for {@code size} bytes at {@code addr}, with ByteArrayMemory's message. */
    abstract WasmRuntimeException outOfBounds(int addr, int size);

    @Override
    @SuppressWarnings("removal")
    public Object lock(int address) {
        throw new UnsupportedOperationException();
    }

    @Override
    @SuppressWarnings("removal")
    public int waitOn(int address, int expected, long timeout) {
        throw new ChicoryException("Attempt to wait on a non-shared memory, not supported.");
    }

    @Override
    @SuppressWarnings("removal")
    public int waitOn(int address, long expected, long timeout) {
        throw new ChicoryException("Attempt to wait on a non-shared memory, not supported.");
    }

    @Override
    @SuppressWarnings("removal")
    public int notify(int address, int maxThreads) {
        return 0;
    }

    @Override
    public void atomicFence() {
        VarHandle.fullFence();
    }

    @Override
    public byte atomicReadByte(int addr) {
        if (!BYTE_GET) {
            throw outOfBounds(addr, 1);
        }
        return read(addr);
    }

    @Override
    public void atomicWriteByte(int addr, byte value) {
        if (!BYTE_SET) {
            throw outOfBounds(addr, 1);
        }
        writeByte(addr, value);
    }

    @Override
    public byte atomicAddByte(int addr, byte v) {
        if (!BYTE_RMW) {
            throw outOfBounds(addr, 1);
        }
        byte old = read(addr);
        writeByte(addr, (byte) (old + v));
        return old;
    }

    @Override
    public byte atomicAndByte(int addr, byte v) {
        if (!BYTE_RMW) {
            throw outOfBounds(addr, 1);
        }
        byte old = read(addr);
        writeByte(addr, (byte) (old & v));
        return old;
    }

    @Override
    public byte atomicOrByte(int addr, byte v) {
        if (!BYTE_RMW) {
            throw outOfBounds(addr, 1);
        }
        byte old = read(addr);
        writeByte(addr, (byte) (old | v));
        return old;
    }

    @Override
    public byte atomicXorByte(int addr, byte v) {
        if (!BYTE_RMW) {
            throw outOfBounds(addr, 1);
        }
        byte old = read(addr);
        writeByte(addr, (byte) (old ^ v));
        return old;
    }

    @Override
    public byte atomicXchgByte(int addr, byte v) {
        if (!BYTE_RMW) {
            throw outOfBounds(addr, 1);
        }
        byte old = read(addr);
        writeByte(addr, (byte) (v));
        return old;
    }

    @Override
    public byte atomicCmpxchgByte(int addr, byte expected, byte replacement) {
        if (!BYTE_RMW) {
            throw outOfBounds(addr, 1);
        }
        byte old = read(addr);
        if (old == expected) {
            writeByte(addr, replacement);
        }
        return old;
    }

    @Override
    public short atomicReadShort(int addr) {
        if (!SHORT_GET) {
            throw outOfBounds(addr, 2);
        }
        return readShort(addr);
    }

    @Override
    public void atomicWriteShort(int addr, short value) {
        if (!SHORT_SET) {
            throw outOfBounds(addr, 2);
        }
        writeShort(addr, value);
    }

    @Override
    public short atomicAddShort(int addr, short v) {
        if (!SHORT_RMW) {
            throw outOfBounds(addr, 2);
        }
        short old = readShort(addr);
        writeShort(addr, (short) (old + v));
        return old;
    }

    @Override
    public short atomicAndShort(int addr, short v) {
        if (!SHORT_RMW) {
            throw outOfBounds(addr, 2);
        }
        short old = readShort(addr);
        writeShort(addr, (short) (old & v));
        return old;
    }

    @Override
    public short atomicOrShort(int addr, short v) {
        if (!SHORT_RMW) {
            throw outOfBounds(addr, 2);
        }
        short old = readShort(addr);
        writeShort(addr, (short) (old | v));
        return old;
    }

    @Override
    public short atomicXorShort(int addr, short v) {
        if (!SHORT_RMW) {
            throw outOfBounds(addr, 2);
        }
        short old = readShort(addr);
        writeShort(addr, (short) (old ^ v));
        return old;
    }

    @Override
    public short atomicXchgShort(int addr, short v) {
        if (!SHORT_RMW) {
            throw outOfBounds(addr, 2);
        }
        short old = readShort(addr);
        writeShort(addr, (short) (v));
        return old;
    }

    @Override
    public short atomicCmpxchgShort(int addr, short expected, short replacement) {
        if (!SHORT_RMW) {
            throw outOfBounds(addr, 2);
        }
        short old = readShort(addr);
        if (old == expected) {
            writeShort(addr, replacement);
        }
        return old;
    }

    @Override
    public int atomicReadInt(int addr) {
        if (!INT_GET) {
            throw outOfBounds(addr, 4);
        }
        return readInt(addr);
    }

    @Override
    public void atomicWriteInt(int addr, int value) {
        if (!INT_SET) {
            throw outOfBounds(addr, 4);
        }
        writeI32(addr, value);
    }

    @Override
    public int atomicAddInt(int addr, int v) {
        if (!INT_RMW) {
            throw outOfBounds(addr, 4);
        }
        int old = readInt(addr);
        writeI32(addr, old + v);
        return old;
    }

    @Override
    public int atomicAndInt(int addr, int v) {
        if (!INT_RMW) {
            throw outOfBounds(addr, 4);
        }
        int old = readInt(addr);
        writeI32(addr, old & v);
        return old;
    }

    @Override
    public int atomicOrInt(int addr, int v) {
        if (!INT_RMW) {
            throw outOfBounds(addr, 4);
        }
        int old = readInt(addr);
        writeI32(addr, old | v);
        return old;
    }

    @Override
    public int atomicXorInt(int addr, int v) {
        if (!INT_RMW) {
            throw outOfBounds(addr, 4);
        }
        int old = readInt(addr);
        writeI32(addr, old ^ v);
        return old;
    }

    @Override
    public int atomicXchgInt(int addr, int v) {
        if (!INT_RMW) {
            throw outOfBounds(addr, 4);
        }
        int old = readInt(addr);
        writeI32(addr, v);
        return old;
    }

    @Override
    public int atomicCmpxchgInt(int addr, int expected, int replacement) {
        if (!INT_RMW) {
            throw outOfBounds(addr, 4);
        }
        int old = readInt(addr);
        if (old == expected) {
            writeI32(addr, replacement);
        }
        return old;
    }

    @Override
    public long atomicReadLong(int addr) {
        if (!LONG_GET) {
            throw outOfBounds(addr, 8);
        }
        return readLong(addr);
    }

    @Override
    public void atomicWriteLong(int addr, long value) {
        if (!LONG_SET) {
            throw outOfBounds(addr, 8);
        }
        writeLong(addr, value);
    }

    @Override
    public long atomicAddLong(int addr, long v) {
        if (!LONG_RMW) {
            throw outOfBounds(addr, 8);
        }
        long old = readLong(addr);
        writeLong(addr, old + v);
        return old;
    }

    @Override
    public long atomicAndLong(int addr, long v) {
        if (!LONG_RMW) {
            throw outOfBounds(addr, 8);
        }
        long old = readLong(addr);
        writeLong(addr, old & v);
        return old;
    }

    @Override
    public long atomicOrLong(int addr, long v) {
        if (!LONG_RMW) {
            throw outOfBounds(addr, 8);
        }
        long old = readLong(addr);
        writeLong(addr, old | v);
        return old;
    }

    @Override
    public long atomicXorLong(int addr, long v) {
        if (!LONG_RMW) {
            throw outOfBounds(addr, 8);
        }
        long old = readLong(addr);
        writeLong(addr, old ^ v);
        return old;
    }

    @Override
    public long atomicXchgLong(int addr, long v) {
        if (!LONG_RMW) {
            throw outOfBounds(addr, 8);
        }
        long old = readLong(addr);
        writeLong(addr, v);
        return old;
    }

    @Override
    public long atomicCmpxchgLong(int addr, long expected, long replacement) {
        if (!LONG_RMW) {
            throw outOfBounds(addr, 8);
        }
        long old = readLong(addr);
        if (old == expected) {
            writeLong(addr, replacement);
        }
        return old;
    }
}
