package io.samepage.host;

/**
 * One knob write: its value before and after, as {@code /sys/kernel/mm/ksm} shows them (a choice
 * such as {@code advisor_mode} as the selected word, {@code scan-time}, not {@code none [scan-time]}).
 */
public record KnobChange(KsmKnob knob, String oldValue, String newValue) {

    /** True if the value read back after the write differs from the one before. */
    public boolean changed() {
        return !oldValue.equals(newValue);
    }

    /** {@code name: old -> new}, or {@code name: value (unchanged)}. */
    @Override
    public String toString() {
        return knob.sysfsName() + ": " + (changed() ? oldValue + " -> " + newValue : newValue + " (unchanged)");
    }
}
