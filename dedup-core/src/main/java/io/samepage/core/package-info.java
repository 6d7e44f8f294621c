/**
 * The merging engine: frame pool, guest memory with copy-on-write, the scanner with KSM's stable and
 * unstable indexes, merge domains and the KSM counters.
 *
 * <p>Empty until its issue ("dedup-core: the merging engine") lands; the target design is in
 * {@code shared/ARCHITECTURE.md}, section "The engine in one paragraph".
 */
package io.samepage.core;
