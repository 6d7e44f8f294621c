package io.samepage.kvm;

import io.samepage.core.DedupEngine;
import io.samepage.core.EngineContext;
import io.samepage.core.MergeDomain;
import java.io.ByteArrayOutputStream;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

/**
 * A self-test of KVM over mapped guest memory ({@code samepage kvm selftest} prints it): guests with identical memory run under KVM on mapped guest
 * memory, the engine merges them, each writes to merged pages, and every byte is checked.
 *
 * <p>Each guest is {@value #PAGES} pages (16 MiB) of guest physical memory, all of it one memory slot
 * with a dirty log: page 0 holds the guest's id at {@code 0x500} (so it is the one page that differs),
 * page 1 a 16-bit real-mode program, pages 2 and 3 nothing, and pages 4 on the same pseudo-random
 * content in every guest, like an operating system image they all booted. The program writes its id
 * into merged pages {@link #WRITTEN_PAGES} (each write exits, and {@link MappedGuest#handleExit} breaks
 * sharing through the engine), reads each back and sends it to the serial port, then sends a byte of
 * page {@value #UNTOUCHED_PAGE}, which it never wrote, and halts. Then the whole memory of every guest
 * is compared with what it must hold.
 *
 * <p>Not thread safe: one run per instance, on the caller's thread (vCPUs run one after the other).
 */
public final class KvmSelftest {

    public static final int PAGES = 4096;
    public static final int PAGE = MemfdFrames.FRAME_BYTES;
    public static final int[] WRITTEN_PAGES = {4, 6, 8, 10};
    public static final int UNTOUCHED_PAGE = 5;
    private static final int CODE_ADDRESS = 0x1000;
    private static final int ID_ADDRESS = 0x500;
    private static final int BYTE_IN_PAGE = 0x20;
    private static final int SERIAL_PORT = 0x3F8;
    private static final int FIRST_IMAGE_PAGE = 4;
    private static final int MAX_SCANS = 16;

    /** What one guest did and saw. */
    public record GuestResult(String name, long copyOnWriteExits, List<Integer> expectedOutput, List<Integer> output,
                       long wrongBytes) {
    }

    /** Host memory at one step: the engine's frames, the memfd's blocks, this process's RssShmem. */
    public record Memory(long hostFrames, long memfdAllocatedBytes, long rssShmemBytes) {
        public static Memory of(DedupEngine engine) {
            return new Memory(engine.framesInUse(), MappedGuest.allocatedBytes(engine), MemfdFrames.rssShmemBytes());
        }
    }

    /** The whole run. {@code wrongBytes} counts bytes of memory and of serial output that were not as written. */
    public record Report(int guests, long guestBytes, Memory beforeMerging, Memory afterMerging, Memory afterWrites,
                  long pagesSharing, long guestMappings, long pagesHashedIdle, long pagesHashedAfterWrites,
                  long copyOnWriteExits, long wrongBytes, String mergingStopped, List<GuestResult> perGuest) {

        public double mappingsPerGib() {
            return guestMappings / (guests * (double) guestBytes / (1L << 30));
        }
    }

    private KvmSelftest() {
    }

    /**
     * Runs {@code guests} guests.
     *
     * @throws io.samepage.kvm.KvmException    if KVM or memfds are unusable here, or refuse a call
     * @throws io.samepage.core.DedupException if the engine refuses
     */
    public static Report run(int guests) {
        byte[] image = image();
        byte[] code = program();
        List<MappedGuest> mapped = new ArrayList<>();
        List<KvmVm> vms = new ArrayList<>();
        EngineContext context = new EngineContext().poolBytes((long) (guests * (PAGES + 8) + 64) * PAGE)
                .warmFrames(0).frameBacking(MappedGuest.memfdBacking("samepage-selftest"));
        context.knobs().smartScan(false);
        try (Kvm kvm = Kvm.open(); DedupEngine engine = DedupEngine.create(context.conclude())) {
            try {
                MergeDomain domain = engine.createDomain("selftest");
                for (int g = 0; g < guests; g++) {
                    MappedGuest guest = MappedGuest.create(engine, domain, "vm" + g, (long) PAGES * PAGE);
                    guest.guest().write(0, image, 0, image.length);
                    guest.guest().write(CODE_ADDRESS, code, 0, code.length);
                    guest.guest().write(ID_ADDRESS, new byte[] {id(g)}, 0, 1);
                    KvmVm vm = kvm.createVm();
                    vms.add(vm);
                    guest.attach(vm, 0, 0, true);
                    mapped.add(guest);
                }
                Memory before = Memory.of(engine);
                mergeUntilStable(engine);
                Memory merged = Memory.of(engine);
                long sharing = engine.counters().pagesSharing();
                long mappings = 0;
                for (MappedGuest guest : mapped) {
                    mappings += guest.memory().kernelMappings();
                }
                long idleHashed = hashedInOneFullScan(engine);

                List<GuestResult> results = new ArrayList<>();
                long wrong = 0;
                long exits = 0;
                for (int g = 0; g < guests; g++) {
                    GuestResult result = runAndCheck(mapped.get(g), vms.get(g), g, image);
                    results.add(result);
                    wrong += result.wrongBytes();
                    exits += result.copyOnWriteExits();
                }
                Memory written = Memory.of(engine);
                long writtenHashed = hashedInOneFullScan(engine);
                String stopped = mapped.stream().map(MappedGuest::mergingStopped).filter(m -> m != null)
                        .findFirst().orElse(null);
                return new Report(guests, (long) PAGES * PAGE, before, merged, written, sharing, mappings, idleHashed,
                        writtenHashed, exits, wrong, stopped, results);
            } finally {
                vms.forEach(KvmVm::close);
            }
        }
    }

    /** Runs guest {@code g} to its halt, handling its write exits, then compares its output and memory. */
    private static GuestResult runAndCheck(MappedGuest guest, KvmVm vm, int g, byte[] image) {
        Vcpu vcpu = vm.createVcpu(0);
        vcpu.setRealMode(CODE_ADDRESS);
        List<Integer> output = new ArrayList<>();
        for (VcpuExit exit = vcpu.run(); !(exit instanceof VcpuExit.Hlt); exit = vcpu.run()) {
            if (guest.handleExit(exit)) {
                continue;
            }
            if (!(exit instanceof VcpuExit.Io io) || !io.out() || io.port() != SERIAL_PORT) {
                throw new IllegalStateException(guest.guest().name() + " stopped with an exit the self-test does not "
                        + "expect: " + exit);
            }
            output.add(io.data()[0] & 0xFF);
        }
        List<Integer> expectedOutput = new ArrayList<>();
        byte[] expected = image.clone();
        byte[] code = program();
        System.arraycopy(code, 0, expected, CODE_ADDRESS, code.length);
        expected[ID_ADDRESS] = id(g);
        for (int page : WRITTEN_PAGES) {
            expected[page * PAGE + BYTE_IN_PAGE] = id(g);
            expectedOutput.add(id(g) & 0xFF);
        }
        expectedOutput.add(image[UNTOUCHED_PAGE * PAGE + BYTE_IN_PAGE] & 0xFF);
        byte[] seen = new byte[expected.length];
        guest.guest().read(0, seen, 0, seen.length);
        long wrong = 0;
        for (int i = 0; i < seen.length; i++) {
            if (seen[i] != expected[i]) {
                wrong++;
            }
        }
        for (int i = 0; i < Math.max(output.size(), expectedOutput.size()); i++) {
            if (i >= output.size() || i >= expectedOutput.size() || !output.get(i).equals(expectedOutput.get(i))) {
                wrong++;
            }
        }
        return new GuestResult(guest.guest().name(), guest.writeExits(), expectedOutput, output, wrong);
    }

    /** Full scans until two in a row merge nothing. */
    private static void mergeUntilStable(DedupEngine engine) {
        int quiet = 0;
        for (int scan = 0; scan < MAX_SCANS && quiet < 2; scan++) {
            long merges = engine.scanner().merges();
            engine.scanner().scanFullPass();
            quiet = engine.scanner().merges() == merges ? quiet + 1 : 0;
        }
    }

    private static long hashedInOneFullScan(DedupEngine engine) {
        long before = engine.scanner().pagesHashed();
        engine.scanner().scanFullPass();
        return engine.scanner().pagesHashed() - before;
    }

    /** Every guest's memory before it runs: the same image from page 4 on, with a zero where each id goes. */
    private static byte[] image() {
        byte[] image = new byte[PAGES * PAGE];
        byte[] content = new byte[(PAGES - FIRST_IMAGE_PAGE) * PAGE];
        new SplittableRandom(7).nextBytes(content);
        System.arraycopy(content, 0, image, FIRST_IMAGE_PAGE * PAGE, content.length);
        for (int page : WRITTEN_PAGES) {
            image[page * PAGE + BYTE_IN_PAGE] = 0;
        }
        return image;
    }

    /** A guest's id byte: never 0, so a lost write shows. */
    private static byte id(int guest) {
        return (byte) (0x10 + guest);
    }

    /** The real-mode program: write the id to each written page, read each back to the serial port, then the untouched one. */
    static byte[] program() {
        ByteArrayOutputStream code = new ByteArrayOutputStream();
        code.writeBytes(new byte[] {(byte) 0xA0, (byte) ID_ADDRESS, (byte) (ID_ADDRESS >> 8)});    // mov id, %al
        for (int page : WRITTEN_PAGES) {
            int address = page * PAGE + BYTE_IN_PAGE;
            code.writeBytes(new byte[] {(byte) 0xA2, (byte) address, (byte) (address >> 8)});      // mov %al, addr
        }
        code.writeBytes(new byte[] {(byte) 0xBA, (byte) SERIAL_PORT, (byte) (SERIAL_PORT >> 8)}); // mov port, %dx
        int[] reads = Arrays.copyOf(WRITTEN_PAGES, WRITTEN_PAGES.length + 1);
        reads[WRITTEN_PAGES.length] = UNTOUCHED_PAGE;
        for (int page : reads) {
            int address = page * PAGE + BYTE_IN_PAGE;
            code.writeBytes(new byte[] {(byte) 0xA0, (byte) address, (byte) (address >> 8)});      // mov addr, %al
            code.write(0xEE);                                                                        // out %al, %dx
        }
        code.write(0xF4);                                                                            // hlt
        return code.toByteArray();
    }
}
