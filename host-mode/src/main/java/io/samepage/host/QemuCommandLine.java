package io.samepage.host;

import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * What a QEMU command line says about its guest's RAM: the size and how it is backed.
 *
 * <p>Read from {@code -m} ({@code 256}, {@code 256M}, {@code 1G}, {@code 1.5G}, {@code size=1G,maxmem=4G};
 * no suffix means MiB, as QEMU reads it; absent, QEMU's x86 default of 128 MiB), {@code -machine
 * memory-backend=ID}, {@code -numa node,memdev=ID}, {@code -object memory-backend-*} (QEMU's
 * {@code key=value} form with {@code ,,} for a comma, or libvirt's JSON form) and {@code -mem-path}.
 * An option may be spelt with one dash or two. Options this class does not know are passed over;
 * their values cannot be mistaken for these options, which are matched whole.
 *
 * @param binary    argv[0]
 * @param guestName {@code -name NAME} or {@code -name guest=NAME,...}; null without {@code -name}
 * @param ramBytes  the guest's RAM size; -1 if {@link #problem()} says why it is unknown
 * @param backing   how the RAM is held
 * @param memPath   the file or directory of a {@link Backing#FILE} backend; null otherwise
 * @param problem   why the RAM cannot be located from this command line, or null
 */
public record QemuCommandLine(String binary, String guestName, long ramBytes, Backing backing, String memPath,
        String problem) {

    /** How QEMU holds the guest's RAM. */
    public enum Backing {
        /** Private anonymous memory: QEMU's default, and {@code memory-backend-ram}. */
        ANONYMOUS,
        /** {@code memory-backend-file} or {@code -mem-path}: a mapping of a file (hugetlbfs, /dev/shm, ...). */
        FILE,
        /** {@code memory-backend-memfd}: a shared mapping named {@code /memfd:memory-backend-memfd} in maps. */
        MEMFD
    }

    /** QEMU's RAM size for x86 machines when {@code -m} is absent. */
    public static final long DEFAULT_RAM_BYTES = 128L << 20;

    private static final Pattern SIZE = Pattern.compile("([0-9]+(?:\\.[0-9]+)?)([bkmgtpe]?)", Pattern.CASE_INSENSITIVE);
    private static final Pattern HEX_SIZE = Pattern.compile("0x([0-9a-f]{1,15})", Pattern.CASE_INSENSITIVE);

    /** A {@code -object memory-backend-*}: its type, id, size in bytes (-1 if not given) and mem-path. */
    private record Backend(String type, String id, long sizeBytes, String memPath) {
    }

    /** True if argv[0] names a QEMU system emulator: {@code qemu-system-*} or {@code qemu-kvm}. */
    public static boolean isQemu(String argv0) {
        String base = argv0.substring(argv0.lastIndexOf('/') + 1);
        return base.startsWith("qemu-system-") || base.equals("qemu-kvm");
    }

    /** Parses the raw bytes of {@code /proc/PID/cmdline} (arguments each ending in a NUL byte). */
    public static Optional<QemuCommandLine> parse(byte[] cmdline) {
        List<String> argv = new ArrayList<>();
        int start = 0;
        for (int i = 0; i <= cmdline.length; i++) {
            if (i == cmdline.length || cmdline[i] == 0) {
                if (i > start || i < cmdline.length) {
                    argv.add(new String(cmdline, start, i - start, StandardCharsets.UTF_8));
                }
                start = i + 1;
            }
        }
        return parse(argv);
    }

    /** Parses an argument vector; empty if argv[0] is not QEMU ({@link #isQemu}). */
    public static Optional<QemuCommandLine> parse(List<String> argv) {
        if (argv.isEmpty() || !isQemu(argv.getFirst())) {
            return Optional.empty();
        }
        String memory = null;
        String name = null;
        String machineBackend = null;
        String memPath = null;
        List<String> numaBackends = new ArrayList<>();
        Map<String, Backend> backends = new LinkedHashMap<>();
        for (int i = 1; i < argv.size(); i++) {
            String option = argv.get(i).startsWith("--") ? argv.get(i).substring(1) : argv.get(i);
            String value = i + 1 < argv.size() ? argv.get(i + 1) : null;
            switch (option) {
                case "-m" -> memory = value == null ? "" : value;
                case "-name" -> name = value == null ? null : nameOf(value);
                case "-machine", "-M" -> machineBackend = value == null ? machineBackend
                        : keyvals(value).getOrDefault("memory-backend", machineBackend);
                case "-mem-path" -> memPath = value;
                case "-numa" -> {
                    String memdev = value == null ? null : keyvals(value).get("memdev");
                    if (memdev != null) {
                        numaBackends.add(memdev);
                    }
                }
                case "-object" -> {
                    Backend backend = value == null ? null : backendOf(value);
                    if (backend != null) {
                        backends.put(backend.id(), backend);
                    }
                }
                default -> {
                    continue;
                }
            }
            i++;
        }
        String binary = argv.getFirst();
        long ramBytes = DEFAULT_RAM_BYTES;
        if (memory != null) {
            Map<String, String> m = keyvals(memory);
            String size = m.containsKey("size") ? m.get("size") : firstBareItem(memory);
            ramBytes = size == null ? -1 : sizeBytes(size);
            if (ramBytes <= 0) {
                return Optional.of(unknown(binary, name, "cannot read the RAM size from -m " + memory));
            }
        }
        String ramBackend = machineBackend;
        if (ramBackend == null && numaBackends.size() == 1) {
            ramBackend = numaBackends.getFirst();
        } else if (ramBackend == null && numaBackends.size() > 1) {
            return Optional.of(unknown(binary, name, "its RAM is split over " + numaBackends.size()
                    + " NUMA memory backends; only guests with one RAM mapping are located"));
        }
        if (ramBackend == null) {
            return Optional.of(memPath != null ? new QemuCommandLine(binary, name, ramBytes, Backing.FILE, memPath, null)
                    : new QemuCommandLine(binary, name, ramBytes, Backing.ANONYMOUS, null, null));
        }
        Backend backend = backends.get(ramBackend);
        if (backend == null) {
            return Optional.of(unknown(binary, name, "memory backend '" + ramBackend + "' is not among its -object options"));
        }
        long bytes = backend.sizeBytes() > 0 ? backend.sizeBytes() : ramBytes;
        return Optional.of(switch (backend.type()) {
            case "memory-backend-ram" -> new QemuCommandLine(binary, name, bytes, Backing.ANONYMOUS, null, null);
            case "memory-backend-memfd" -> new QemuCommandLine(binary, name, bytes, Backing.MEMFD, null, null);
            case "memory-backend-file" -> backend.memPath() == null
                    ? unknown(binary, name, "memory-backend-file '" + backend.id() + "' has no mem-path")
                    : new QemuCommandLine(binary, name, bytes, Backing.FILE, backend.memPath(), null);
            default -> unknown(binary, name, "its RAM backend is a " + backend.type() + ", which is not located");
        });
    }

    private static QemuCommandLine unknown(String binary, String name, String problem) {
        return new QemuCommandLine(binary, name, -1, Backing.ANONYMOUS, null, problem);
    }

    /**
     * A QEMU size as {@code qemu_strtosz_MiB} reads it: a decimal (with an optional fraction) or a
     * {@code 0x} hex number, then an optional unit B, K, M, G, T, P or E (either case); no unit is MiB.
     *
     * @return bytes, or -1 if it is not a size or is more than 2^63 - 1 bytes
     */
    public static long sizeBytes(String text) {
        String unit;
        BigDecimal number;
        Matcher hex = HEX_SIZE.matcher(text);
        Matcher decimal = SIZE.matcher(text);
        if (hex.matches()) {
            number = new BigDecimal(Long.parseLong(hex.group(1), 16));
            unit = "m";
        } else if (decimal.matches()) {
            number = new BigDecimal(decimal.group(1));
            unit = decimal.group(2).isEmpty() ? "m" : decimal.group(2).toLowerCase(Locale.ROOT);
        } else {
            return -1;
        }
        int shift = 10 * "bkmgtpe".indexOf(unit);
        BigDecimal bytes = number.multiply(new BigDecimal(java.math.BigInteger.ONE.shiftLeft(shift)));
        if (bytes.compareTo(new BigDecimal(Long.MAX_VALUE)) > 0) {
            return -1;
        }
        return bytes.longValue();
    }

    private static String nameOf(String value) {
        Map<String, String> keys = keyvals(value);
        return keys.containsKey("guest") ? keys.get("guest") : firstBareItem(value);
    }

    /** An {@code -object} that is a memory backend, in key=value or JSON form; null for any other object. */
    private static Backend backendOf(String value) {
        if (value.startsWith("{")) {
            String type = jsonString(value, "qom-type");
            String id = jsonString(value, "id");
            if (type == null || id == null || !type.startsWith("memory-backend-")) {
                return null;
            }
            Matcher size = Pattern.compile("\"size\"\\s*:\\s*\"?([0-9]{1,19})").matcher(value);
            long bytes = size.find() ? sizeBytes(size.group(1) + "B") : -1;
            return new Backend(type, id, bytes, jsonString(value, "mem-path"));
        }
        Map<String, String> keys = keyvals(value);
        String type = keys.containsKey("qom-type") ? keys.get("qom-type") : firstBareItem(value);
        String id = keys.get("id");
        if (type == null || id == null || !type.startsWith("memory-backend-")) {
            return null;
        }
        long bytes = keys.containsKey("size") ? sizeBytes(keys.get("size")) : -1;
        return new Backend(type, id, bytes, keys.get("mem-path"));
    }

    /**
     * A JSON string member: the first {@code "key"} followed by {@code :} and a terminated string, without
     * unescaping beyond {@code \"} and {@code \\}; null if there is none. Scanned by hand in one pass:
     * a regular expression's alternation inside a repetition recursed once per character, so a member as
     * long as a command line allows overflowed the stack (any local user can start a process named
     * qemu-system-x86_64).
     */
    private static String jsonString(String json, String key) {
        String quoted = "\"" + key + "\"";
        for (int at = json.indexOf(quoted); at >= 0; at = json.indexOf(quoted, at + 1)) {
            int i = skipSpaces(json, at + quoted.length());
            if (i >= json.length() || json.charAt(i) != ':') {
                continue;
            }
            i = skipSpaces(json, i + 1);
            if (i >= json.length() || json.charAt(i) != '"') {
                continue;
            }
            StringBuilder value = new StringBuilder();
            for (i++; i < json.length(); i++) {
                char ch = json.charAt(i);
                if (ch == '"') {
                    return value.toString();
                }
                if (ch == '\\' && i + 1 < json.length()) {
                    char next = json.charAt(++i);
                    if (next != '"' && next != '\\') {
                        value.append('\\');
                    }
                    value.append(next);
                } else {
                    value.append(ch);
                }
            }
        }
        return null;
    }

    /** Past JSON's whitespace (space, tab, line feed, carriage return). */
    private static int skipSpaces(String s, int i) {
        while (i < s.length() && " \t\n\r".indexOf(s.charAt(i)) >= 0) {
            i++;
        }
        return i;
    }

    /** QEMU's {@code a,key=value,key2=value2} with {@code ,,} for a literal comma: the keyed items. */
    static Map<String, String> keyvals(String value) {
        Map<String, String> keys = new LinkedHashMap<>();
        for (String item : items(value)) {
            int eq = item.indexOf('=');
            if (eq > 0) {
                keys.put(item.substring(0, eq), item.substring(eq + 1));
            }
        }
        return keys;
    }

    /** The first item if it has no {@code =}: QEMU's implied key ({@code -m 1G}, {@code -name vm1}, a type). */
    private static String firstBareItem(String value) {
        List<String> items = items(value);
        return items.isEmpty() || items.getFirst().contains("=") || items.getFirst().isEmpty() ? null
                : items.getFirst();
    }

    private static List<String> items(String value) {
        List<String> items = new ArrayList<>();
        StringBuilder item = new StringBuilder();
        for (int i = 0; i < value.length(); i++) {
            char ch = value.charAt(i);
            if (ch == ',' && i + 1 < value.length() && value.charAt(i + 1) == ',') {
                item.append(',');
                i++;
            } else if (ch == ',') {
                items.add(item.toString());
                item.setLength(0);
            } else {
                item.append(ch);
            }
        }
        items.add(item.toString());
        return items;
    }
}
