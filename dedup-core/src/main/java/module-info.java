/**
 * The engine: frame pool, guests (page table, copy-on-write), scanner, stable and unstable indexes,
 * merge domains, KSM counters. Embedders need {@code --enable-native-access=io.samepage.linux} for the
 * frame pool's anonymous memory (without it the pool falls back to Java's own off-heap allocation).
 */
module io.samepage.core {
    requires transitive io.samepage.hashing;
    requires transitive org.agrona;
    requires io.samepage.linux;
    requires java.management; // the scanner reads its own thread CPU time (ThreadMXBean)

    exports io.samepage.core;
}
