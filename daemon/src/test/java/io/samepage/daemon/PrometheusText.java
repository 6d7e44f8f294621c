package io.samepage.daemon;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A parser of Prometheus' text exposition format 0.0.4, as strict as the tests need: every sample
 * follows the {@code # HELP} and {@code # TYPE} lines of its family and carries the family's name, a
 * name appears in one family, and label values are unescaped ({@code \\}, {@code \"}, {@code \n}).
 */
record PrometheusText(Map<String, Family> families) {

    record Family(String name, String type, String help, List<Sample> samples) {
    }

    record Sample(String name, Map<String, String> labels, double value) {
    }

    private static final Pattern SAMPLE = Pattern.compile("([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\\{(.*)})? (\\S+)");
    private static final Pattern LABEL = Pattern.compile("([a-zA-Z_][a-zA-Z0-9_]*)=\"((?:[^\"\\\\]|\\\\.)*)\",?");

    static PrometheusText parse(String text) {
        if (!text.endsWith("\n")) {
            throw new IllegalArgumentException("the text does not end with a newline");
        }
        Map<String, Family> families = new LinkedHashMap<>();
        String help = null;
        String helpOf = null;
        Family current = null;
        for (String line : text.split("\n")) {
            if (line.startsWith("# HELP ")) {
                String[] parts = line.substring(7).split(" ", 2);
                helpOf = parts[0];
                help = parts.length > 1 ? parts[1] : "";
            } else if (line.startsWith("# TYPE ")) {
                String[] parts = line.substring(7).split(" ");
                if (!parts[0].equals(helpOf)) {
                    throw new IllegalArgumentException("TYPE without HELP: " + line);
                }
                current = new Family(parts[0], parts[1], help, new ArrayList<>());
                if (families.put(current.name(), current) != null) {
                    throw new IllegalArgumentException("family given twice: " + line);
                }
            } else if (!line.startsWith("#")) {
                Matcher m = SAMPLE.matcher(line);
                if (!m.matches() || current == null || !m.group(1).equals(current.name())) {
                    throw new IllegalArgumentException("not a sample of " + current + ": " + line);
                }
                current.samples().add(new Sample(m.group(1), labels(m.group(2), line), Double.parseDouble(m.group(3))));
            }
        }
        return new PrometheusText(families);
    }

    /** The family called {@code name}. @throws AssertionError if there is none */
    Family family(String name) {
        Family family = families.get(name);
        if (family == null) {
            throw new AssertionError(name + " is not served; served: " + families.keySet());
        }
        return family;
    }

    /** The value of the sample of {@code name} with exactly {@code labels}. @throws AssertionError if none */
    double value(String name, Map<String, String> labels) {
        for (Sample sample : family(name).samples()) {
            if (sample.labels().equals(labels)) {
                return sample.value();
            }
        }
        throw new AssertionError(name + labels + " is not served; served: " + family(name).samples());
    }

    private static Map<String, String> labels(String text, String line) {
        Map<String, String> labels = new LinkedHashMap<>();
        if (text == null) {
            return labels;
        }
        Matcher m = LABEL.matcher(text);
        int end = 0;
        while (m.find() && m.start() == end) {
            labels.put(m.group(1), unescape(m.group(2)));
            end = m.end();
        }
        if (end != text.length()) {
            throw new IllegalArgumentException("bad labels: " + line);
        }
        return labels;
    }

    private static String unescape(String value) {
        StringBuilder out = new StringBuilder(value.length());
        for (int i = 0; i < value.length(); i++) {
            char ch = value.charAt(i);
            if (ch == '\\') {
                ch = value.charAt(++i);
                out.append(ch == 'n' ? '\n' : ch);
            } else {
                out.append(ch);
            }
        }
        return out.toString();
    }
}
