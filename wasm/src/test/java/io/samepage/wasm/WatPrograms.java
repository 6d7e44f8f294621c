package io.samepage.wasm;

import static org.junit.jupiter.api.Assertions.fail;

import com.dylibso.chicory.runtime.Instance;
import com.dylibso.chicory.wasm.Parser;
import com.dylibso.chicory.wasm.WasmModule;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

/**
 * The test programs: {@code src/test/wat/NAME.wat}, compiled by wabt's {@code wat2wasm} (with the
 * threads proposal, for the atomics) into {@code target/wat/NAME.wasm} when the test runs.
 */
final class WatPrograms {

    static final String INSTALL_HINT = "; install Debian's wabt package: bash .ci/install-test-deps (as root), or apt-get install wabt";
    private static final Path SOURCES = Path.of("src/test/wat");
    private static final Path OUT = Path.of("target/wat");

    private WatPrograms() {
    }

    /** Calls export {@code export} of {@code instance} with {@code args}: its first result as an int, 0 if none. */
    static int call(Instance instance, String export, int... args) {
        long[] params = new long[args.length];
        for (int i = 0; i < args.length; i++) {
            params[i] = args[i];
        }
        long[] result = instance.export(export).apply(params);
        return result == null || result.length == 0 ? 0 : (int) result[0];
    }

    /** Compiles {@code name}.wat (once per run) and parses it. */
    static synchronized WasmModule module(String name) {
        return Parser.parse(wasm(name));
    }

    /** The compiled bytes' file of {@code name}.wat. */
    static synchronized Path wasm(String name) {
        Path wat = SOURCES.resolve(name + ".wat");
        Path wasm = OUT.resolve(name + ".wasm");
        try {
            if (Files.isRegularFile(wasm) && Files.getLastModifiedTime(wasm).compareTo(Files.getLastModifiedTime(wat)) >= 0) {
                return wasm;
            }
            Files.createDirectories(OUT);
            Process process;
            try {
                process = new ProcessBuilder("wat2wasm", "--enable-threads", wat.toString(), "-o", wasm.toString())
                        .redirectErrorStream(true).start();
            } catch (IOException e) {
                fail("wat2wasm is not on PATH" + INSTALL_HINT);
                throw new AssertionError(e);
            }
            String output = new String(process.getInputStream().readAllBytes());
            if (!process.waitFor(60, TimeUnit.SECONDS) || process.exitValue() != 0) {
                fail("wat2wasm could not compile " + wat + ": " + output);
            }
            return wasm;
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError(e);
        }
    }
}
