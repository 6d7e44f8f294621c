package io.samepage.wasm;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.Random;

/**
 * The bench's module: {@code workload.wasm} (compiled from {@code workload.wat}, beside it in the jar)
 * with its memory section replaced by {@code pages} pages (minimum and maximum) and one active data
 * segment appended: {@code dataBytes} seeded bytes at address 0, the table the workload looks words up in.
 * The binary format's sections are rewritten here directly: an id byte, a LEB128 size, the payload.
 */
final class BenchModule {

    private static final int MEMORY_SECTION = 5;
    private static final int DATA_SECTION = 11;

    private BenchModule() {
    }

    static byte[] build(int pages, int dataBytes, long seed) {
        byte[] code = workload();
        ByteArrayOutputStream out = new ByteArrayOutputStream(dataBytes + code.length + 64);
        out.write(code, 0, 8);                      // magic and version
        int at = 8;
        while (at < code.length) {
            int id = code[at] & 0xFF;
            int[] size = leb(code, at + 1);
            int payload = size[1];
            int end = payload + size[0];
            if (id == MEMORY_SECTION) {
                ByteArrayOutputStream memory = new ByteArrayOutputStream();
                memory.write(1);                    // one memory
                memory.write(1);                    // limits with a maximum
                writeLeb(memory, pages);
                writeLeb(memory, pages);
                section(out, MEMORY_SECTION, memory.toByteArray());
            } else if (id == DATA_SECTION) {
                throw new IllegalStateException("workload.wasm has a data section of its own");
            } else {
                out.write(code, at, end - at);
            }
            at = end;
        }
        byte[] data = new byte[dataBytes];
        new Random(seed).nextBytes(data);
        ByteArrayOutputStream segments = new ByteArrayOutputStream(dataBytes + 16);
        segments.write(1);                          // one segment
        segments.write(0);                          // active, memory 0
        segments.write(0x41);                       // i32.const 0
        segments.write(0);
        segments.write(0x0B);                       // end
        writeLeb(segments, dataBytes);
        segments.write(data, 0, data.length);
        section(out, DATA_SECTION, segments.toByteArray());
        return out.toByteArray();
    }

    private static byte[] workload() {
        try (InputStream in = BenchModule.class.getResourceAsStream("bench/workload.wasm")) {
            if (in == null) {
                throw new IllegalStateException("bench/workload.wasm is missing from the wasm module's resources");
            }
            return in.readAllBytes();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static void section(ByteArrayOutputStream out, int id, byte[] payload) {
        out.write(id);
        writeLeb(out, payload.length);
        out.write(payload, 0, payload.length);
    }

    private static void writeLeb(ByteArrayOutputStream out, long value) {
        do {
            int b = (int) (value & 0x7F);
            value >>>= 7;
            out.write(value != 0 ? b | 0x80 : b);
        } while (value != 0);
    }

    /** {@code [value, index after it]} of the unsigned LEB128 at {@code at}. */
    private static int[] leb(byte[] bytes, int at) {
        int value = 0;
        int shift = 0;
        while (true) {
            int b = bytes[at++] & 0xFF;
            value |= (b & 0x7F) << shift;
            if ((b & 0x80) == 0) {
                return new int[] {value, at};
            }
            shift += 7;
        }
    }
}
