//! The figures serving teams look at, each behind its own [`Exporter`]:
//!
//! - [`BaselineChartExporter`]: the gated metric per level, this run beside the baseline
//!   it was compared with, each bar the median over repeats with a min-max whisker, so a
//!   regression (or its absence) can be seen along with the noise the gate weighed.
//!   `<out>/<spec id>/<name>@<target>-vs-baseline.svg`, only when a baseline was found.
//! - [`LatencyCurveExporter`]: TTFT p99 against achieved images/s, one point per arrival
//!   rate (all repeats pooled), joined in rate order: the knee where latency takes off is
//!   the capacity that matters. `<out>/<spec id>/<name>@<target>-latency.svg`, for rate
//!   profiles (E2E p99 when the answers are not streamed).
//! - [`TelemetryChartExporter`]: the engine and GPU series with each level's window
//!   ([`super::telemetry::chart`]). `<out>/<spec id>/<name>@<target>-telemetry.svg`.

use std::path::{Path, PathBuf};

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::baseline::Baseline;
use super::chart::{self, ChartError, ChartPoint, ChartSeries, HEIGHT, WIDTH};
use super::export::{spec_dir, ExportError, Exporter};
use super::fingerprint::slug;
use super::level::{keys, rate_text, repeats_at};
use super::metrics::{median, Direction, LevelMetrics, Metric};
use super::report::TrialReport;
use super::sig3;

fn file(r: &TrialReport, out: &Path, suffix: &str) -> PathBuf {
    spec_dir(out, &r.spec_id).join(format!(
        "{}@{}-{suffix}.svg",
        slug(&r.throughput),
        slug(&r.target)
    ))
}

/// One bar per level of `metric`: median over the values, whisker min to max.
fn series_of(name: String, levels: Vec<(super::LevelKey, Vec<f64>, usize, usize)>) -> ChartSeries {
    let points = levels
        .into_iter()
        .filter_map(|(key, v, requests, failed)| {
            let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            Some(ChartPoint {
                concurrency: key.concurrency,
                rate: key.rate(),
                value: median(&v)?,
                range: (v.len() > 1).then_some((lo, hi)),
                requests,
                failed,
            })
        })
        .collect();
    ChartSeries { name, points }
}

/// This run's `metric` per level beside `baseline`'s, at the levels this run measured.
pub fn baseline_series(
    metric: Metric,
    current: &[LevelMetrics],
    baseline: &Baseline,
) -> Vec<ChartSeries> {
    let (mut now, mut before) = (Vec::new(), Vec::new());
    for key in keys(current) {
        let reps = repeats_at(current, key);
        let values: Vec<f64> = reps.iter().filter_map(|m| metric.value(m)).collect();
        let failed = reps.iter().map(|m| m.failed).sum();
        let requests = failed + reps.iter().map(|m| m.completed).sum::<usize>();
        now.push((key, values, requests, failed));
        if let Some(b) = baseline.level_at(key).and_then(|l| l.values.get(&metric)) {
            before.push((key, b.clone(), 0, 0));
        }
    }
    vec![
        series_of(format!("baseline ({})", baseline.created_at), before),
        series_of("this run".to_string(), now),
    ]
}

/// Renders the current-vs-baseline bars of `metric`.
pub fn render_baseline(
    title: &str,
    metric: Metric,
    current: &[LevelMetrics],
    baseline: &Baseline,
) -> Result<String, ChartError> {
    let y = match metric.direction() {
        Direction::HigherIsBetter => format!("{} (higher is better)", metric.label()),
        Direction::LowerIsBetter => format!("{} ms (lower is better)", metric.label()),
    };
    chart::render_svg_of(title, &y, &baseline_series(metric, current, baseline))
}

pub struct BaselineChartExporter;

impl Exporter for BaselineChartExporter {
    fn format(&self) -> &'static str {
        "baseline chart"
    }

    fn applies(&self, r: &TrialReport) -> bool {
        r.baseline.is_some()
    }

    fn export(&self, r: &TrialReport, out: &Path) -> Result<PathBuf, ExportError> {
        let b = r.baseline.as_ref().ok_or(ExportError::NoBaseline)?;
        let metric = r
            .outcome
            .levels
            .iter()
            .find_map(|l| l.comparison.as_ref().map(|c| c.metric))
            .unwrap_or(Metric::ImagesPerS);
        let path = file(r, out, "vs-baseline");
        let title = format!(
            "{}@{}: {} vs baseline",
            r.throughput,
            r.target,
            metric.label()
        );
        let svg = render_baseline(&title, metric, &r.metrics, b)?;
        chart::write_file(&path, &svg)?;
        Ok(path)
    }
}

/// One point of the latency-throughput curve.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CurvePoint {
    pub rate: f64,
    /// Achieved completions per second, repeats pooled.
    pub images_per_s: f64,
    /// The latency's p99 in ms, repeats pooled.
    pub p99_ms: f64,
}

/// The rate levels of `pooled`, in rate order, with TTFT p99 (or E2E p99 when no level
/// has a TTFT, i.e. unstreamed answers). The second value names the latency.
pub fn curve(pooled: &[LevelMetrics]) -> (Vec<CurvePoint>, &'static str) {
    let streamed = pooled.iter().any(|m| m.ttft_ms.is_some());
    let mut pts: Vec<CurvePoint> = pooled
        .iter()
        .filter_map(|m| {
            let lat = if streamed { m.ttft_ms } else { m.e2e_ms };
            Some(CurvePoint {
                rate: m.rate?,
                images_per_s: m.images_per_s,
                p99_ms: lat?.p99,
            })
        })
        .collect();
    pts.sort_by(|a, b| a.rate.total_cmp(&b.rate));
    (pts, if streamed { "TTFT p99" } else { "E2E p99" })
}

/// Renders the latency-throughput curve: x achieved images/s, y the latency's p99,
/// each point labelled with its asked rate.
pub fn render_curve(title: &str, pooled: &[LevelMetrics]) -> Result<String, ChartError> {
    let (pts, latency) = curve(pooled);
    let mut svg = String::new();
    draw_curve(&mut svg, title, latency, &pts).map_err(|e| ChartError::Draw(e.to_string()))?;
    Ok(svg)
}

fn draw_curve(
    svg: &mut String,
    title: &str,
    latency: &str,
    pts: &[CurvePoint],
) -> Result<(), Box<dyn std::error::Error>> {
    let x_max = pts.iter().map(|p| p.images_per_s).fold(0.0, f64::max);
    let y_max = pts.iter().map(|p| p.p99_ms).fold(0.0, f64::max);
    let x_max = if x_max > 0.0 { x_max * 1.15 } else { 1.0 };
    let y_max = if y_max > 0.0 { y_max * 1.2 } else { 1.0 };
    let root = SVGBackend::with_string(svg, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut c = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 24))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(72)
        .build_cartesian_2d(0f64..x_max, 0f64..y_max)?;
    c.configure_mesh()
        .x_desc("achieved images / s")
        .y_desc(format!("{latency} (ms)"))
        .axis_desc_style(("sans-serif", 19))
        .label_style(("sans-serif", 16))
        .x_label_formatter(&|x: &f64| sig3(*x))
        .y_label_formatter(&|y: &f64| sig3(*y))
        .light_line_style(TRANSPARENT)
        .bold_line_style(RGBColor(220, 220, 220))
        .draw()?;
    let color = RGBColor(0x00, 0x72, 0xB2);
    c.draw_series(LineSeries::new(
        pts.iter().map(|p| (p.images_per_s, p.p99_ms)),
        color.stroke_width(2),
    ))?;
    c.draw_series(
        pts.iter()
            .map(|p| Circle::new((p.images_per_s, p.p99_ms), 5, color.filled())),
    )?;
    let style =
        TextStyle::from(("sans-serif", 14).into_font()).pos(Pos::new(HPos::Left, VPos::Bottom));
    c.draw_series(pts.iter().map(|p| {
        EmptyElement::at((p.images_per_s, p.p99_ms))
            + Text::new(format!("{}/s", rate_text(p.rate)), (6, -6), style.clone())
    }))?;
    if pts.is_empty() {
        root.draw(&Text::new(
            "no rate level measured a latency",
            (WIDTH as i32 / 3, HEIGHT as i32 / 2),
            ("sans-serif", 20),
        ))?;
    }
    root.present()?;
    Ok(())
}

pub struct LatencyCurveExporter;

impl Exporter for LatencyCurveExporter {
    fn format(&self) -> &'static str {
        "latency curve"
    }

    fn applies(&self, r: &TrialReport) -> bool {
        r.pooled.iter().any(|m| m.rate.is_some())
    }

    fn export(&self, r: &TrialReport, out: &Path) -> Result<PathBuf, ExportError> {
        let path = file(r, out, "latency");
        let title = format!("{}@{}: latency vs throughput", r.throughput, r.target);
        let svg = render_curve(&title, &r.pooled)?;
        chart::write_file(&path, &svg)?;
        Ok(path)
    }
}

pub struct TelemetryChartExporter;

impl Exporter for TelemetryChartExporter {
    fn format(&self) -> &'static str {
        "telemetry chart"
    }

    fn applies(&self, r: &TrialReport) -> bool {
        r.telemetry.is_some()
    }

    fn export(&self, r: &TrialReport, out: &Path) -> Result<PathBuf, ExportError> {
        let t = r.telemetry.as_ref().ok_or(ExportError::NoTelemetry)?;
        let path = file(r, out, "telemetry");
        let title = format!("{}@{}: engine and GPU", r.throughput, r.target);
        super::telemetry::chart::write_svg(&path, &title, &t.series, &t.windows)?;
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::throughput::test_support::{h100, level};

    fn texts(svg: &str) -> Vec<String> {
        svg.split("<text")
            .skip(1)
            .filter_map(|t| Some(t[t.find('>')? + 1..t.find("</text>")?].trim().to_string()))
            .collect()
    }

    #[test]
    fn baseline_chart_sets_this_run_beside_the_baseline_with_spread() {
        let before = [
            level(1, 1.0, 50.0),
            level(1, 1.2, 50.0),
            level(4, 3.0, 60.0),
        ];
        let b = Baseline::from_metrics(h100(), "2026-11-01", &before);
        let now = [
            level(1, 0.7, 50.0),
            level(1, 0.8, 50.0),
            level(4, 3.1, 60.0),
        ];
        let s = baseline_series(Metric::ImagesPerS, &now, &b);
        assert_eq!(s[0].name, "baseline (2026-11-01)");
        let p = &s[0].points[0];
        assert_eq!((p.value, p.range), (1.1, Some((1.0, 1.2))));
        assert_eq!(
            (s[1].points[0].value, s[1].points[0].range),
            (0.75, Some((0.7, 0.8)))
        );
        assert_eq!(s[1].points[1].range, None);
        let svg = render_baseline("t", Metric::ImagesPerS, &now, &b).unwrap();
        let t = texts(&svg);
        for want in ["baseline (2026-11-01)", "this run", "1.1", "0.75", "3.1"] {
            assert!(t.iter().any(|x| x == want), "{want} missing from {t:?}");
        }
    }

    #[test]
    fn latency_curve_has_one_point_per_rate_in_rate_order() {
        let mut a = level(64, 1.9, 100.0);
        a.rate = Some(2.0);
        let mut b = level(64, 3.5, 400.0);
        b.rate = Some(4.0);
        let probe = level(64, 4.0, 900.0); // closed loop: not on the curve
        let (pts, what) = curve(&[b.clone(), probe, a.clone()]);
        assert_eq!(what, "TTFT p99");
        assert_eq!(pts.len(), 2);
        assert_eq!(
            (pts[0].rate, pts[0].images_per_s, pts[0].p99_ms),
            (2.0, 1.9, 150.0)
        );
        assert_eq!((pts[1].rate, pts[1].p99_ms), (4.0, 600.0));
        let svg = render_curve("curve", &[a, b]).unwrap();
        let t = texts(&svg);
        for want in [
            "curve",
            "achieved images / s",
            "TTFT p99 (ms)",
            "2/s",
            "4/s",
        ] {
            assert!(t.iter().any(|x| x == want), "{want} missing from {t:?}");
        }
        assert!(svg.contains("<circle"), "points drawn");
    }
}
