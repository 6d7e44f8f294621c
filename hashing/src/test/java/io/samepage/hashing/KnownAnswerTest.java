package io.samepage.hashing;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.dynatrace.hash4j.hashing.Hashing;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.util.HexFormat;
import java.util.zip.CRC32C;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;
import net.jpountz.xxhash.XXHashFactory;
import org.junit.jupiter.api.Test;

/**
 * Each algorithm against its published test vectors, then each page hasher against the library
 * function it claims to compute, over a whole 4 KiB page. Sources: xxHash's xsum_sanity_check.c
 * (XXH64, XXH3), komihash's README, RFC 3720 appendix B.4 and the CRC catalogue (CRC32C), FIPS 180-2
 * (SHA-256 "abc"); the 4 KiB SHA-256 vectors were checked with coreutils' sha256sum.
 */
class KnownAnswerTest {

    private static final long PRIME32 = 2654435761L;
    private static final long PRIME64 = 0x9E3779B185EBCA8DL;

    @Test
    void xxh64MatchesPublishedVectors() {
        var xxh64 = XXHashFactory.safeInstance().hash64();
        assertEquals(0xEF46DB3751D8E999L, xxh64.hash(new byte[0], 0, 0, 0));
        assertEquals(0xAC75FDA2929B17EFL, xxh64.hash(new byte[0], 0, 0, PRIME32));
        assertEquals(0xD24EC4F1A98C6E5BL, xxh64.hash(ascii("a"), 0, 1, 0));
        assertEquals(0x44BC2CF5AD770999L, xxh64.hash(ascii("abc"), 0, 3, 0));
        byte[] sanity = xxh64SanityBuffer(101);
        assertEquals(0x4FCE394CC88952D8L, xxh64.hash(sanity, 0, 1, 0));
        assertEquals(0x739840CB819FA723L, xxh64.hash(sanity, 0, 1, PRIME32));
        assertEquals(0xCFFA8DB881BC3A3DL, xxh64.hash(sanity, 0, 14, 0));
        assertEquals(0x5B9611585EFCC9CBL, xxh64.hash(sanity, 0, 14, PRIME32));
        assertEquals(0x0EAB543384F878ADL, xxh64.hash(sanity, 0, 101, 0));
        assertEquals(0xCAA65939306F1E21L, xxh64.hash(sanity, 0, 101, PRIME32));
    }

    @Test
    void xxh3MatchesPublishedVectors() {
        assertEquals(0x2D06800538D394C2L, Hashing.xxh3_64().hashBytesToLong(new byte[0]));
        assertEquals(0xA8A6B918B2F0364AL, Hashing.xxh3_64(PRIME64).hashBytesToLong(new byte[0]));
        byte[] sanity = xxh3SanityBuffer(195);
        assertEquals(0xC44BDFF4074EECDBL, Hashing.xxh3_64().hashBytesToLong(sanity, 0, 1));
        assertEquals(0x032BE332DD766EF8L, Hashing.xxh3_64(PRIME64).hashBytesToLong(sanity, 0, 1));
        assertEquals(0x397DA259ECBA1F11L, Hashing.xxh3_64().hashBytesToLong(sanity, 0, 48));
        assertEquals(0xCD94217EE362EC3AL, Hashing.xxh3_64().hashBytesToLong(sanity, 0, 195));
        assertEquals(0xBA68003D370CB3D9L, Hashing.xxh3_64(PRIME64).hashBytesToLong(sanity, 0, 195));
    }

    @Test
    void komihashMatchesPublishedVectors() {
        assertEquals(0x05AD960802903A9DL, Hashing.komihash5_0(0).hashBytesToLong(ascii("This is a 32-byte testing string")));
        assertEquals(0x2C514F6E5DCB11CBL, Hashing.komihash5_0(0).hashBytesToLong(ascii("7 chars")));
        assertEquals(0x6CE66A2E8D4979A5L,
                Hashing.komihash5_0(0x0123456789ABCDEFL).hashBytesToLong(ascii("This is a 32-byte testing string")));
        byte[] bulk = new byte[256];
        for (int i = 0; i < bulk.length; i++) {
            bulk[i] = (byte) i;
        }
        assertEquals(0x94C3DBDCA59DDF57L, Hashing.komihash5_0(0).hashBytesToLong(bulk));
        assertEquals(0x90B07E2158F88CC0L, Hashing.komihash5_0(0).hashBytesToLong(bulk, 0, 64));
    }

    @Test
    void crc32cMatchesPublishedVectors() {
        assertEquals(0xE3069283L, crc32c(ascii("123456789")));
        byte[] ascending = new byte[32];
        byte[] descending = new byte[32];
        byte[] ones = new byte[32];
        for (int i = 0; i < 32; i++) {
            ascending[i] = (byte) i;
            descending[i] = (byte) (31 - i);
            ones[i] = (byte) 0xFF;
        }
        assertEquals(0x8A9136AAL, crc32c(new byte[32]));
        assertEquals(0x62A8AB43L, crc32c(ones));
        assertEquals(0x46DD794EL, crc32c(ascending));
        assertEquals(0x113FDB5CL, crc32c(descending));
    }

    @Test
    void sha256MatchesPublishedVectors() throws Exception {
        assertEquals("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
                HexFormat.of().formatHex(java.security.MessageDigest.getInstance("SHA-256").digest(ascii("abc"))));
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment page = arena.allocate(Pages.PAGE_SIZE);
            ContentDigest digest = new ContentDigest();
            assertEquals("ad7facb2586fc6e966c004d7d1d16b024f5805ff7cb47c7a85dabd8b48892ca7",
                    HexFormat.of().formatHex(digest.digest(page, 0)));
            for (int i = 0; i < Pages.PAGE_SIZE; i++) {
                page.set(java.lang.foreign.ValueLayout.JAVA_BYTE, i, (byte) i);
            }
            assertEquals("c8f5d0341d54d951a71b136e6e2afcb14d11ed8489a7ae126a8fee0df6ecf193",
                    HexFormat.of().formatHex(digest.digest(page, 0)));
        }
    }

    @Test
    void pageHashersComputeTheirLibraryFunctionOverTheWholePage() {
        byte[] page = xxh3SanityBuffer(Pages.PAGE_SIZE);
        MemorySegment segment = MemorySegment.ofArray(page);
        for (long seed : new long[] {0, PRIME32, PRIME64}) {
            assertEquals(XXHashFactory.safeInstance().hash64().hash(page, 0, page.length, seed),
                    HashAlgorithm.XXH64.newHasher(seed).hash(segment, 0), "XXH64 seed " + seed);
            assertEquals(Hashing.xxh3_64(seed).hashBytesToLong(page),
                    HashAlgorithm.XXH3.newHasher(seed).hash(segment, 0), "XXH3 seed " + seed);
            assertEquals(Hashing.komihash5_0(seed).hashBytesToLong(page),
                    HashAlgorithm.KOMIHASH.newHasher(seed).hash(segment, 0), "komihash seed " + seed);
        }
    }

    @Test
    void crc32cPageHashIsTheAvalancheOfItsTwoHalfPageCrcs() {
        byte[] page = xxh3SanityBuffer(Pages.PAGE_SIZE);
        CRC32C low = new CRC32C();
        low.update(page, 0, Pages.PAGE_SIZE / 2);
        CRC32C high = new CRC32C();
        high.update(page, Pages.PAGE_SIZE / 2, Pages.PAGE_SIZE / 2);
        long seed = 0x1234_5678_9ABC_DEF0L;
        long expected = Mix.avalanche((high.getValue() << 32 | low.getValue()) ^ seed);
        assertEquals(expected, HashAlgorithm.CRC32C.newHasher(seed).hash(MemorySegment.ofArray(page), 0));
    }

    /**
     * The NH formula and its key restated word by word, with unsigned 32-bit halves and the key made by
     * {@code javax.crypto} here, as the Javadoc defines them.
     */
    @Test
    void nhPageHashFollowsItsDefinition() throws Exception {
        byte[] page = xxh3SanityBuffer(Pages.PAGE_SIZE);
        for (long seed : new long[] {0, 42, -1}) {
            Mac mac = Mac.getInstance("HmacSHA256");
            byte[] seedBytes = new byte[8];
            for (int b = 0; b < 8; b++) {
                seedBytes[b] = (byte) (seed >>> (8 * b));
            }
            mac.init(new SecretKeySpec(seedBytes, "HmacSHA256"));
            byte[] key = new byte[Pages.PAGE_SIZE];
            for (int block = 0; block < Pages.PAGE_SIZE / 32; block++) {
                mac.update(ascii("samepage NH page key"));
                mac.update(new byte[] {(byte) block, (byte) (block >>> 8), 0, 0});
                System.arraycopy(mac.doFinal(), 0, key, block * 32, 32);
            }
            long sum = 0;
            for (int i = 0; i < Pages.PAGE_SIZE / 8; i++) {
                long lo = (uint32(page, 8 * i) + uint32(key, 8 * i)) % (1L << 32);
                long hi = (uint32(page, 8 * i + 4) + uint32(key, 8 * i + 4)) % (1L << 32);
                sum += lo * hi;
            }
            assertEquals(Mix.avalanche(sum), HashAlgorithm.NH.newHasher(seed).hash(MemorySegment.ofArray(page), 0),
                    "seed " + seed);
        }
    }

    /**
     * NH's values for fixed keys, frozen when its key expansion was chosen: the zero page and the
     * sanity page under seeds 0, 1 and a fixed 64-bit seed. A change here changes every stored NH value.
     */
    @Test
    void nhValuesForFixedKeysNeverChange() {
        MemorySegment zero = MemorySegment.ofArray(new byte[Pages.PAGE_SIZE]);
        MemorySegment sanity = MemorySegment.ofArray(xxh3SanityBuffer(Pages.PAGE_SIZE));
        long[] seeds = {0, 1, 0x0123_4567_89AB_CDEFL};
        for (int s = 0; s < seeds.length; s++) {
            PageHasher nh = HashAlgorithm.NH.newHasher(seeds[s]);
            assertEquals(FROZEN_NH_ZERO[s], nh.hash(zero, 0), "zero page, seed " + seeds[s]);
            assertEquals(FROZEN_NH_SANITY[s], nh.hash(sanity, 0), "sanity page, seed " + seeds[s]);
        }
    }

    private static final long[] FROZEN_NH_ZERO = {0x9BAD899E6243DE5CL, 0x21640C5E350E2CE1L, 0x761F2C4FBE14B265L};
    private static final long[] FROZEN_NH_SANITY = {0xF981BDCBADC0312AL, 0x91F4E3F1A367BBE1L, 0x3DFF7393A22EF697L};

    /**
     * The default hash is stored in image index files, so its values must never drift: this frozen
     * vector was computed by this implementation when NH became the default.
     */
    @Test
    void defaultHashOfTheSanityPageNeverChanges() {
        MemorySegment page = MemorySegment.ofArray(xxh3SanityBuffer(Pages.PAGE_SIZE));
        assertEquals(HashAlgorithm.NH, HashAlgorithm.defaultAlgorithm());
        assertEquals(FROZEN_DEFAULT, HashAlgorithm.defaultAlgorithm().newHasher(0).hash(page, 0));
    }

    private static final long FROZEN_DEFAULT = 0xF981BDCBADC0312AL;

    /** CRC32C was the default before NH, so index files built then hold its values: they must not drift either. */
    @Test
    void crc32cHashOfTheSanityPageNeverChanges() {
        MemorySegment page = MemorySegment.ofArray(xxh3SanityBuffer(Pages.PAGE_SIZE));
        assertEquals(0x957B56088A894683L, HashAlgorithm.CRC32C.newHasher(0).hash(page, 0));
    }

    /** xxHash's older sanity buffer: byteGen starts at PRIME32 and is squared (mod 2^32) per byte. */
    static byte[] xxh64SanityBuffer(int length) {
        byte[] buffer = new byte[length];
        int byteGen = (int) PRIME32;
        for (int i = 0; i < length; i++) {
            buffer[i] = (byte) (byteGen >>> 24);
            byteGen *= byteGen;
        }
        return buffer;
    }

    /** xxHash 0.8's sanity buffer: byteGen starts at PRIME32 and is multiplied by PRIME64 per byte. */
    static byte[] xxh3SanityBuffer(int length) {
        byte[] buffer = new byte[length];
        long byteGen = PRIME32;
        for (int i = 0; i < length; i++) {
            buffer[i] = (byte) (byteGen >>> 56);
            byteGen *= PRIME64;
        }
        return buffer;
    }

    private static long uint32(byte[] bytes, int at) {
        return (bytes[at] & 0xFFL) | (bytes[at + 1] & 0xFFL) << 8 | (bytes[at + 2] & 0xFFL) << 16
                | (bytes[at + 3] & 0xFFL) << 24;
    }

    private static long crc32c(byte[] bytes) {
        CRC32C crc = new CRC32C();
        crc.update(bytes);
        return crc.getValue();
    }

    private static byte[] ascii(String s) {
        return s.getBytes(StandardCharsets.US_ASCII);
    }
}
