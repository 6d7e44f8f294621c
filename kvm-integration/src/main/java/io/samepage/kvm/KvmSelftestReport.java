package io.samepage.kvm;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/** A {@link KvmSelftest.Report} as {@code samepage kvm selftest} prints it: a table, or named fields for JSON. */
public final class KvmSelftestReport {

    private static final double MIB = 1 << 20;

    private KvmSelftestReport() {
    }

    /** The report as lines of text, a table of the three steps first. */
    public static String text(KvmSelftest.Report r) {
        StringBuilder s = new StringBuilder();
        s.append(String.format(Locale.ROOT, "KVM self-test: %d guests of %d MiB with identical memory, one merge "
                + "domain, dirty log on%n%n", r.guests(), r.guestBytes() >> 20));
        s.append(String.format(Locale.ROOT, "%-22s %18s %18s %18s%n", "", "before merging", "after merging",
                "after the writes"));
        s.append(String.format(Locale.ROOT, "%-22s %18d %18d %18d%n", "host frames (engine)",
                r.beforeMerging().hostFrames(), r.afterMerging().hostFrames(), r.afterWrites().hostFrames()));
        s.append(String.format(Locale.ROOT, "%-22s %18.1f %18.1f %18.1f%n", "memfd allocated (MiB)",
                r.beforeMerging().memfdAllocatedBytes() / MIB, r.afterMerging().memfdAllocatedBytes() / MIB,
                r.afterWrites().memfdAllocatedBytes() / MIB));
        s.append(String.format(Locale.ROOT, "%-22s %18.1f %18.1f %18.1f%n%n", "RssShmem (MiB)",
                r.beforeMerging().rssShmemBytes() / MIB, r.afterMerging().rssShmemBytes() / MIB,
                r.afterWrites().rssShmemBytes() / MIB));
        s.append(String.format(Locale.ROOT, "pages_sharing after merging: %d%n", r.pagesSharing()));
        s.append(String.format(Locale.ROOT, "guest kernel mappings after merging: %d (%.0f per GiB of guest memory)%n",
                r.guestMappings(), r.mappingsPerGib()));
        s.append(String.format(Locale.ROOT, "copy-on-write exits handled: %d%n", r.copyOnWriteExits()));
        s.append(String.format(Locale.ROOT, "pages rehashed by a full scan (dirty log): %d idle, %d after the writes%n",
                r.pagesHashedIdle(), r.pagesHashedAfterWrites()));
        if (r.mergingStopped() != null) {
            s.append("merging stopped: ").append(r.mergingStopped()).append('\n');
        }
        for (KvmSelftest.GuestResult g : r.perGuest()) {
            s.append(String.format(Locale.ROOT, "  %s: %d copy-on-write exits, serial output %s (expected %s), "
                    + "%d wrong bytes%n", g.name(), g.copyOnWriteExits(), g.output(), g.expectedOutput(), g.wrongBytes()));
        }
        s.append(r.wrongBytes() == 0 ? "every guest saw its own bytes: yes\n"
                : "every guest saw its own bytes: NO, " + r.wrongBytes() + " wrong bytes\n");
        return s.toString();
    }

    /** The report's figures under snake_case names, in order ({@code merging_stopped} null if it did not stop). */
    public static Map<String, Object> fields(KvmSelftest.Report r) {
        Map<String, Object> f = new LinkedHashMap<>();
        f.put("guests", r.guests());
        f.put("guest_bytes", r.guestBytes());
        f.put("before_merging", memory(r.beforeMerging()));
        f.put("after_merging", memory(r.afterMerging()));
        f.put("after_writes", memory(r.afterWrites()));
        f.put("pages_sharing", r.pagesSharing());
        f.put("guest_mappings", r.guestMappings());
        f.put("guest_mappings_per_gib", Math.round(r.mappingsPerGib()));
        f.put("copy_on_write_exits", r.copyOnWriteExits());
        f.put("pages_hashed_idle_full_scan", r.pagesHashedIdle());
        f.put("pages_hashed_full_scan_after_writes", r.pagesHashedAfterWrites());
        f.put("merging_stopped", r.mergingStopped());
        f.put("wrong_bytes", r.wrongBytes());
        f.put("every_guest_saw_its_own_bytes", r.wrongBytes() == 0);
        List<Map<String, Object>> perGuest = new ArrayList<>();
        for (KvmSelftest.GuestResult g : r.perGuest()) {
            Map<String, Object> guest = new LinkedHashMap<>();
            guest.put("name", g.name());
            guest.put("copy_on_write_exits", g.copyOnWriteExits());
            guest.put("serial_output", g.output());
            guest.put("expected_serial_output", g.expectedOutput());
            guest.put("wrong_bytes", g.wrongBytes());
            perGuest.add(guest);
        }
        f.put("per_guest", perGuest);
        return f;
    }

    private static Map<String, Object> memory(KvmSelftest.Memory m) {
        Map<String, Object> f = new LinkedHashMap<>();
        f.put("host_frames", m.hostFrames());
        f.put("memfd_allocated_bytes", m.memfdAllocatedBytes());
        f.put("rss_shmem_bytes", m.rssShmemBytes());
        return f;
    }
}
