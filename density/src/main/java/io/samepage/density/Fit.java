package io.samepage.density;

import java.util.ArrayList;
import java.util.List;

/**
 * How many guests of one mode fit in a host budget, from a straight line through the two largest N
 * measured: {@code perGuest = (bytes(N2) - bytes(N1)) / (N2 - N1)}, {@code base = bytes(N2) - N2 x
 * perGuest} (the shared part: one copy of the image, the zero frame, fixed metadata), and {@code fit =
 * floor((budget - base) / perGuest)}. With one N only, the line goes through the origin: {@code perGuest
 * = bytes(N) / N}, {@code base = 0}. Every mode grows linearly in N beyond its shared part, so two
 * points fix the line; the fit is an extrapolation where the budget lies beyond the largest N measured.
 *
 * @param perGuestBytes host bytes each further guest adds
 * @param baseBytes     host bytes that do not grow with N
 * @param guests        guests that fit, or -1 if the mode did not run
 * @param points        the N the line goes through: 2, or 1 (through the origin too), or 0 if the mode did not run
 */
record Fit(double perGuestBytes, double baseBytes, long guests, int points) {

    static Fit of(List<ModeResult> results, long budgetBytes) {
        List<ModeResult> ran = new ArrayList<>();
        for (ModeResult r : results) {
            if (r.ran()) {
                ran.add(r);
            }
        }
        if (ran.isEmpty()) {
            return new Fit(Double.NaN, Double.NaN, -1, 0);
        }
        ModeResult last = ran.getLast();
        double perGuest;
        double base;
        if (ran.size() == 1) {
            perGuest = last.hostBytes() / (double) last.guests();
            base = 0;
        } else {
            ModeResult before = ran.get(ran.size() - 2);
            perGuest = (last.hostBytes() - before.hostBytes()) / (double) (last.guests() - before.guests());
            base = last.hostBytes() - last.guests() * perGuest;
        }
        long guests = perGuest <= 0 || budgetBytes < base ? 0 : (long) Math.floor((budgetBytes - base) / perGuest);
        return new Fit(perGuest, base, guests, Math.min(ran.size(), 2));
    }
}
