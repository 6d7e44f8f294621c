package io.samepage.core;

import io.samepage.core.AllocationFaultScenario.Step;
import io.samepage.hashing.ContentDigest;
import io.samepage.hashing.Pages;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.IntStream;

/**
 * The steps of {@link AllocationFaultScenario}'s shapes: each what it does to the engine and what it
 * does to what the guests must read. Contents are pages of one tag each ({@link #content}).
 */
final class AllocationFaultShapes {

    static final String CLOSE = "close the engine";
    private static final int PAGE = Pages.PAGE_SIZE;
    private static final int INSTALLED = 20;

    private AllocationFaultShapes() {
    }

    /** A page of {@code tag}; 0 is all zeros. */
    static byte[] content(int tag) {
        byte[] bytes = new byte[PAGE];
        if (tag != 0) {
            Arrays.fill(bytes, (byte) tag);
            bytes[1] = (byte) (tag >>> 8);
            bytes[7] = 1;
        }
        return bytes;
    }

    private static byte[] pages(int... tags) {
        byte[] bytes = new byte[tags.length * PAGE];
        for (int i = 0; i < tags.length; i++) {
            System.arraycopy(content(tags[i]), 0, bytes, i * PAGE, PAGE);
        }
        return bytes;
    }

    private static byte[] digest(int tag) {
        return new ContentDigest().digest(MemorySegment.ofArray(content(tag)), 0);
    }

    private static Step createDomain(String name) {
        return new Step("create domain " + name, w -> w.domains.put(name, w.engine.createDomain(name)),
                m -> m.domains.add(name));
    }

    private static Step createGuest(String domain, String name, int pages, boolean mapped) {
        return new Step("create " + (mapped ? "mapped " : "") + "guest " + name, w -> {
            PageMapping.Factory factory = !mapped ? null : (first, count) -> {
                RecordingMapping mapping = new RecordingMapping(first, count);
                w.mappings.put(name, mapping);
                return mapping;
            };
            w.add(w.engine.createGuest(w.domains.get(domain), name, (long) pages * PAGE, factory));
        }, m -> m.guests.put(name, new byte[pages * PAGE]));
    }

    private static Step write(String name, long address, byte[] bytes) {
        return new Step("write " + bytes.length + " bytes to " + name + " at 0x" + Long.toHexString(address),
                w -> w.guest(name).write(address, bytes, 0, bytes.length),
                m -> System.arraycopy(bytes, 0, m.guests.get(name), (int) address, bytes.length));
    }

    /** Installs content {@code tag} at {@code page} with the world's installer (made by the first install). */
    private static Step install(String name, int page, int tag) {
        return new Step("install " + name + " page " + page, w -> {
            if (w.installer == null) {
                w.installer = w.engine.newPageInstaller();
            }
            if (!w.installer.install(w.guest(name), (long) page * PAGE,
                    bytes -> bytes.copyFrom(MemorySegment.ofArray(content(tag))), digest(tag), 0)) {
                throw new IllegalStateException("the install found its bytes unlike their digest");
            }
        }, m -> System.arraycopy(content(tag), 0, m.guests.get(name), page * PAGE, PAGE));
    }

    /** Maps {@code page} to the resident frame of content {@code tag}, with an installer of its own. */
    private static Step mapResident(String name, int page, int tag) {
        return new Step("map " + name + " page " + page + " to a resident frame", w -> {
            if (!w.engine.newPageInstaller().mapResident(w.guest(name), (long) page * PAGE, digest(tag), 0)) {
                throw new IllegalStateException("no resident frame for content " + tag);
            }
        }, m -> System.arraycopy(content(tag), 0, m.guests.get(name), page * PAGE, PAGE));
    }

    private static Step scan(String what) {
        return new Step("scan: " + what, w -> w.engine.scanner().scanFullPass(), m -> { });
    }

    private static Step destroy(String name) {
        return new Step("destroy " + name, w -> w.guest(name).destroy(), m -> m.guests.remove(name));
    }

    /**
     * An engine's life: two domains; software guests and a mapped one; writes with equal, unique and
     * zero pages; scans that merge them into chains ({@code max_page_sharing} 3); copy-on-write through a
     * write, a {@link GuestAccess}, {@link Guest#breakSharing}, a copy and a {@link GuestChain}; an image
     * install and a resident mapping ({@link PageInstaller}); destroys and a creation that reuses page
     * ids; {@code run=2} and merging again.
     */
    static List<Step> life() {
        List<Step> steps = new ArrayList<>();
        steps.add(createDomain("a"));
        steps.add(createDomain("b"));
        steps.add(createGuest("a", "vm0", 6, false));
        steps.add(createGuest("a", "vm1", 6, false));
        steps.add(createGuest("a", "vm2", 4, false));
        steps.add(createGuest("b", "vm3", 4, false));
        steps.add(createGuest("a", "kvm", 4, true));
        steps.add(write("vm0", 0, pages(5, 6, 7, 5, 0, 8)));
        steps.add(write("vm1", 0, pages(5, 6, 9, 5, 10, 11)));
        steps.add(write("vm2", 0, pages(6, 12, 0, 13)));
        steps.add(write("vm3", 0, pages(5, 6, 14, 0)));
        steps.add(write("kvm", 0, pages(5, 9, 15, 0)));
        steps.add(scan("first visits"));
        steps.add(scan("merges"));
        steps.add(write("vm0", 100, Arrays.copyOf(content(30), 64)));
        steps.add(new Step("write a long through vm1's access", w -> w.guest("vm1").access().writeLong(PAGE + 8, 42L),
                m -> MemorySegment.ofArray(m.guests.get("vm1")).set(ValueLayout.JAVA_LONG_UNALIGNED, PAGE + 8, 42L)));
        steps.add(new Step("break kvm page 0's sharing", w -> w.guest("kvm").breakSharing(0), m -> { }));
        steps.add(new Step("copy vm1 page 3 to vm2 page 3", w -> w.guest("vm1").copy(3L * PAGE, w.guest("vm2"), 3L * PAGE, PAGE),
                m -> System.arraycopy(m.guests.get("vm1"), 3 * PAGE, m.guests.get("vm2"), 3 * PAGE, PAGE)));
        steps.add(new Step("write across vm0 and vm1 as a chain",
                w -> new GuestChain(w.guest("vm0"), w.guest("vm1")).write(6L * PAGE - 10, content(31), 0, 20), m -> {
                    System.arraycopy(content(31), 0, m.guests.get("vm0"), 6 * PAGE - 10, 10);
                    System.arraycopy(content(31), 10, m.guests.get("vm1"), 0, 10);
                }));
        steps.add(install("vm2", 1, INSTALLED));
        steps.add(mapResident("vm0", 2, INSTALLED));
        steps.add(destroy("vm1"));
        steps.add(createGuest("a", "vm4", 4, false));
        steps.add(write("vm4", 0, pages(6, 5, INSTALLED, 21)));
        steps.add(scan("first visits of vm4"));
        steps.add(scan("merges vm4"));
        steps.add(new Step("fill vm3 page 2 with zeros", w -> w.guest("vm3").fill(2L * PAGE, PAGE, (byte) 0),
                m -> Arrays.fill(m.guests.get("vm3"), 2 * PAGE, 3 * PAGE, (byte) 0)));
        steps.add(new Step("run=2", w -> w.engine.knobs().run(ScanKnobs.RUN_UNMERGE), m -> { }));
        steps.add(new Step("a duty cycle that unmerges everything", w -> w.engine.scanner().doWork(), m -> { }));
        steps.add(new Step("run=1", w -> w.engine.knobs().run(ScanKnobs.RUN_MERGE), m -> { }));
        steps.add(scan("first visits after run=2"));
        steps.add(scan("merges again"));
        steps.add(destroy("vm2"));
        steps.add(destroy("kvm"));
        return steps;
    }

    /** Tags {@code from} to {@code to}, a page each. */
    private static byte[] tags(int from, int to) {
        return pages(IntStream.rangeClosed(from, to).toArray());
    }

    /**
     * One domain whose indexes and registry grow: 160 contents in pairs (the stable index's buckets
     * double), 64 more whose keys collide with theirs under the scanner's weak hash (collision trees),
     * chains of full frames at {@code max_page_sharing} 2, 70 installs (the registry's maps and digests
     * grow), resident mappings, a destroy and merging again.
     */
    static List<Step> crowded() {
        List<Step> steps = new ArrayList<>();
        steps.add(createDomain("a"));
        steps.add(createGuest("a", "g0", 160, false));
        steps.add(createGuest("a", "g1", 160, false));
        steps.add(createGuest("a", "g2", 64, false));
        steps.add(createGuest("a", "g3", 8, false));
        steps.add(createGuest("a", "g4", 70, false));
        steps.add(createGuest("a", "g5", 8, false));
        steps.add(write("g0", 0, tags(1, 160)));
        steps.add(write("g1", 0, tags(1, 160)));     // pairs: the stable index's buckets double at the 129th
        steps.add(write("g2", 0, tags(257, 320)));   // first bytes 1 to 64: their keys are those of tags 1 to 64
        steps.add(write("g3", 0, pages(5, 5, 270, 270, 270, 9, 9, 9)));     // chains of full frames
        steps.add(scan("first visits"));
        steps.add(scan("merges"));
        for (int i = 0; i < 70; i++) {              // the registry's maps grow past 41 frames, its digests past 64
            steps.add(install("g4", i, 500 + i));
        }
        for (int i = 0; i < 4; i++) {
            steps.add(mapResident("g5", i, 500 + i));
        }
        steps.add(write("g0", 10L * PAGE + 5, new byte[] {1, 2, 3}));
        steps.add(new Step("fill g1 pages 100 to 109 with zeros", w -> w.guest("g1").fill(100L * PAGE, 10L * PAGE, (byte) 0),
                m -> Arrays.fill(m.guests.get("g1"), 100 * PAGE, 110 * PAGE, (byte) 0)));
        steps.add(destroy("g1"));
        steps.add(scan("first visits after the destroy"));
        steps.add(scan("merges after the destroy"));
        steps.add(destroy("g3"));
        return steps;
    }

    /** Mapped and software guests, merged, then the engine closed ({@link #CLOSE}). */
    static List<Step> closing() {
        List<Step> steps = new ArrayList<>();
        steps.add(createDomain("a"));
        steps.add(createGuest("a", "m0", 4, true));
        steps.add(createGuest("a", "s0", 4, false));
        steps.add(createGuest("a", "m1", 4, true));
        steps.add(write("m0", 0, pages(5, 6, 7, 0)));
        steps.add(write("s0", 0, pages(5, 6, 8, 9)));
        steps.add(write("m1", 0, pages(5, 7, 8, 10)));
        steps.add(scan("first visits"));
        steps.add(scan("merges"));
        steps.add(new Step(CLOSE, w -> w.engine.close(), m -> { }));
        return steps;
    }
}
