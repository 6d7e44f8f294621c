package io.samepage.host;

import java.util.ArrayList;
import java.util.List;

/**
 * Parses the text of {@code /proc/PID/maps} into {@link MemoryRegion}s.
 *
 * <p>Each line is {@code start-end perms offset major:minor inode [path]}: the first five fields are
 * separated by one space each (as {@code show_map_vma} prints them), then any run of padding spaces,
 * then the path, which may itself hold spaces and runs to the end of the line (the kernel escapes a
 * newline in a file name as {@code \012}, so a line is one mapping). Addresses and the offset are hex
 * of 1 to 16 digits, major and minor hex of 1 to 8, the inode decimal.
 *
 * <p>Empty lines, the trailing newline among them, are skipped. Every other line must parse: a line
 * that does not fails the whole text with a {@link ProcessScanException} of kind
 * {@link ProcessScanException.Kind#IO} naming the line number, what is wrong and the line itself. A
 * map with one unparseable line is not trusted at all: guessing would scan the wrong memory. No other
 * exception escapes, whatever the text (a seeded fuzz test checks this).
 *
 * <p>Stateless and thread safe.
 */
public final class MemoryMaps {

    private static final int MAX_QUOTED = 160;

    private MemoryMaps() {
    }

    /**
     * @param pid  the process the text came from, for the error message
     * @param text the whole file
     * @return the mappings in file order (ascending addresses, as the kernel prints them)
     * @throws ProcessScanException of kind IO naming the first malformed line
     */
    public static List<MemoryRegion> parse(int pid, String text) {
        List<MemoryRegion> regions = new ArrayList<>();
        int lineNumber = 0;
        int at = 0;
        while (at < text.length()) {
            int newline = text.indexOf('\n', at);
            int lineEnd = newline < 0 ? text.length() : newline;
            lineNumber++;
            String line = text.substring(at, lineEnd);
            at = lineEnd + 1;
            if (line.isEmpty()) {
                continue;
            }
            try {
                regions.add(parseLine(line));
            } catch (Malformed | IllegalArgumentException e) {
                throw new ProcessScanException(ProcessScanException.Kind.IO, pid, "/proc/" + pid + "/maps line "
                        + lineNumber + ": " + escape(e.getMessage(), Integer.MAX_VALUE) + ": \"" + quote(line) + "\"");
            }
        }
        return regions;
    }

    /** One non-empty line; throws {@link Malformed} or (from the record) {@link IllegalArgumentException}. */
    static MemoryRegion parseLine(String line) {
        Cursor c = new Cursor(line);
        long start = c.hex('-', 16, "start address");
        long end = c.hex(' ', 16, "end address");
        String permissions = c.field(' ', "permissions");
        long offset = c.hex(' ', 16, "offset");
        String device = c.field(' ', "device");
        int colon = device.indexOf(':');
        if (colon < 0) {
            throw new Malformed("device '" + device + "' is not major:minor");
        }
        new Cursor(device.substring(0, colon) + " ").hex(' ', 8, "device major");
        new Cursor(device.substring(colon + 1) + " ").hex(' ', 8, "device minor");
        long inode = c.decimal("inode");
        String path = c.rest().stripLeading();
        return new MemoryRegion(start, end, permissions, offset, device, inode, path);
    }

    private static String quote(String line) {
        String out = escape(line, MAX_QUOTED);
        return line.length() > MAX_QUOTED ? out + "..." : out;
    }

    /**
     * At most the first {@code max} characters of {@code text} with control characters as {@code \xNN},
     * and U+2028, U+2029 and the bidirectional overrides and isolates (U+202A to U+202E, U+2066 to
     * U+2069, which reorder what a terminal shows) as Java escapes: the message that holds them stays
     * one printable line that shows what it holds.
     */
    static String escape(String text, int max) {
        StringBuilder out = new StringBuilder();
        for (int i = 0; i < text.length() && out.length() < max; i++) {
            char ch = text.charAt(i);
            out.append(Character.isISOControl(ch) ? String.format("\\x%02x", (int) ch)
                    : ch == '\u2028' || ch == '\u2029' || (ch >= '\u202a' && ch <= '\u202e')
                    || (ch >= '\u2066' && ch <= '\u2069') ? String.format("\\u%04x", (int) ch) : String.valueOf(ch));
        }
        return out.toString();
    }

    /** A line that does not follow the format; its message says which field and why. */
    private static final class Malformed extends RuntimeException {
        private static final long serialVersionUID = 1L;

        Malformed(String message) {
            super(message, null, false, false);
        }
    }

    /** Reads one line field by field, left to right. */
    private static final class Cursor {
        private final String line;
        private int at;

        Cursor(String line) {
            this.line = line;
        }

        /** The characters up to {@code end} (which must follow before any space), not empty. */
        String field(char end, String what) {
            int stop = line.indexOf(end, at);
            int space = line.indexOf(' ', at);
            if (stop < 0 || (space >= 0 && space < stop)) {
                throw new Malformed(what + " missing or not followed by '" + printable(end) + "'");
            }
            if (stop == at) {
                throw new Malformed(what + " is empty");
            }
            String field = line.substring(at, stop);
            at = stop + 1;
            return field;
        }

        long hex(char end, int maxDigits, String what) {
            String digits = field(end, what);
            if (digits.length() > maxDigits) {
                throw new Malformed(what + " '" + digits + "' has more than " + maxDigits + " hex digits");
            }
            long value = 0;
            for (int i = 0; i < digits.length(); i++) {
                int digit = Character.digit(digits.charAt(i), 16);
                if (digit < 0 || digits.charAt(i) > 'f') {
                    throw new Malformed(what + " '" + digits + "' is not hex");
                }
                value = (value << 4) | digit;
            }
            return value;
        }

        /** An unsigned decimal ending at a space or the end of the line. */
        long decimal(String what) {
            int stop = line.indexOf(' ', at);
            String digits = line.substring(at, stop < 0 ? line.length() : stop);
            at = stop < 0 ? line.length() : stop;
            if (digits.isEmpty() || digits.length() > 20) {
                throw new Malformed(what + " '" + digits + "' is not a number of 1 to 20 digits");
            }
            long value = 0;
            for (int i = 0; i < digits.length(); i++) {
                char ch = digits.charAt(i);
                if (ch < '0' || ch > '9') {
                    throw new Malformed(what + " '" + digits + "' is not a decimal number");
                }
                long next = value * 10 + (ch - '0');
                if (Long.compareUnsigned(value, Long.divideUnsigned(-1L, 10)) > 0
                        || Long.compareUnsigned(next, value * 10) < 0) {
                    throw new Malformed(what + " '" + digits + "' is more than 64 bits");
                }
                value = next;
            }
            return value;
        }

        String rest() {
            return line.substring(at);
        }

        private static String printable(char ch) {
            return ch == ' ' ? "space" : String.valueOf(ch);
        }
    }
}
