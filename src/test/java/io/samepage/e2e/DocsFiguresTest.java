package io.samepage.e2e;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/**
 * Every measured figure in {@code docs/} names the command and the commit that produced it, and the
 * README stays a front door: at most 150 lines, no figures of its own. The convention is written down in
 * {@code docs/perf/README.md}.
 *
 * <p><b>Sections.</b> A section runs from a Markdown heading ({@code #} to {@code ######}, outside fenced
 * code) to the next heading; the text before a file's first heading is a section too.
 *
 * <p><b>A measured figure</b>, outside inline code spans and table header rows:
 * <ul>
 *   <li>a number followed by a time or rate unit: {@code ns}, {@code us}, {@code µs}, {@code ms}, {@code s},
 *       {@code min}, {@code minutes}, {@code seconds}, {@code GB/s}, {@code pages/s} ({@code 874 ns},
 *       {@code 1.5 s}); a number right after "every " is a period, a setting, and does not count;</li>
 *   <li>a ratio: a number with an {@code x} attached ({@code 1.34x}, {@code 48x});</li>
 *   <li>a number with a decimal point followed by {@code KiB}, {@code MiB}, {@code GiB}, {@code MB},
 *       {@code GB}, {@code M} (millions) or {@code %} ({@code 15.0 MiB}, {@code 0.083%}); whole numbers
 *       with these units are sizes and shares the docs set ("4 KiB pages", "25% zeroed"), not results;</li>
 *   <li>in a table row, a cell that starts with a number with a decimal point ({@code 1388.3},
 *       {@code 0.07 / 0.07}).</li>
 * </ul>
 * Fenced code is scanned for figures (a command's printed output) but never holds a heading or a
 * provenance statement. Bare counts ("16,348 pages") are not detected; keep them in a section whose
 * provenance statement names their run.
 *
 * <p><b>A provenance statement</b> is a paragraph (it may wrap) that starts with {@code Measured by:}
 * and names the command in backticks, or says {@code command not recorded}, and names the commit as
 * {@code commit `<hash>`} (or {@code commits `<a>` and `<b>`}), or says {@code commit not recorded}.
 *
 * <p><b>Commits.</b> Every 7 to 40 hex digits in backticks anywhere in {@code docs/} name a commit, and
 * {@code git cat-file -e <hash>^{commit}} must find it; skipped, with the reason, where the checkout
 * has no {@code .git}, git cannot run, or the clone is shallow.
 */
class DocsFiguresTest {

    private static final int README_MAX_LINES = 150;

    /** The docs quote several hundred figures; far fewer means the detector broke, not that they left. */
    private static final int MIN_FIGURES = 150;

    private static final String NUMBER = "(?<!every )(?<![\\w.^-])\\d[\\d,]*(?:\\.\\d+)?";
    private static final String DECIMAL = "(?<![\\w.^-])\\d[\\d,]*\\.\\d+";
    private static final Pattern FIGURE = Pattern.compile(
            NUMBER + " ?(?:ns|us|µs|ms|s|min|minutes|seconds|GB/s|pages/s)(?![\\w/])"
                    + "|" + NUMBER + "x(?!\\w)"
                    + "|" + DECIMAL + " ?(?:KiB|MiB|GiB|MB|GB|M)(?!\\w)"
                    + "|" + DECIMAL + "%");
    private static final Pattern DECIMAL_CELL = Pattern.compile("^\\s*[<>~]?\\s*\\d[\\d,]*\\.\\d+.*");
    private static final Pattern HEADING = Pattern.compile("^#{1,6}\\s+\\S.*");
    private static final Pattern TABLE_SEPARATOR = Pattern.compile("^\\s*\\|?\\s*:?-+:?\\s*(\\|\\s*:?-+:?\\s*)*\\|?\\s*$");
    private static final Pattern INLINE_CODE = Pattern.compile("`[^`]*`");
    private static final Pattern PROVENANCE_START = Pattern.compile("^\\s*(?:[-*]\\s+)?Measured by:.*");
    private static final Pattern COMMIT_NAMED = Pattern.compile("\\bcommits?\\b[^`]*`[0-9a-f]{7,40}`|commit not recorded");
    private static final Pattern HASH = Pattern.compile("`([0-9a-f]{7,40})`");

    /** One figure: where it is and what it says. */
    record Figure(String file, int line, String text) {
    }

    /** One provenance statement, its wrapped lines joined. */
    record Provenance(String file, int line, String text) {
    }

    /** A section: its heading (or the file's start) and what it holds. */
    record Section(String file, int line, String heading, List<Figure> figures, List<Provenance> provenance) {
    }

    @Test
    void everySectionWithAFigureNamesTheCommandAndCommitThatMeasuredIt() throws IOException {
        List<String> failures = new ArrayList<>();
        int figures = 0;
        int sectionsWithFigures = 0;
        List<String> notRecorded = new ArrayList<>();
        for (Path doc : docs()) {
            for (Section section : sections(doc)) {
                figures += section.figures().size();
                for (Provenance p : section.provenance()) {
                    if (!namesCommand(p.text())) {
                        failures.add(p.file() + ":" + p.line() + ": 'Measured by:' names no command in backticks"
                                + " (nor says 'command not recorded'): " + p.text());
                    }
                    if (!COMMIT_NAMED.matcher(p.text()).find()) {
                        failures.add(p.file() + ":" + p.line() + ": 'Measured by:' names no commit (commit `<hash>`,"
                                + " or 'commit not recorded'): " + p.text());
                    }
                    if (p.text().contains("not recorded")) {
                        notRecorded.add(p.file() + ":" + p.line() + ": " + p.text());
                    }
                }
                if (!section.figures().isEmpty()) {
                    sectionsWithFigures++;
                    if (section.provenance().isEmpty()) {
                        Figure first = section.figures().getFirst();
                        failures.add(first.file() + ":" + first.line() + ": '" + first.text() + "' in section '"
                                + section.heading() + "' (line " + section.line() + "), which has no"
                                + " 'Measured by: `command` at commit `hash`' line");
                    }
                }
            }
        }
        System.out.println("DocsFiguresTest: " + figures + " figures in " + sectionsWithFigures
                + " sections; provenance not recorded in part:");
        notRecorded.forEach(line -> System.out.println("  " + line));
        assertTrue(figures >= MIN_FIGURES, "found only " + figures + " figures in docs/ (expected at least "
                + MIN_FIGURES + "): has the detector or the docs layout changed?");
        assertTrue(failures.isEmpty(), failures.size() + " problem(s):\n" + String.join("\n", failures));
    }

    @Test
    void everyCommitTheDocsNameIsInThisRepositorysHistory() throws Exception {
        Path root = Samepage.root();
        Assumptions.assumeTrue(Files.exists(root.resolve(".git")), "no .git at " + root + ": commits cannot be checked");
        String shallow = git(root, "rev-parse", "--is-shallow-repository").output().strip();
        Assumptions.assumeFalse(shallow.equals("true"), "a shallow clone lacks the older commits the docs name");
        Map<String, String> hashes = new LinkedHashMap<>();
        for (Path doc : docs()) {
            List<String> lines = Files.readAllLines(doc, StandardCharsets.UTF_8);
            boolean fenced = false;
            for (int i = 0; i < lines.size(); i++) {
                String line = lines.get(i);
                if (isFence(line)) {
                    fenced = !fenced;
                    continue;
                }
                if (fenced) {
                    continue;
                }
                Matcher m = HASH.matcher(line);
                while (m.find()) {
                    hashes.putIfAbsent(m.group(1), relative(doc) + ":" + (i + 1));
                }
            }
        }
        assertTrue(hashes.size() >= 5, "found only " + hashes.size() + " commit names in docs/: " + hashes.keySet());
        List<String> missing = new ArrayList<>();
        for (Map.Entry<String, String> e : hashes.entrySet()) {
            if (git(root, "cat-file", "-e", e.getKey() + "^{commit}").exitCode() != 0) {
                missing.add(e.getValue() + ": `" + e.getKey() + "` is not a commit in this repository's history");
            }
        }
        assertTrue(missing.isEmpty(), String.join("\n", missing));
    }

    @Test
    void readmeIsAtMost150LinesAndQuotesNoFigure() throws IOException {
        Path readme = Samepage.root().resolve("README.md");
        List<String> lines = Files.readAllLines(readme, StandardCharsets.UTF_8);
        assertTrue(lines.size() <= README_MAX_LINES, "README.md has " + lines.size() + " lines, more than "
                + README_MAX_LINES);
        List<String> figures = new ArrayList<>();
        for (Section section : sections(readme)) {
            section.figures().forEach(f -> figures.add(f.file() + ":" + f.line() + ": " + f.text()));
        }
        assertTrue(figures.isEmpty(), "README.md quotes figures; they belong in docs/perf/:\n"
                + String.join("\n", figures));
    }

    private static List<Path> docs() throws IOException {
        Path dir = Samepage.root().resolve("docs");
        try (Stream<Path> files = Files.walk(dir)) {
            List<Path> docs = files.filter(p -> p.toString().endsWith(".md") && Files.isRegularFile(p)).sorted().toList();
            assertTrue(docs.stream().anyMatch(p -> p.getParent().getFileName().toString().equals("perf")),
                    "no docs/perf/*.md under " + dir);
            return docs;
        }
    }

    static List<Section> sections(Path doc) throws IOException {
        String file = relative(doc);
        List<String> lines = Files.readAllLines(doc, StandardCharsets.UTF_8);
        List<Section> sections = new ArrayList<>();
        Section current = new Section(file, 1, "(start of file)", new ArrayList<>(), new ArrayList<>());
        sections.add(current);
        boolean fenced = false;
        for (int i = 0; i < lines.size(); i++) {
            String line = lines.get(i);
            int number = i + 1;
            if (isFence(line)) {
                fenced = !fenced;
                continue;
            }
            if (!fenced && HEADING.matcher(line).matches()) {
                current = new Section(file, number, line.strip(), new ArrayList<>(), new ArrayList<>());
                sections.add(current);
                continue;
            }
            boolean header = i + 1 < lines.size() && isTableRow(line) && TABLE_SEPARATOR.matcher(lines.get(i + 1)).matches();
            if (!header) {
                for (String text : figures(line)) {
                    current.figures().add(new Figure(file, number, text));
                }
            }
            if (!fenced && PROVENANCE_START.matcher(line).matches()) {
                current.provenance().add(new Provenance(file, number, paragraph(lines, i)));
            }
        }
        return sections;
    }

    /** The figures on one line, as defined in the class comment. */
    static List<String> figures(String line) {
        String text = INLINE_CODE.matcher(line).replaceAll("");
        List<String> found = new ArrayList<>();
        if (isTableRow(text)) {
            if (TABLE_SEPARATOR.matcher(text).matches()) {
                return found;
            }
            String row = text.strip();
            row = row.substring(1, row.endsWith("|") && row.length() > 1 ? row.length() - 1 : row.length());
            for (String cell : row.split("\\|", -1)) {
                if (DECIMAL_CELL.matcher(cell).matches()) {
                    found.add(cell.strip());
                } else {
                    FIGURE.matcher(cell).results().forEach(r -> found.add(r.group()));
                }
            }
            return found;
        }
        FIGURE.matcher(text).results().forEach(r -> found.add(r.group()));
        return found;
    }

    /** Whether a provenance statement has a backticked span other than a commit hash, or says the command was not kept. */
    private static boolean namesCommand(String provenance) {
        return provenance.contains("command not recorded") || INLINE_CODE.matcher(provenance).results()
                .map(r -> r.group().substring(1, r.group().length() - 1))
                .anyMatch(code -> !code.isBlank() && !code.matches("[0-9a-f]{7,40}"));
    }

    /** A provenance line and the lines it wraps onto, up to a blank line, heading, list item, table or fence. */
    private static String paragraph(List<String> lines, int start) {
        StringBuilder text = new StringBuilder(lines.get(start).strip());
        for (int i = start + 1; i < lines.size(); i++) {
            String line = lines.get(i);
            String stripped = line.strip();
            if (stripped.isEmpty() || HEADING.matcher(line).matches() || isFence(line) || isTableRow(line)
                    || stripped.matches("^([-*]|\\d+\\.)\\s.*") || PROVENANCE_START.matcher(line).matches()) {
                break;
            }
            text.append(' ').append(stripped);
        }
        return text.toString();
    }

    private static boolean isFence(String line) {
        String stripped = line.strip();
        return stripped.startsWith("```") || stripped.startsWith("~~~");
    }

    private static boolean isTableRow(String line) {
        return line.strip().startsWith("|");
    }

    private static String relative(Path doc) {
        return Samepage.root().relativize(doc.toAbsolutePath().normalize()).toString();
    }

    private record GitResult(int exitCode, String output) {
    }

    private static GitResult git(Path root, String... args) throws IOException, InterruptedException {
        List<String> command = new ArrayList<>(List.of("git", "-C", root.toString()));
        command.addAll(List.of(args));
        Process process;
        try {
            process = new ProcessBuilder(command).redirectErrorStream(true).start();
        } catch (IOException e) {
            Assumptions.abort("git cannot be run here (" + e.getMessage() + "): commits cannot be checked");
            throw e;
        }
        process.getOutputStream().close();
        String output = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (!process.waitFor(30, TimeUnit.SECONDS)) {
            process.destroyForcibly();
            throw new AssertionError("git " + String.join(" ", args) + " did not finish in 30 s");
        }
        return new GitResult(process.exitValue(), output);
    }
}
