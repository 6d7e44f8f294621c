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
 */
package io.samepage.cli.internal.linux;
