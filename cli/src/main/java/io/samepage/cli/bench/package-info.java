/**
 * {@code samepage bench}: the commands that run Samepage's measurements. They parse and check their
 * options, call the density module ({@link io.samepage.density.DensitySuite}), print the report and map
 * its errors to exit codes; the measuring is the density module's.
 */
package io.samepage.cli.bench;
