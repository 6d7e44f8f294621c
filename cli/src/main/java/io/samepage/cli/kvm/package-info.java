/**
 * {@code samepage kvm}: KVM guests on mapped guest memory under the engine (kvm-integration's
 * {@link io.samepage.kvm.MappedGuest}). {@link io.samepage.cli.kvm.SelftestCommand} runs
 * kvm-integration's {@code KvmSelftest} end to end on this host and says, with its exit code, whether every guest saw its own
 * bytes. The commands here print and map errors to exit codes; the engine and KVM work is in
 * dedup-core and kvm-integration.
 */
package io.samepage.cli.kvm;
