package io.samepage.density;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.style.Styler;
import org.knowm.xchart.style.markers.SeriesMarkers;

/**
 * {@code density.png}: host memory (MiB) against guests, one line per mode that ran at two N or more
 * (a mode measured at one N only, such as KSM at its defaults, is one marker). Drawn with XChart in
 * headless AWT.
 */
final class DensityChart {

    static final int WIDTH = 900;
    static final int HEIGHT = 560;

    private DensityChart() {
    }

    /** The chart as PNG bytes, encoded in memory. */
    static byte[] png(DensityResults results) {
        System.setProperty("java.awt.headless", "true");
        XYChart chart = new XYChartBuilder().width(WIDTH).height(HEIGHT)
                .title("Host memory of N guests of " + (results.content().guestBytes() >> 20) + " MiB")
                .xAxisTitle("guests").yAxisTitle("host memory (MiB)").build();
        chart.getStyler().setLegendPosition(Styler.LegendPosition.InsideNW);
        chart.getStyler().setChartBackgroundColor(java.awt.Color.WHITE);
        chart.getStyler().setXAxisDecimalPattern("#");
        chart.getStyler().setYAxisMin(0.0);
        for (Mode mode : Mode.values()) {
            List<Double> x = new ArrayList<>();
            List<Double> y = new ArrayList<>();
            for (ModeResult r : results.results(mode)) {
                if (r.ran()) {
                    x.add((double) r.guests());
                    y.add(r.hostMib());
                }
            }
            if (!x.isEmpty()) {
                chart.addSeries(mode.title(), x, y).setMarker(SeriesMarkers.CIRCLE);
            }
        }
        javax.imageio.ImageIO.setUseCache(false);     // in memory: no cache file in java.io.tmpdir
        try {
            return BitmapEncoder.getBitmapBytes(chart, BitmapEncoder.BitmapFormat.PNG);
        } catch (IOException e) {
            throw new java.io.UncheckedIOException("cannot encode the chart", e);     // in memory: not expected
        }
    }
}
