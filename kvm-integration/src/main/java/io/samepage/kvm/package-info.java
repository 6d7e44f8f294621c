/**
 * Linux and KVM through FFM: {@code /dev/kvm} VMs over engine memory, the dirty log, a memfd frame
 * pool with physical sharing, kernel KSM control and reading other processes' memory. All native
 * calls will sit in one internal package; no FFM type leaks into this module's public API.
 *
 * <p>Empty until its issues ("Host mode" and "kvm-integration") land.
 */
package io.samepage.kvm;
