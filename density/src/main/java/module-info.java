/**
 * The density suite: how many guests fit in a memory budget, held five ways (no dedup, post-load
 * merging, the image index, kernel KSM, containers), and the one page mix it shares with the demo.
 */
module io.samepage.density {
    requires transitive io.samepage.image;
    requires io.samepage.host;
    requires io.samepage.linux;
    requires com.fasterxml.jackson.databind;
    requires java.desktop; // the chart's colours and fonts (XChart draws with AWT)
    requires java.management;
    requires xchart;

    exports io.samepage.density;
}
