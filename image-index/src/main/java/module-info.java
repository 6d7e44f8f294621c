/** The pre-load image index: build, file format, and the loader that maps resident blocks. */
module io.samepage.image {
    requires transitive io.samepage.core;
    requires java.management; // the loader reads its workers' CPU time (ThreadMXBean)

    exports io.samepage.image;
}
