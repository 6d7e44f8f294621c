/**
 * Host mode: estimates for live processes and QEMU guests, read without disturbing them, and kernel
 * KSM control. Needs {@code --enable-native-access=io.samepage.linux} to read other processes.
 */
module io.samepage.host {
    requires transitive io.samepage.hashing;
    requires io.samepage.linux;

    exports io.samepage.host;
}
