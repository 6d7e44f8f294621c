package io.samepage.density;

import io.samepage.linux.AnonymousMemory;
import io.samepage.hashing.Pages;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;

/**
 * The child process of mode (d): N guests' memory for kernel KSM, the same bytes as the engine's guests
 * ({@link GuestContent} from the same image, sizes and seed), in one private anonymous mapping
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
        try (GuestContent content = new GuestContent(Path.of(args[0]), guests, Integer.parseInt(args[2]),
                Integer.parseInt(args[3]), Long.parseLong(args[4]));
                AnonymousMemory memory = AnonymousMemory.map(guests * content.guestBytes())) {
            memory.adviseNoHugePage();
            for (int g = 0; g < guests; g++) {
                fill(content, g, memory.segment().asSlice(g * content.guestBytes(), content.guestBytes()));
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

    /** Writes guest g's pages after boot into {@code guest}, touching every page. */
    static void fill(GuestContent content, int g, MemorySegment guest) {
        int page = Pages.PAGE_SIZE;
        MemorySegment.copy(content.imageBytes(), 0, guest, 0, (long) content.imagePages() * page);
        byte[] stamp = new byte[GuestContent.STAMP_BYTES];
        for (int p : content.writtenAfterBoot(g)) {
            content.stamp(g, p, stamp);
            MemorySegment.copy(stamp, 0, guest, ValueLayout.JAVA_BYTE, (long) p * page, stamp.length);
        }
        guest.asSlice((long) content.imagePages() * page, (long) content.zeroPages() * page).fill((byte) 0);
        byte[] bytes = new byte[page];
        for (int p = content.imagePages() + content.zeroPages(); p < content.pagesPerGuest(); p++) {
            content.uniquePage(g, p, bytes);
            MemorySegment.copy(bytes, 0, guest, ValueLayout.JAVA_BYTE, (long) p * page, page);
        }
    }
}
