/**
 * KVM virtual machines over memfd-mapped engine memory. Needs
 * {@code --enable-native-access=io.samepage.linux}.
 */
module io.samepage.kvm {
    requires transitive io.samepage.core;
    requires io.samepage.linux;

    exports io.samepage.kvm;
}
