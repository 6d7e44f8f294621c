/** The pre-load image index: build, file format, and the loader that maps resident blocks. */
module io.samepage.image {
    requires transitive io.samepage.core;

    exports io.samepage.image;
}
