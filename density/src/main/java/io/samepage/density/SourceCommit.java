package io.samepage.density;

import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * The commit of the Samepage code that runs, for a report to name: read with {@code git} in the checkout
 * that holds the running code (its jar, or its classes directory), {@code +uncommitted} added where
 * tracked files differ from that commit. It is the checkout's commit now, the build's unless the checkout
 * moved on since the build. Null where it cannot be known (no {@code git}, a jar copied out of its
 * checkout): the build embeds no commit, and a report then says it does not know.
 */
final class SourceCommit {

    private static final long TIMEOUT_SECONDS = 10;

    private SourceCommit() {
    }

    /** {@code abcdef012345} or {@code abcdef012345+uncommitted}, or null if not known. */
    static String ofRunningCode() {
        Path code;
        try {
            code = Path.of(SourceCommit.class.getProtectionDomain().getCodeSource().getLocation().toURI());
        } catch (URISyntaxException | RuntimeException e) {
            return null;
        }
        Path directory = Files.isDirectory(code) ? code : code.getParent();
        if (directory == null) {
            return null;
        }
        String head = git(directory, "rev-parse", "--short=12", "HEAD");
        if (head == null || !head.matches("[0-9a-f]{7,40}")) {
            return null;
        }
        String changes = git(directory, "status", "--porcelain", "--untracked-files=no");
        return changes == null ? null : changes.isEmpty() ? head : head + "+uncommitted";
    }

    /** What {@code git -C directory args} prints, stripped; null if it fails or takes too long. */
    private static String git(Path directory, String... args) {
        List<String> command = new ArrayList<>(List.of("git", "-C", directory.toString()));
        command.addAll(List.of(args));
        Process process;
        try {
            process = new ProcessBuilder(command).redirectError(ProcessBuilder.Redirect.DISCARD).start();
        } catch (IOException e) {
            return null;        // no git here
        }
        try {
            process.getOutputStream().close();
            byte[] out = process.getInputStream().readAllBytes();
            if (!process.waitFor(TIMEOUT_SECONDS, TimeUnit.SECONDS) || process.exitValue() != 0) {
                return null;
            }
            return new String(out, StandardCharsets.UTF_8).strip();
        } catch (IOException e) {
            return null;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return null;
        } finally {
            process.destroyForcibly();
        }
    }
}
