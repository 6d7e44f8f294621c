/**
 * Page fingerprints over {@link java.lang.foreign.MemorySegment}: keyed fast hashes, SHA-256 digests,
 * the zero test and page equality.
 */
module io.samepage.hashing {
    requires com.dynatrace.hash4j;
    requires org.lz4.java;

    exports io.samepage.hashing;
}
