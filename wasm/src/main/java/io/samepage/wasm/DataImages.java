package io.samepage.wasm;

import static com.dylibso.chicory.runtime.ConstantEvaluators.computeConstantValue;

import com.dylibso.chicory.runtime.Instance;
import com.dylibso.chicory.wasm.ChicoryException;
import com.dylibso.chicory.wasm.UninstantiableException;
import com.dylibso.chicory.wasm.WasmModule;
import com.dylibso.chicory.wasm.types.ActiveDataSegment;
import com.dylibso.chicory.wasm.types.DataSegment;
import com.dylibso.chicory.wasm.types.PassiveDataSegment;
import io.samepage.core.DedupException;
import io.samepage.core.PageInstaller;
import io.samepage.hashing.ContentDigest;
import io.samepage.hashing.Pages;
import java.lang.foreign.MemorySegment;
import java.lang.ref.Reference;
import java.lang.ref.ReferenceQueue;
import java.lang.ref.WeakReference;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * Data segments as an image: the pages a module's active data segments produce, each known by its
 * SHA-256 digest, so that the memories of many instances map the same frames copy-on-write.
 *
 * <p>An image is the set of non-zero 4 KiB pages that zero memory holds after its active segments are
 * written in order (a later segment overwrites an earlier one, as in {@code ByteArrayMemory}), keyed by
 * the segments themselves (by identity: Chicory hands every instance of a module the same segment
 * objects) and their evaluated offsets (which may come from imported globals). The first memory
 * initialized with an image installs its pages: each goes into a fresh frame, is checked against its
 * digest, mapped and registered as resident in the domain ({@link PageInstaller#install}). Later
 * memories map the registered frames ({@link PageInstaller#mapResident}) and copy nothing; a page whose
 * frame is gone (every instance that mapped it closed) or full ({@code max_page_sharing}) is installed
 * again from the image, and its new frame takes over the registration. Zero pages are left alone: they
 * map the zero frame and cost nothing.
 *
 * <p>A module's images (and its segments' bytes) are held while the {@code WasmModule} is reachable: a
 * module loaded, instantiated and dropped takes its images with it at the next GC, and one parsed again
 * makes its images again (mapping the frames still resident, by digest, if any instance holds them).
 *
 * <p>Bounds are checked segment by segment before anything is mapped, with {@code ByteArrayMemory}'s
 * {@link UninstantiableException}; a memory whose segments do not fit, or that was written before, is
 * initialized by plain writes in {@code ByteArrayMemory}'s order. An image the engine refuses part way
 * (a full pool) is taken off again, so the memory reads as zeros, as it did, not as some of its pages,
 * and the instantiation fails with the trap {@link OutOfFrames} makes.
 *
 * <p>Thread safety: {@link #initialize} is serialized on this object (the page installer is confined).
 */
final class DataImages {

    /** One image: engine pages, their digests (32 bytes each) and their bytes (to install again). */
    private record Image(int[] pages, byte[] digests, byte[][] contents) {
    }

    /** The segments (by identity) and offsets an image is made from. */
    private record Key(DataSegment[] segments, int[] offsets) {
        @Override
        public boolean equals(Object o) {
            if (!(o instanceof Key other) || other.segments.length != segments.length) {
                return false;
            }
            for (int i = 0; i < segments.length; i++) {
                if (segments[i] != other.segments[i]) {
                    return false;
                }
            }
            return Arrays.equals(offsets, other.offsets);
        }

        @Override
        public int hashCode() {
            int h = Arrays.hashCode(offsets);
            for (DataSegment s : segments) {
                h = 31 * h + System.identityHashCode(s);
            }
            return h;
        }
    }

    /**
     * One module's images and its segments' bytes, held while the module is reachable (weakly, by
     * identity: {@code WasmModule.equals} compares contents), so they leave the heap when it does.
     */
    private static final class ModuleImages extends WeakReference<WasmModule> {
        final int hash;
        final Map<Key, Image> images = new HashMap<>();
        /** Each segment's bytes, cloned once ({@code DataSegment.data()} clones at every call). */
        final Map<DataSegment, byte[]> data = new IdentityHashMap<>();
        long imageBytes;

        ModuleImages(WasmModule module, ReferenceQueue<WasmModule> gone) {
            super(module, gone);
            hash = System.identityHashCode(module);
        }

        byte[] bytesOf(DataSegment segment) {
            return data.computeIfAbsent(segment, DataSegment::data);
        }
    }

    private final PageInstaller installer;
    /** The modules with images, by identity hash (a bucket holds more than one only on a collision). */
    private final Map<Integer, List<ModuleImages>> modules = new HashMap<>();
    private final ReferenceQueue<WasmModule> gone = new ReferenceQueue<>();

    DataImages(PageInstaller installer) {
        this.installer = installer;
    }

    /** Heap bytes the images of reachable modules hold (their pages and the segments' bytes). */
    synchronized long heapBytes() {
        forgetGone();
        long bytes = 0;
        for (List<ModuleImages> bucket : modules.values()) {
            for (ModuleImages m : bucket) {
                bytes += m.imageBytes;
                for (byte[] d : m.data.values()) {
                    bytes += d.length;
                }
            }
        }
        return bytes;
    }

    /** The images of {@code module}, made empty at its first instance. */
    private ModuleImages of(WasmModule module) {
        forgetGone();
        List<ModuleImages> bucket = modules.computeIfAbsent(System.identityHashCode(module), h -> new ArrayList<>(1));
        for (ModuleImages m : bucket) {
            if (m.refersTo(module)) {
                return m;
            }
        }
        ModuleImages m = new ModuleImages(module, gone);
        bucket.add(m);
        return m;
    }

    /** Drops the images of modules that were collected. */
    private void forgetGone() {
        for (Reference<? extends WasmModule> r; (r = gone.poll()) != null; ) {
            ModuleImages m = (ModuleImages) r;
            List<ModuleImages> bucket = modules.get(m.hash);
            bucket.remove(m);
            if (bucket.isEmpty()) {
                modules.remove(m.hash);
            }
        }
    }

    /** Writes {@code segments}' active segments for {@code memoryIndex} into {@code memory}, as {@code ByteArrayMemory} does. */
    synchronized void initialize(SamepageMemory memory, Instance instance, DataSegment[] segments, int memoryIndex) {
        ModuleImages module = of(instance.module());
        List<DataSegment> active = new ArrayList<>();
        List<Integer> offsets = new ArrayList<>();
        int limit = memory.limitBytes();
        for (DataSegment s : segments) {
            if (s instanceof ActiveDataSegment segment) {
                if (segment.index() != memoryIndex) {
                    continue;
                }
                int offset = (int) computeConstantValue(instance, segment.offsetInstructions())[0];
                byte[] bytes = module.bytesOf(segment);
                try {
                    SamepageMemory.checkBounds(offset, bytes.length, limit, UninstantiableException::new);
                } catch (UninstantiableException e) {
                    writePlain(memory, module, active, offsets);
                    throw e;
                }
                active.add(segment);
                offsets.add(offset);
            } else if (!(s instanceof PassiveDataSegment)) {
                writePlain(memory, module, active, offsets);
                throw new ChicoryException("Data segment should be active or passive: " + s);
            }
        }
        if (active.isEmpty()) {
            return;
        }
        if (!memory.pristine()) {
            writePlain(memory, module, active, offsets);
            return;
        }
        Key key = new Key(active.toArray(new DataSegment[0]), offsets.stream().mapToInt(Integer::intValue).toArray());
        Image image = module.images.computeIfAbsent(key, k -> build(module, k));
        LinearPages pages = memory.pagesForImage();
        int i = 0;
        try {
            for (; i < image.pages.length; i++) {
                int at = i * ContentDigest.LENGTH;
                if (!pages.mapResident(installer, image.pages[i], image.digests, at)
                        && !pages.install(installer, image.pages[i], image.contents[i], image.digests, at)) {
                    throw new IllegalStateException("image page " + image.pages[i] + " does not match its own digest");
                }
            }
        } catch (RuntimeException | Error e) {
            unmap(pages, image, i, e);
            if (e instanceof DedupException refused) {
                throw OutOfFrames.imageTrap(refused, (long) image.pages[i] << Pages.PAGE_SHIFT);
            }
            throw e;
        }
    }

    /**
     * Takes the first {@code mapped} pages of a refused image (a full pool, say) off a memory that was all
     * zeros, so it is all zeros again, not part of the image: a page filled with zeros maps the zero frame
     * and needs none. (An imported memory is initialized too, and its exporter reads it.)
     */
    private static void unmap(LinearPages pages, Image image, int mapped, Throwable refused) {
        for (int i = 0; i < mapped; i++) {
            try {
                pages.fill((long) image.pages[i] << Pages.PAGE_SHIFT, Pages.PAGE_SIZE, (byte) 0);
            } catch (RuntimeException e) {
                refused.addSuppressed(e);
                return;
            }
        }
    }

    private static void writePlain(SamepageMemory memory, ModuleImages module, List<DataSegment> active,
                                   List<Integer> offsets) {
        for (int i = 0; i < active.size(); i++) {
            byte[] bytes = module.bytesOf(active.get(i));
            memory.write(offsets.get(i), bytes, 0, bytes.length);
        }
    }

    private static Image build(ModuleImages module, Key key) {
        TreeMap<Integer, byte[]> contents = new TreeMap<>();
        for (int k = 0; k < key.segments.length; k++) {
            byte[] bytes = module.bytesOf(key.segments[k]);
            long at = Integer.toUnsignedLong(key.offsets[k]);
            int done = 0;
            while (done < bytes.length) {
                int page = (int) ((at + done) >>> Pages.PAGE_SHIFT);
                int in = (int) ((at + done) & (Pages.PAGE_SIZE - 1));
                int chunk = Math.min(bytes.length - done, Pages.PAGE_SIZE - in);
                System.arraycopy(bytes, done, contents.computeIfAbsent(page, p -> new byte[Pages.PAGE_SIZE]), in, chunk);
                done += chunk;
            }
        }
        contents.values().removeIf(DataImages::isZero);
        int[] pages = new int[contents.size()];
        byte[] digests = new byte[pages.length * ContentDigest.LENGTH];
        byte[][] held = new byte[pages.length][];
        ContentDigest sha256 = new ContentDigest();
        int i = 0;
        for (Map.Entry<Integer, byte[]> e : contents.entrySet()) {
            pages[i] = e.getKey();
            held[i] = e.getValue();
            sha256.digest(MemorySegment.ofArray(held[i]), 0, digests, i * ContentDigest.LENGTH);
            i++;
        }
        module.imageBytes += (long) pages.length * (Pages.PAGE_SIZE + ContentDigest.LENGTH + 4);
        return new Image(pages, digests, held);
    }

    private static boolean isZero(byte[] page) {
        for (byte b : page) {
            if (b != 0) {
                return false;
            }
        }
        return true;
    }
}
