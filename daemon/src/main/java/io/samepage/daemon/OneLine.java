package io.samepage.daemon;

/**
 * Text from outside (a file name, a guest's name, a value read from a file) made safe to print on one
 * terminal line: control characters become {@code \xNN}, and line and paragraph separators and the
 * bidirectional overrides and isolates (which reorder what a terminal shows) become <code>&#92;uNNNN</code>.
 * Everything else, non-ASCII letters included, stays as it is. The command line prints every error,
 * notice and table cell through it; it lives here, beside {@link IoErrors}, for both to share.
 */
public final class OneLine {

    private OneLine() {
    }

    /** {@code text} with every character that could break or disguise a line escaped; itself if none does. */
    public static String of(String text) {
        int first = 0;
        while (first < text.length() && !escaped(text.charAt(first))) {
            first++;
        }
        if (first == text.length()) {
            return text;
        }
        StringBuilder out = new StringBuilder(text.length() + 8).append(text, 0, first);
        for (int i = first; i < text.length(); i++) {
            char ch = text.charAt(i);
            if (Character.isISOControl(ch)) {
                out.append(String.format("\\x%02x", (int) ch));
            } else if (escaped(ch)) {
                out.append(String.format("\\u%04x", (int) ch));
            } else {
                out.append(ch);
            }
        }
        return out.toString();
    }

    private static boolean escaped(char ch) {
        return Character.isISOControl(ch) || ch == '\u2028' || ch == '\u2029'
                || (ch >= '\u202a' && ch <= '\u202e') || (ch >= '\u2066' && ch <= '\u2069');
    }
}
