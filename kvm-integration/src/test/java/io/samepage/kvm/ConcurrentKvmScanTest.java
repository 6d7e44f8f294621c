package io.samepage.kvm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.samepage.core.DedupEngine;
import io.samepage.core.MergeDomain;
import java.io.ByteArrayOutputStream;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BrokenBarrierException;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * KVM guests writing while the scanner merges on another thread: the write protection before each
 * compare is what keeps a guest's write from landing in a frame that the merge is about to drop.
 *
 * <p>Each guest runs {@value #ITERATIONS} rounds; in round {@code k} it stores {@code k} at two places
 * of each of eight pages, then checks both bytes of every page and reports on the serial port (or on
 * the failure port if a byte is not what it stored). All guests store the same bytes, so their pages
 * become equal again halfway through each round and the scanner, running all along, may merge them
 * under the guest's next store. Between rounds the guests wait until every such page is merged, so
 * each round's first store to each page exits and breaks sharing.
 */
@Tag("kvm")
@Timeout(120)
class ConcurrentKvmScanTest {

    private static final int GUESTS = 3;
    private static final int PAGE = MappedGuestMemory.PAGE_BYTES;
    private static final int PAGES = RealModeGuest.PAGES;
    private static final int FIRST = 4;
    private static final int COUNT = 8;
    private static final int ITERATIONS = 40;
    private static final int FAIL_PORT = RealModeGuest.SERIAL_PORT + 1;

    @BeforeEach
    void kvmIsUsable() {
        RealModeGuest.assumeKvm();
    }

    @Test
    void guestWritesDuringConcurrentMergesAreNeverLost() throws Exception {
        try (Kvm kvm = Kvm.open();
             DedupEngine engine = MappedEngineTest.engine("concurrent", GUESTS * PAGES * 4, MappingBudget.host())) {
            engine.knobs().smartScan(false);
            MergeDomain domain = engine.createDomain("d");
            byte[] image = MappedEngineTest.image(PAGES, 9);
            byte[] code = program();
            System.arraycopy(code, 0, image, RealModeGuest.CODE, code.length);
            List<MappedGuest> guests = new ArrayList<>();
            List<KvmVm> vms = new ArrayList<>();
            AtomicBoolean stop = new AtomicBoolean();
            ConcurrentLinkedQueue<Throwable> failures = new ConcurrentLinkedQueue<>();
            Thread scanner = new Thread(() -> {
                try {
                    while (!stop.get()) {
                        engine.scanner().scanBatch(64);
                    }
                } catch (Throwable t) {
                    failures.add(t);
                }
            }, "scanner");
            try {
                for (int g = 0; g < GUESTS; g++) {
                    MappedGuest guest = MappedGuest.create(engine, domain, "vm" + g, (long) PAGES * PAGE);
                    guest.guest().write(0, image, 0, image.length);
                    KvmVm vm = kvm.createVm();
                    vms.add(vm);
                    guest.attach(vm, 0, 0, true);
                    guests.add(guest);
                }
                long everyPageMerged = (long) (GUESTS - 1) * (PAGES - 1);       // every page but 0, the guest's own
                for (int g = 0; g < GUESTS; g++) {
                    guests.get(g).guest().write(0, new byte[] {(byte) g}, 0, 1);
                }
                scanner.start();
                CyclicBarrier round = new CyclicBarrier(GUESTS, () -> awaitSharing(engine, everyPageMerged, failures));
                awaitSharing(engine, everyPageMerged, failures);
                List<Thread> vcpus = new ArrayList<>();
                List<List<Integer>> reports = new ArrayList<>();
                for (int g = 0; g < GUESTS; g++) {
                    List<Integer> report = new ArrayList<>();
                    reports.add(report);
                    MappedGuest guest = guests.get(g);
                    KvmVm vm = vms.get(g);
                    Thread vcpu = new Thread(() -> {
                        try {
                            run(guest, vm, round, report);
                        } catch (Throwable t) {
                            failures.add(t);
                            round.reset();
                        }
                    }, "vcpu-" + g);
                    vcpus.add(vcpu);
                    vcpu.start();
                }
                for (Thread vcpu : vcpus) {
                    vcpu.join();
                }
                stop.set(true);
                scanner.join();
                assertTrue(failures.isEmpty(), () -> "failed: " + failures);

                List<Integer> expected = new ArrayList<>();
                for (int k = 1; k <= ITERATIONS; k++) {
                    expected.add(k);
                }
                for (int g = 0; g < GUESTS; g++) {
                    assertEquals(expected, reports.get(g), "guest " + g + " saw its own bytes in every round");
                    assertTrue(guests.get(g).writeExits() >= (long) COUNT * ITERATIONS,
                            "guest " + g + ": every round's first store to each page broke sharing: "
                                    + guests.get(g).writeExits());
                    byte[] want = image.clone();
                    want[0] = (byte) g;
                    for (int p = FIRST; p < FIRST + COUNT; p++) {
                        want[p * PAGE + 0x20] = ITERATIONS;
                        want[p * PAGE + 0x21] = ITERATIONS;
                    }
                    assertArrayEquals(want, MappedEngineTest.readAll(guests.get(g).guest()), "guest " + g);
                    assertArrayEquals(want, MappedEngineTest.readAll(guests.get(g).memory()), "guest " + g + " mappings");
                }
            } finally {
                stop.set(true);
                scanner.join();
                vms.forEach(KvmVm::close);
            }
        }
    }

    /** Runs one guest to its halt; at each report waits at the barrier; a failure report throws. */
    private static void run(MappedGuest guest, KvmVm vm, CyclicBarrier round, List<Integer> report)
            throws InterruptedException, BrokenBarrierException {
        Vcpu vcpu = vm.createVcpu(0);
        vcpu.setRealMode(RealModeGuest.CODE);
        for (VcpuExit exit = vcpu.run(); !(exit instanceof VcpuExit.Hlt); exit = vcpu.run()) {
            if (guest.handleExit(exit)) {
                continue;
            }
            if (!(exit instanceof VcpuExit.Io io)) {
                throw new AssertionError(guest.guest().name() + " exited unexpectedly: " + exit);
            }
            if (io.port() == FAIL_PORT) {
                throw new AssertionError(guest.guest().name() + " read back a byte it did not store, in round "
                        + (io.data()[0] & 0xFF));
            }
            report.add(io.data()[0] & 0xFF);
            round.await();
        }
    }

    /** Waits until pages_sharing reaches {@code target}: the scanner merged every equal page. */
    private static void awaitSharing(DedupEngine engine, long target, ConcurrentLinkedQueue<Throwable> failures) {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (engine.counters().pagesSharing() < target) {
            if (System.nanoTime() - deadline > 0 || !failures.isEmpty()) {
                throw new IllegalStateException("the scanner did not merge the guests' equal pages: pages_sharing "
                        + engine.counters().pagesSharing() + " of " + target);
            }
            Thread.onSpinWait();
        }
    }

    /**
     * Real mode, {@code bl} counting rounds: store {@code bl} at 0x20 of pages 4..11, then at 0x21, then
     * check all sixteen bytes (a mismatch reports {@code bl} on the failure port and halts), report
     * {@code bl} on the serial port, and loop until round {@value #ITERATIONS}.
     */
    private static byte[] program() {
        ByteArrayOutputStream code = new ByteArrayOutputStream();
        code.writeBytes(new byte[] {0x31, (byte) 0xDB});                              // xor %bx, %bx
        int loop = code.size();
        code.writeBytes(new byte[] {(byte) 0xFE, (byte) 0xC3});                       // inc %bl
        for (int offset : new int[] {0x20, 0x21}) {
            for (int p = FIRST; p < FIRST + COUNT; p++) {
                int address = p * PAGE + offset;
                code.writeBytes(new byte[] {(byte) 0x88, 0x1E, (byte) address, (byte) (address >> 8)}); // mov %bl, addr
            }
        }
        List<Integer> toFail = new ArrayList<>();
        for (int p = FIRST; p < FIRST + COUNT; p++) {
            for (int offset : new int[] {0x20, 0x21}) {
                int address = p * PAGE + offset;
                code.writeBytes(new byte[] {0x38, 0x1E, (byte) address, (byte) (address >> 8)}); // cmp %bl, addr
                code.writeBytes(new byte[] {0x74, 0x03});                                          // je +3
                toFail.add(code.size());
                code.writeBytes(new byte[] {(byte) 0xE9, 0, 0});                                   // jmp fail
            }
        }
        code.writeBytes(new byte[] {(byte) 0xBA, (byte) 0xF8, 0x03});                 // mov $0x3f8, %dx
        code.writeBytes(new byte[] {(byte) 0x88, (byte) 0xD8});                       // mov %bl, %al
        code.write(0xEE);                                                               // out %al, (%dx)
        code.writeBytes(new byte[] {(byte) 0x80, (byte) 0xFB, ITERATIONS});           // cmp $N, %bl
        code.writeBytes(new byte[] {0x74, 0x03});                                      // je done
        int back = loop - (code.size() + 3);
        code.writeBytes(new byte[] {(byte) 0xE9, (byte) back, (byte) (back >> 8)});   // jmp loop
        code.write(0xF4);                                                               // done: hlt
        int fail = code.size();
        code.writeBytes(new byte[] {(byte) 0xBA, (byte) 0xF9, 0x03});                 // fail: mov $0x3f9, %dx
        code.writeBytes(new byte[] {(byte) 0x88, (byte) 0xD8});                       // mov %bl, %al
        code.write(0xEE);                                                               // out %al, (%dx)
        code.write(0xF4);                                                               // hlt
        byte[] bytes = code.toByteArray();
        for (int at : toFail) {
            int rel = fail - (at + 3);
            bytes[at + 1] = (byte) rel;
            bytes[at + 2] = (byte) (rel >> 8);
        }
        return bytes;
    }
}
