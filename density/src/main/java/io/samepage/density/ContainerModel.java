package io.samepage.density;

import io.samepage.hashing.Pages;

/**
 * Mode (e), the container-equivalent: what N containers started from the same image would take, computed
 * from the content rather than measured. A model, stated here so the reader can disagree with it:
 *
 * <ul>
 *   <li>one copy of the image's resident pages: the page cache holds each block the guests load once,
 *       whatever the number of containers ({@code imagePages} pages, duplicate and all-zero blocks
 *       included: the page cache does not merge by content);</li>
 *   <li>plus each container's private pages: its unique pages and the image pages it wrote after boot
 *       (copy-on-write copies of the page cache);</li>
 *   <li>and nothing for the guests' zeroed pages: a container has no kernel of its own that zeroes
 *       free memory.</li>
 * </ul>
 * It leaves out what containers cost besides (page tables, the kernel's per-process structures), as
 * (a) leaves out a VMM's own overhead.
 */
final class ContainerModel {

    private ContainerModel() {
    }

    static ModeResult of(PageMix content, int n) {
        long pages = content.imagePages() + (long) n * content.privatePages();
        long touched = (long) n * content.pagesPerGuest();
        return ModeResult.untimed(Mode.CONTAINER, n, pages * Pages.PAGE_SIZE, touched - pages,
                "model: one copy of the image's loaded blocks plus each guest's private pages");
    }
}
