/**
 * Internal: the only code in the CLI that calls the operating system. Not an API; nothing outside
 * {@code io.samepage.cli} may use it, and it may change without notice.
 *
 * <p>{@link io.samepage.cli.internal.linux.Terminals} asks libc's {@code isatty} whether a standard
 * stream is a terminal, so a progress bar goes to stderr only when a person watches it, whatever
 * stdin and stdout are. ({@code System.console()} answers for stdin and stdout, not for stderr: it
 * would draw a bar into {@code 2>log} and hide it behind {@code | tee}.)
 *
 * <h2>Why the call is safe</h2>
 * {@code int isatty(int fd)} takes a plain integer and returns one: no pointer crosses the boundary,
 * nothing is allocated or freed, and a descriptor that is closed or not a terminal just gives 0. It is
 * linked once, from the C library's default lookup; where it is missing or native access is denied
 * the class falls back to {@code System.console() != null}.
 *
 * <p>{@link io.samepage.cli.internal.linux.AnonymousMemory} maps private anonymous memory ({@code mmap}),
 * advises it ({@code madvise}: {@code MADV_MERGEABLE} for kernel KSM, {@code MADV_NOHUGEPAGE}) and unmaps
 * it, for the density suite's KSM helper process; {@link io.samepage.cli.internal.linux.ClockTicks} asks
 * {@code sysconf(_SC_CLK_TCK)} for the unit of {@code /proc/PID/stat}'s CPU times. The mapping is made by
 * the kernel at an address it picks, used only within its length, and unmapped once by its owner; errno
 * is captured with {@code Linker.Option.captureCallState} and reported.
 */
package io.samepage.cli.internal.linux;
