package io.samepage.host;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * The {@code /proc/PID/maps} parser: every field, the odd paths, and a seeded fuzz of corrupted lines.
 * A fuzz failure names the seed; {@code -Dsamepage.seed=N} replays it.
 */
class MemoryMapsTest {

    private static final long SEED = Long.getLong("samepage.seed", System.nanoTime());
    private static final int FUZZ_LINES = 20_000;

    static String resource(String name) throws IOException {
        try (InputStream in = MemoryMapsTest.class.getResourceAsStream(name)) {
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
    }

    @Test
    void everyFieldOfALineIsRead() {
        MemoryRegion r = MemoryMaps.parse(7, "7f5e9c428000-7f5e9c5bd000 r-xp 00028000 fe:01 1575133"
                + "                    /usr/lib/x86_64-linux-gnu/libc.so.6\n").getFirst();
        assertEquals(0x7f5e9c428000L, r.start());
        assertEquals(0x7f5e9c5bd000L, r.end());
        assertEquals("r-xp", r.permissions());
        assertEquals(0x28000, r.offset());
        assertEquals("fe:01", r.device());
        assertEquals(1575133, r.inode());
        assertEquals("/usr/lib/x86_64-linux-gnu/libc.so.6", r.path());
        assertEquals(0x195, r.pages());
        assertTrue(r.readable() && r.executable() && r.isPrivate() && !r.writable() && !r.anonymous());
    }

    @Test
    void anonymousLinesEndInASpaceAndHaveAnEmptyPath() {
        MemoryRegion r = MemoryMaps.parse(7, "7f5e84200000-7f5e94200000 rw-p 00000000 00:00 0 \n").getFirst();
        assertEquals("", r.path());
        assertTrue(r.anonymous());
        assertEquals(256L << 20, r.bytes());
    }

    /**
     * Found by {@link MemoryMapsFuzzTest}: the refused field was echoed raw before the quoted line, and
     * the quoted line escaped only C0 controls, so a backspace in an address, or a NEL (U+0085, a line
     * break) anywhere, went into the one-line message.
     */
    @Test
    void aRefusedLineIsReportedOnOnePrintableLine() {
        for (String line : List.of("7f767159b000-7f76715\b000 r--p 00000000 00:00 0                          [vvar]",
                "7f767159b000-7f76715\u0085000 r--p 00000000 00:00 0                          [vvar]")) {
            String message = assertThrows(ProcessScanException.class, () -> MemoryMaps.parse(9, line)).getMessage();
            assertTrue(message.startsWith("pid 9: /proc/9/maps line 1: end address '7f76715\\x"), message);
            assertFalse(java.util.regex.Pattern.compile("\\R|\\p{Cntrl}").matcher(message).find(), message);
        }
    }

    /**
     * A right-to-left override (U+202E) in a refused line would make the terminal show the rest of the
     * message reversed: it is escaped like the controls, in the refused field and the quoted line alike.
     */
    @Test
    void aBidirectionalOverrideInARefusedLineIsShownEscaped() {
        String line = "7f767159b000-7f76715\u202e000 r--p 00000000 00:00 0                          [vvar]\u2066";
        String message = assertThrows(ProcessScanException.class, () -> MemoryMaps.parse(9, line)).getMessage();
        assertTrue(message.startsWith("pid 9: /proc/9/maps line 1: end address '7f76715\\u202e"), message);
        assertTrue(message.contains("[vvar]\\u2066"), message);
        assertFalse(java.util.regex.Pattern.compile("[\u202a-\u202e\u2066-\u2069]").matcher(message).find(), message);
    }

    @Test
    void pathsKeepTheirSpacesAndDeletedMarkers() {
        List<MemoryRegion> regions = MemoryMaps.parse(7, String.join("\n",
                "7f0000000000-7f0000001000 rw-s 00000000 00:01 2054                       /memfd:memory-backend-memfd (deleted)",
                "7f0000001000-7f0000002000 r--p 00000000 103:02 99                        /home/a user/my file.bin",
                "7f0000002000-7f0000003000 rw-p 00000000 00:00 0                          [anon:java heap]",
                ""));
        assertEquals("/memfd:memory-backend-memfd (deleted)", regions.get(0).path());
        assertFalse(regions.get(0).isPrivate());
        assertEquals("103:02", regions.get(1).device());
        assertEquals("/home/a user/my file.bin", regions.get(1).path());
        assertEquals("[anon:java heap]", regions.get(2).path());
        assertFalse(regions.get(2).anonymous(), "a named anonymous mapping is not unnamed anonymous memory");
    }

    @Test
    void theVsyscallPageAboveTwoToTheSixtyThreeParsesAsUnsigned() {
        MemoryRegion r = MemoryMaps.parse(7, "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0"
                + "                  [vsyscall]").getFirst();
        assertEquals(0xffffffffff600000L, r.start());
        assertEquals(1, r.pages());
        assertTrue(r.kernelSpecial());
        assertTrue(r.contains(0xffffffffff600fffL));
        assertFalse(r.contains(0xffffffffff601000L));
    }

    @Test
    void aWholeRecordedMapParsesLineForLine() throws IOException {
        String text = resource("synthetic-qemu-tcg-256m.maps");
        List<MemoryRegion> regions = MemoryMaps.parse(7, text);
        assertEquals(text.lines().count(), regions.size());
        for (int i = 1; i < regions.size(); i++) {
            assertTrue(Long.compareUnsigned(regions.get(i - 1).end(), regions.get(i).start()) <= 0,
                    "ascending and disjoint at " + regions.get(i));
        }
    }

    @Test
    void emptyLinesAreSkipped() {
        assertEquals(2, MemoryMaps.parse(7, "\n1000-2000 r--p 00000000 00:00 0 \n\n\n3000-4000 r--p 00000000 00:00 0").size());
        assertEquals(List.of(), MemoryMaps.parse(7, ""));
    }

    @Test
    void aMalformedLineNamesTheProcessTheLineAndTheField() {
        ProcessScanException e = assertThrows(ProcessScanException.class, () -> MemoryMaps.parse(42,
                "1000-2000 r--p 00000000 00:00 0 \n3000-2000 r--p 00000000 00:00 0 \n"));
        assertEquals(ProcessScanException.Kind.IO, e.kind());
        assertEquals("pid 42: /proc/42/maps line 2: range 00003000-00002000 is empty or reversed: "
                + "\"3000-2000 r--p 00000000 00:00 0 \"", e.getMessage());
        assertMalformed("1000-2000 r--q 00000000 00:00 0", "permissions 'r--q' are not four of r/-, w/-, x/-, p/s");
        assertMalformed("1000-2zz0 r--p 00000000 00:00 0", "end address '2zz0' is not hex");
        assertMalformed("1000-2000 r--p 00000000 0000 0", "device '0000' is not major:minor");
        assertMalformed("1000-2000 r--p 00000000 00:00 x1", "inode 'x1' is not a decimal number");
        assertMalformed("1000-2000 r--p 00000000 00:00 99999999999999999999", "inode '99999999999999999999' is more than 64 bits");
        assertMalformed("1000-2001 r--p 00000000 00:00 0", "range 00001000-00002001 is not page aligned");
        assertMalformed("1000 r--p", "start address missing or not followed by '-'");
        assertMalformed("10000000000000000-20000000000000000 r--p 0 00:00 0", "start address '10000000000000000' has more than 16 hex digits");
    }

    private static void assertMalformed(String line, String what) {
        ProcessScanException e = assertThrows(ProcessScanException.class, () -> MemoryMaps.parse(1, line));
        assertTrue(e.getMessage().startsWith("pid 1: /proc/1/maps line 1: " + what + ": \""), e.getMessage());
    }

    @Test
    void aRegionPrintedAsTheKernelPrintsItParsesBackToItself() {
        SplittableRandom random = new SplittableRandom(SEED);
        for (int i = 0; i < 2_000; i++) {
            MemoryRegion region = randomRegion(random);
            assertEquals(List.of(region), MemoryMaps.parse(1, region + "\n"), "seed " + SEED);
        }
    }

    /**
     * Corrupts lines of a recorded map at random (delete, insert, replace, swap, duplicate, truncate):
     * each corrupted text either parses or fails with the parser's one documented exception, naming a
     * line; nothing else escapes.
     */
    @Test
    void randomlyCorruptedLinesParseOrFailWithAClearErrorAndNothingElse() throws IOException {
        List<String> lines = resource("synthetic-qemu-tcg-256m.maps").lines().toList();
        SplittableRandom random = new SplittableRandom(SEED);
        int parsed = 0;
        int refused = 0;
        for (int i = 0; i < FUZZ_LINES; i++) {
            String line = corrupt(lines.get(random.nextInt(lines.size())), random);
            int textLines = line.split("\n", -1).length;
            try {
                List<MemoryRegion> regions = MemoryMaps.parse(9, line);
                assertTrue(regions.size() <= textLines, "at most one region per line of " + textLines
                        + " (inserted newlines make more lines)");
                parsed++;
            } catch (ProcessScanException e) {
                assertEquals(ProcessScanException.Kind.IO, e.kind());
                assertTrue(e.getMessage().matches("(?s)pid 9: /proc/9/maps line [1-9][0-9]*: .+: \".*\""),
                        e.getMessage() + " (seed " + SEED + ")");
                int named = Integer.parseInt(e.getMessage().replaceFirst("(?s)^pid 9: /proc/9/maps line (\\d+):.*", "$1"));
                assertTrue(named <= textLines, "line " + named + " of a text of " + textLines + " (seed " + SEED + ")");
                refused++;
            } catch (RuntimeException e) {
                throw new AssertionError("line \"" + line + "\" threw " + e + " (replay with -Dsamepage.seed="
                        + SEED + ")", e);
            }
        }
        assertTrue(parsed > 0 && refused > FUZZ_LINES / 2, parsed + " parsed, " + refused + " refused");
    }

    private static final String ALPHABET = "0123456789abcdefABCDEF-: prwxs\n\t\u0000\u00e9\u0663[]()/xyz";

    private static String corrupt(String line, SplittableRandom random) {
        StringBuilder s = new StringBuilder(line);
        int edits = 1 + random.nextInt(3);
        for (int e = 0; e < edits; e++) {
            int at = s.isEmpty() ? 0 : random.nextInt(s.length());
            char ch = ALPHABET.charAt(random.nextInt(ALPHABET.length()));
            switch (random.nextInt(6)) {
                case 0 -> {
                    if (!s.isEmpty()) {
                        s.deleteCharAt(at);
                    }
                }
                case 1 -> s.insert(at, ch);
                case 2 -> {
                    if (!s.isEmpty()) {
                        s.setCharAt(at, ch);
                    }
                }
                case 3 -> {
                    if (s.length() > 1) {
                        int other = random.nextInt(s.length());
                        char tmp = s.charAt(at);
                        s.setCharAt(at, s.charAt(other));
                        s.setCharAt(other, tmp);
                    }
                }
                case 4 -> {
                    int end = Math.min(s.length(), at + 1 + random.nextInt(12));
                    s.insert(at, s.substring(at, end));
                }
                default -> s.setLength(at);
            }
        }
        return s.toString();
    }

    private static MemoryRegion randomRegion(SplittableRandom random) {
        long start = (random.nextLong() >>> 17) << 12;
        long end = start + ((1 + random.nextInt(1 << 16)) << 12);
        String permissions = "" + "r-".charAt(random.nextInt(2)) + "w-".charAt(random.nextInt(2))
                + "x-".charAt(random.nextInt(2)) + "ps".charAt(random.nextInt(2));
        boolean anonymous = random.nextBoolean();
        String device = anonymous ? "00:00" : Integer.toHexString(random.nextInt(0x200)) + ":" + String.format("%02x", random.nextInt(256));
        long inode = anonymous ? 0 : random.nextLong() >>> random.nextInt(64);
        String path = anonymous ? (random.nextBoolean() ? "" : "[heap]") : "/a b/lib" + random.nextInt(99) + ".so (deleted)";
        return new MemoryRegion(start, end, permissions, anonymous ? 0 : random.nextLong() >>> 20 << 12, device, inode, path);
    }
}
