package io.samepage.density;

import io.samepage.linux.AnonymousMemory;
import java.io.IOException;
import java.nio.file.Path;

/**
 * The child process of mode (d): N guests' memory for kernel KSM, the same bytes as the engine's guests
 * ({@link PageMix} from the same image, sizes and seed), in one private anonymous mapping
 * ({@link AnonymousMemory}, {@code MADV_NOHUGEPAGE}), every page written, then offered to KSM with
 * {@code MADV_MERGEABLE}. It then prints {@value #READY} and the number of pages on stdout, and holds the
 * memory until its stdin closes (the suite closes it, or the suite's death does), then exits.
 *
 * <p>Usage (by {@link KsmMode} only): {@code java -cp CLASSPATH io.samepage.density.KsmHelper IMAGE
 * GUESTS GUEST_MIB UNIQUE_PERCENT SEED}. Exit code 1 with one line on stderr if it cannot map or fill.
 */
public final class KsmHelper {

    static final String READY = "ready";

    private KsmHelper() {
    }

    public static void main(String[] args) throws IOException {
        if (args.length != 5) {
            System.err.println("usage: KsmHelper IMAGE GUESTS GUEST_MIB UNIQUE_PERCENT SEED");
            System.exit(2);
        }
        int guests = Integer.parseInt(args[1]);
        try (PageMix content = PageMix.density(Path.of(args[0]), guests, Integer.parseInt(args[2]),
                Integer.parseInt(args[3]), Long.parseLong(args[4]));
                AnonymousMemory memory = AnonymousMemory.map(guests * content.guestBytes())) {
            memory.adviseNoHugePage();
            for (int g = 0; g < guests; g++) {
                content.fill(g, memory.segment().asSlice(g * content.guestBytes(), content.guestBytes()));
            }
            memory.adviseMergeable();
            System.out.println(READY + " " + (long) guests * content.pagesPerGuest());
            System.out.flush();
            while (System.in.read() >= 0) {
                // The suite closes stdin when it is done with this process.
            }
        } catch (RuntimeException e) {
            System.err.println("KsmHelper: " + e.getMessage());
            System.exit(1);
        }
    }
}
