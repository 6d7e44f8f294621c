/**
 * The pre-load image index: a persisted SHA-256 digest per 4 KiB block of an image, a registry of
 * resident frames by digest, and a loader that maps resident blocks copy-on-write instead of reading
 * them.
 *
 * <p>Empty until its issue ("image-index: pre-load deduplication") lands.
 */
package io.samepage.image;
