//! `--plot FILE.svg` on overload scenarios: offered load (requests sent per second) and goodput
//! (operations that succeeded per second) over simulated time, one line per design, the outage
//! shaded; drawn with plotters' SVG backend.

use crate::compare::{Row, Series};
use crate::{BadInput, Result};
use plotters::prelude::*;
use std::path::Path;

const COLOURS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// Refuse a plot file that is not an `.svg` before any run starts.
pub fn check_path(path: &Path) -> Result<()> {
    if path.extension().is_none_or(|e| e != "svg") {
        return Err(BadInput(format!("--plot {}: the plot is an SVG; give a file name ending in .svg", path.display())));
    }
    Ok(())
}

/// Which of a bucket's (offered, goodput) pair a panel draws.
type Pick = fn(&(f64, f64)) -> f64;

/// Draw the rows that have a series (overload scenarios) into an SVG at `path`.
pub fn draw(path: &Path, rows: &[Row]) -> Result<()> {
    let lines: Vec<(&str, &Series)> = rows.iter().filter_map(|r| r.series.as_ref().map(|s| (r.scenario.as_str(), s))).collect();
    if lines.is_empty() {
        return Err(BadInput(
            "--plot draws overload scenarios (offered load and goodput over time): none of these has an [overload] table".into(),
        ));
    }
    check_path(path)?;
    let fail = |e: &dyn std::fmt::Display| BadInput(format!("--plot {}: {e}", path.display()));
    // Per second, from per bucket.
    let rate = |s: &Series, v: f64| v * 1e6 / s.bucket_us as f64;
    let x_max = lines.iter().map(|(_, s)| s.points.len() as u64 * s.bucket_us).max().unwrap_or(1) as f64 / 1000.0;
    let y_max = |pick: Pick| lines.iter().flat_map(|(_, s)| s.points.iter().map(move |p| rate(s, pick(p)))).fold(1.0, f64::max) * 1.1;
    let root = SVGBackend::new(path, (960, 720)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(&e))?;
    let panels = root.split_evenly((2, 1));
    let titles = ["offered load: requests sent per second", "goodput: operations succeeded per second"];
    let picks: [Pick; 2] = [|p| p.0, |p| p.1];
    for ((area, title), pick) in panels.iter().zip(titles).zip(picks) {
        let top = y_max(pick);
        let mut chart = ChartBuilder::on(area)
            .caption(title, ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..x_max, 0f64..top)
            .map_err(|e| fail(&e))?;
        chart.configure_mesh().x_desc("simulated time (ms)").y_desc("per second").draw().map_err(|e| fail(&e))?;
        if let Some((a, b)) = lines.iter().find_map(|(_, s)| s.outage) {
            let shade = RGBColor(200, 200, 200).mix(0.5).filled();
            chart
                .draw_series([Rectangle::new([(a as f64 / 1000.0, 0.0), (b as f64 / 1000.0, top)], shade)])
                .map_err(|e| fail(&e))?
                .label("outage")
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 15, y + 5)], RGBColor(200, 200, 200).filled()));
        }
        for (i, (name, s)) in lines.iter().enumerate() {
            let colour = COLOURS[i % COLOURS.len()];
            let w = s.bucket_us as f64 / 1000.0;
            let pts = s.points.iter().enumerate().map(|(b, p)| ((b as f64 + 0.5) * w, rate(s, pick(p))));
            chart
                .draw_series(LineSeries::new(pts, colour.stroke_width(2)))
                .map_err(|e| fail(&e))?
                .label(*name)
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 15, y)], colour.stroke_width(2)));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .map_err(|e| fail(&e))?;
    }
    root.present().map_err(|e| fail(&e))?;
    Ok(())
}
