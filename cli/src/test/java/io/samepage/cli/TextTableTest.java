package io.samepage.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

class TextTableTest {

    @Test
    void numberColumnsAlignRightAndTextColumnsLeft() {
        String table = new TextTable("guest", "domain", "profit")
                .row("vm-1", "a", 5L)
                .row("vm-10", "bbb", -1234L)
                .row("x", "c", 1.5)
                .render();
        assertEquals("""
                guest  domain  profit
                vm-1   a            5
                vm-10  bbb      -1234
                x      c         1.50
                """, table);
    }

    @Test
    void aRowOfTheWrongWidthIsRefused() {
        assertThrows(IllegalArgumentException.class, () -> new TextTable("a", "b").row(1L));
    }

    /** A name from another user's command line cannot break a row or send the terminal a control sequence. */
    @Test
    void controlCharactersAndLineBreaksInACellAreEscaped() {
        String table = new TextTable("guest", "pages").row("vm\n1\u001b[31m\u202e", 3L).render();
        assertEquals("""
                guest                  pages
                vm\\x0a1\\x1b[31m\\u202e      3
                """, table);
    }
}
