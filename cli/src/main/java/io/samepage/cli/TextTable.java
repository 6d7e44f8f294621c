package io.samepage.cli;

import io.samepage.daemon.OneLine;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/**
 * An aligned plain-text table, columns two spaces apart: a column whose cells are all numbers is
 * right-aligned, any other column left-aligned. Cells are {@link OneLine escaped}: a guest's name comes
 * from another user's command line or a file, and must not break a row or reach the terminal as a
 * control sequence. Not thread safe.
 */
final class TextTable {

    private final List<String[]> rows = new ArrayList<>();
    private final int columns;
    private final boolean[] numeric;

    /** A table whose first row is {@code header}; an empty first cell leaves the corner blank. */
    TextTable(String... header) {
        this.columns = header.length;
        this.numeric = new boolean[columns];
        Arrays.fill(numeric, true);
        rows.add(header.clone());
    }

    /** Adds a row; numbers are printed as they are, {@code Double}s with two decimals. */
    TextTable row(Object... cells) {
        if (cells.length != columns) {
            throw new IllegalArgumentException("a row of this table has " + columns + " cells, not " + cells.length);
        }
        String[] row = new String[columns];
        for (int i = 0; i < columns; i++) {
            numeric[i] &= cells[i] instanceof Number;
            row[i] = cells[i] instanceof Double d ? String.format(Locale.ROOT, "%.2f", d)
                    : OneLine.of(String.valueOf(cells[i]));
        }
        rows.add(row);
        return this;
    }

    /** The table, one line per row, each line ending in a newline. */
    String render() {
        int[] widths = new int[columns];
        for (String[] row : rows) {
            for (int i = 0; i < columns; i++) {
                widths[i] = Math.max(widths[i], row[i].length());
            }
        }
        StringBuilder out = new StringBuilder();
        for (String[] row : rows) {
            StringBuilder line = new StringBuilder();
            for (int i = 0; i < columns; i++) {
                if (i > 0) {
                    line.append("  ");
                }
                String pad = " ".repeat(widths[i] - row[i].length());
                line.append(numeric[i] ? pad + row[i] : row[i] + pad);
            }
            out.append(line.toString().stripTrailing()).append('\n');
        }
        return out.toString();
    }
}
