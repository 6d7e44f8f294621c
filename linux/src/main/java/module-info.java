/**
 * Internal: every call Samepage makes to the Linux kernel through FFM. Exported only to Samepage's own
 * modules; the one module that needs native access:
 * {@code --enable-native-access=io.samepage.linux}.
 */
module io.samepage.linux {
    exports io.samepage.linux to
            io.samepage.core,
            io.samepage.host,
            io.samepage.kvm,
            io.samepage.daemon,
            io.samepage.density;
}
