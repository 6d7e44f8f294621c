/**
 * The density suite ({@code samepage bench density}), which tests the project's headline claim that
 * page deduplication plus a pre-load image index closes the density gap between VMs and containers.
 *
 * <p>For each N, the same guest content ({@link io.samepage.density.PageMix}: an image's blocks,
 * zeroed pages, unique pages, pages written after boot; seeded; the page mix {@code samepage demo}
 * uses too) is held five ways: (a) without
 * deduplication, (b) by the engine's scanner after load, (c) through the image index then the scanner
 * ({@link io.samepage.density.EngineModes}), (d) by kernel KSM on the same bytes in a helper process
 * ({@link io.samepage.density.KsmMode}, {@link io.samepage.density.KsmHelper}), and (e) as containers
 * of the image would hold it ({@link io.samepage.density.ContainerModel}, a model). Each mode reports
 * host bytes, and the timed ones the seconds and CPU-seconds until 99% of their final sharing
 * ({@link io.samepage.density.SharingTrace}); a straight line through the two largest N gives the guests
 * that fit in a budget ({@link io.samepage.density.Fit}). {@link io.samepage.density.DensitySuite} runs
 * it; {@link io.samepage.density.DensityReport} renders and writes the report and the chart. The report,
 * the chart and the must-show verdicts are computed from the measurements of the run that prints them,
 * never from constants. The engine modes' host memory is a model (frames x 4096 plus metadata), so each of
 * their runs also records what the kernel says of the same memory at the same moment ({@link
 * io.samepage.density.KernelView}: the pool mapping's pages, huge pages counted whole, and coarser
 * machine and cgroup figures), and a must-show says whether the two agree. The engine modes scan with
 * the engine's own rule for "merged until stable" ({@link io.samepage.core.Scanner#scanUntilStable}), the
 * one the CLI's {@code scan} and {@code demo} use.
 *
 * <p>Invariants: every mode sees byte-identical guest memory; kernel KSM is driven only under the
 * host-wide lock the end-to-end tests take, and its knobs are always restored and everything unmerged
 * afterwards. Rejected alternative: measuring (d) through QEMU guests. A helper process with private
 * anonymous mergeable memory gives KSM exactly the bytes the engine sees, with no guest kernel changing
 * them, and needs neither QEMU nor a guest image.
 *
 * <p>{@code samepage demo}'s two parts live here too, on the same page mix: {@link
 * io.samepage.density.ImageBoot} boots guests from one image without then with the index and checks
 * them against the image's files, and {@link io.samepage.density.DemoMerge} merges guests, writes to
 * merged pages and checks that every guest reads back what it wrote.
 *
 * <p>The CLI's {@code bench density} and {@code demo} commands hold only their options and output; this
 * module holds the rest. Nothing here is run by the test build except its own tests on tiny guests.
 */
package io.samepage.density;
