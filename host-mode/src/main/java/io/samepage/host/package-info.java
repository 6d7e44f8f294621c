/**
 * Host mode: what merging would save in live processes and QEMU guests, read without disturbing them,
 * and kernel KSM driven from its sysfs files. Needs no engine frames: it reads, hashes and counts. The
 * one native call it needs, the zero-page probe, is in the internal {@code io.samepage.linux} module;
 * the {@code /proc} files are read with the JDK's file channels.
 *
 * <h2>Host mode: reading live processes</h2>
 * {@link io.samepage.host.ProcessMemory} reads another process's memory without disturbing it, so the
 * engine can estimate what merging would save there ({@code samepage scan --pid}, {@code --qemu}):
 * {@link io.samepage.host.MemoryMaps} parses {@code /proc/PID/maps} into
 * {@link io.samepage.host.MemoryRegion}s, {@link io.samepage.linux.PageMapEntry} decodes
 * {@code /proc/PID/pagemap}, and only the pages pagemap shows present are copied, from
 * {@code /proc/PID/mem}, one read per run of contiguous pages, in batches of up to 1 MiB. A page that is not present, swapped out or
 * mapping the kernel's zero page costs the host no RAM of its own; it is counted apart and never read,
 * because reading it would fault it in. {@link io.samepage.host.QemuGuests} finds QEMU processes and the
 * mapping that holds each guest's RAM. What kernel KSM achieves for the same process now
 * ({@link io.samepage.host.KernelKsm#ksmStat}) is shown beside the estimate.
 *
 * <p>Why {@code /proc/PID/mem} and not {@code process_vm_readv}: both need ptrace attach rights and copy
 * once, but {@code process_vm_readv} pins each page read-only, and since Linux 5.19 the kernel first
 * gives a read-only pin an exclusive copy of any anonymous page that is not the process's alone, a KSM
 * page included: every read of a merged page unmerged it, so a scan after KSM, or the policy loop's
 * estimate every interval, undid KSM's work ({@code ScanLeavesKsmMergesTest} in the end-to-end tests).
 * {@code /proc/PID/mem} takes a plain reference instead. It reads one contiguous range per call, so
 * scattered resident pages cost one call per run, and with {@code FOLL_FORCE}, which matters only for
 * mappings without read permission, and those are never read. Rejected: stopping the target (ptrace
 * attach) for a consistent snapshot; an estimate does not need one, and a stopped VM is an outage.
 *
 * <h2>Host mode: the estimate without page copies</h2>
 * {@link io.samepage.host.PageDigestEstimator} takes the pages read and keeps one 128-bit keyed digest
 * per page ({@link io.samepage.hashing.PageDigest}) in {@code DigestTable}, one {@code long[]} of open
 * addressing (at most 32 bytes per page, no object per page), with the set of guests that hold each
 * content ({@code GuestSets}); {@code KsmTotals} turns the counts into KSM's counters at steady state
 * under {@code max_page_sharing}. Rejected: copying the pages into an engine and merging them, exact
 * but as large as the guests. The same read fills each guest's placement sketch
 * ({@link io.samepage.host.GuestSketch}: the bottom 256 of its pages' public
 * {@link io.samepage.hashing.PageDigest#sketchHash}), which compares guests across hosts, as a guest
 * loaded from a file gets it too.
 *
 * <p>{@link io.samepage.host.HostException} is the module's one error type; reading a process fails
 * with its {@link io.samepage.host.ProcessScanException} kind.
 *
 * <h2>Host mode: kernel KSM</h2>
 * {@link io.samepage.host.KernelKsm} reads every file of {@code /sys/kernel/mm/ksm} and
 * {@code /proc/PID/ksm_stat}, and writes knobs after checking them with mm/ksm.c's own rules, in an
 * order that stops first and starts last (its class comment says why). {@link io.samepage.host.KsmTuner}
 * is a ksmtuned-style policy on top: it estimates what merging the mergeable processes would save
 * ({@link io.samepage.host.MergeableEstimate}: each resident mergeable page read once through
 * {@code ProcessMemory} into the streaming estimator's digests, none kept, none read again) and stops KSM or
 * sets its rate. {@link io.samepage.host.KsmPolicyLoop} runs that policy on an interval for a daemon:
 * {@link io.samepage.host.KsmPolicy} adds {@code max_page_sharing} and a back-off when ksmd
 * ({@link io.samepage.host.Ksmd}) costs more CPU than its budget, and the loop restores every knob it
 * changed when it stops. {@code KernelKsm} is plain file I/O, no native call;
 * kernel KSM control fails with the {@link io.samepage.host.KernelKsmException} kind of
 * {@link io.samepage.host.HostException}.
 */
package io.samepage.host;
