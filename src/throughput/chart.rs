//! The study's bar chart: images/s per concurrency level, one bar per model-and-hardware
//! series, as an SVG.
//!
//! SVG because plotters' bitmap backend pulls an older `image` crate and its font
//! rendering needs fontconfig; the SVG backend writes `<text>` and lets the viewer's
//! fonts draw it, so the chart builds anywhere and diffs as text.

use std::fs;
use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::fingerprint::GpuInfo;
use super::level::{keys, rate_text, repeats_at, LevelKey};
use super::metrics::{median, LevelMetrics};
use super::sig3;

pub const WIDTH: u32 = 900;
pub const HEIGHT: u32 = 500;
/// Approximate plot area after caption, margins and axis labels, for layout decisions.
const PLOT_W_PX: f64 = 800.0;
const PLOT_PX: f64 = 385.0;
const LEGEND_ROW_PX: f64 = 21.0;
const MAX_BAR_PX: f64 = 110.0;

/// One model-and-hardware configuration: a bar per concurrency level.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartSeries {
    pub name: String,
    pub points: Vec<ChartPoint>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChartPoint {
    /// For an open-loop level, its cap.
    pub concurrency: usize,
    /// Open-loop levels: the asked rate (requests/s).
    pub rate: Option<f64>,
    /// The bar: median images/s over repeats.
    pub value: f64,
    /// Min and max over repeats, drawn as a whisker so the reader sees the noise the gate
    /// saw; `None` for a single repeat.
    pub range: Option<(f64, f64)>,
    /// Requests sent and failed over the repeats: a level with failures says so on its
    /// bar, and one where all failed is labelled instead of drawn as an empty slot.
    pub requests: usize,
    pub failed: usize,
}

impl ChartPoint {
    pub fn key(&self) -> LevelKey {
        LevelKey::new(self.concurrency, self.rate)
    }
}

impl ChartSeries {
    /// One bar per concurrency level: the median images/s over the repeats in `metrics`,
    /// whiskers from min to max when there is more than one.
    pub fn from_metrics(name: impl Into<String>, metrics: &[LevelMetrics]) -> ChartSeries {
        let points = keys(metrics)
            .into_iter()
            .filter_map(|c| {
                let reps = repeats_at(metrics, c);
                let v: Vec<f64> = reps.iter().map(|m| m.images_per_s).collect();
                let failed: usize = reps.iter().map(|m| m.failed).sum();
                let requests = failed + reps.iter().map(|m| m.completed).sum::<usize>();
                let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                Some(ChartPoint {
                    concurrency: c.concurrency,
                    rate: c.rate(),
                    value: median(&v)?,
                    range: (v.len() > 1).then_some((lo, hi)),
                    requests,
                    failed,
                })
            })
            .collect();
        ChartSeries {
            name: name.into(),
            points,
        }
    }
}

/// "llama-11b (1x H100 SXM)": target plus GPU configuration, the study's legend entries.
pub fn series_name(target: &str, gpu: &GpuInfo) -> String {
    format!("{target} ({})", gpu.short())
}

#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    #[error("cannot draw chart: {0}")]
    Draw(String),
    #[error("cannot write chart {path}: {source}")]
    Write {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

/// Colour-blind-safe (Okabe-Ito), minus its yellow, which vanishes on white.
const PALETTE: [RGBColor; 7] = [
    RGBColor(0x00, 0x72, 0xB2),
    RGBColor(0xE6, 0x9F, 0x00),
    RGBColor(0x00, 0x9E, 0x73),
    RGBColor(0xD5, 0x5E, 0x00),
    RGBColor(0xCC, 0x79, 0xA7),
    RGBColor(0x56, 0xB4, 0xE9),
    RGBColor(0x33, 0x33, 0x33),
];

/// Renders the grouped bar chart to an SVG string.
pub fn render_svg(title: &str, series: &[ChartSeries]) -> Result<String, ChartError> {
    render_svg_of(title, "images / s", series)
}

/// [`render_svg`] of another quantity (`y_desc` names it and its unit).
pub fn render_svg_of(
    title: &str,
    y_desc: &str,
    series: &[ChartSeries],
) -> Result<String, ChartError> {
    let mut svg = String::new();
    draw(&mut svg, title, y_desc, series).map_err(|e| ChartError::Draw(e.to_string()))?;
    Ok(svg)
}

pub fn write_svg(path: &Path, title: &str, series: &[ChartSeries]) -> Result<(), ChartError> {
    write_file(path, &render_svg(title, series)?)
}

/// Writes a rendered chart, creating its directory.
pub fn write_file(path: &Path, svg: &str) -> Result<(), ChartError> {
    let err = |source| ChartError::Write {
        path: path.into(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(err)?;
    }
    crate::atomic::write_atomic(path, svg.as_bytes()).map_err(err)
}

fn draw(
    svg: &mut String,
    title: &str,
    y_desc: &str,
    series: &[ChartSeries],
) -> Result<(), Box<dyn std::error::Error>> {
    // Categories: every concurrency any series measured. Levels are categories, not a
    // numeric axis: 1, 2, 4, ... 32 would crowd the small ones into a corner.
    let mut levels: Vec<LevelKey> = series
        .iter()
        .flat_map(|s| s.points.iter().map(ChartPoint::key))
        .collect();
    levels.sort_unstable();
    levels.dedup();
    let open = levels.iter().any(|k| k.rate().is_some());
    let top = series
        .iter()
        .flat_map(|s| &s.points)
        .map(|p| p.range.map_or(p.value, |(_, hi)| hi.max(p.value)))
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max);
    // Headroom so the tallest bar and its label stay below the legend box in the upper
    // left: the legend takes about LEGEND_ROW_PX per series of a PLOT_PX-high plot area.
    let k = series.len().max(1) as f64;
    let free = (PLOT_PX - 40.0 - LEGEND_ROW_PX * k).max(PLOT_PX / 3.0);
    let y_max = if top > 0.0 {
        top * (PLOT_PX / free).max(1.2)
    } else {
        1.0
    };
    let n = levels.len().max(1);

    let root = SVGBackend::with_string(svg, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 26))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), 0f64..y_max)?;

    // Category centres sit on the integers 0..n, so asking for n labels puts one on each.
    let label_of = |x: &f64| {
        let i = x.round();
        if (x - i).abs() < 1e-6 && i >= 0.0 {
            levels
                .get(i as usize)
                .map(|k| match k.rate() {
                    Some(r) => format!("{}/s", rate_text(r)),
                    None if open => format!("c={}", k.concurrency),
                    None => k.concurrency.to_string(),
                })
                .unwrap_or_default()
        } else {
            String::new()
        }
    };
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n)
        .x_label_formatter(&label_of)
        .y_labels(8)
        .y_label_formatter(&|y: &f64| trim_number(&format!("{y:.2}")))
        .x_desc(match (open, levels.iter().any(|k| k.rate().is_none())) {
            (true, true) => "arrival rate (requests / s), probes at c",
            (true, false) => "arrival rate (requests / s)",
            _ => "concurrent requests",
        })
        .y_desc(y_desc)
        .axis_desc_style(("sans-serif", 19))
        .label_style(("sans-serif", 17))
        // Minor grid lines only add ink; the major ones and the value labels suffice.
        .light_line_style(TRANSPARENT)
        .bold_line_style(RGBColor(220, 220, 220))
        .draw()?;

    // Bars share 80% of a category, but never grow wider than MAX_BAR_PX: one series at
    // one level would otherwise be a wall.
    let category_px = PLOT_W_PX / n as f64;
    let bar = (0.8 / k).min(MAX_BAR_PX / category_px);
    let group = bar * k;
    // Value labels shrink with the bars so neighbours' labels do not overlap: "0.237" is
    // about 2.2 font sizes wide once plotters has scaled the font for SVG.
    let font = (bar * category_px / 2.2).clamp(10.0, 16.0);
    let value_style =
        TextStyle::from(("sans-serif", font).into_font()).pos(Pos::new(HPos::Center, VPos::Bottom));
    for (si, s) in series.iter().enumerate() {
        let color = PALETTE[si % PALETTE.len()];
        let placed: Vec<(f64, &ChartPoint)> = s
            .points
            .iter()
            .filter(|p| p.value.is_finite())
            .filter_map(|p| levels.iter().position(|&c| c == p.key()).map(|i| (i, p)))
            .map(|(i, p)| (i as f64 - group / 2.0 + bar * (si as f64 + 0.5), p))
            .collect();
        let inset = bar * 0.06;
        chart
            .draw_series(placed.iter().map(|&(x, p)| {
                Rectangle::new(
                    [
                        (x - bar / 2.0 + inset, 0.0),
                        (x + bar / 2.0 - inset, p.value),
                    ],
                    color.filled(),
                )
            }))?
            .label(s.name.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], color.filled()));
        chart.draw_series(placed.iter().filter_map(|&(x, p)| {
            let (lo, hi) = p.range?;
            Some(PathElement::new(
                vec![(x, lo), (x, hi)],
                BLACK.stroke_width(1),
            ))
        }))?;
        let fail_style = value_style.clone().color(&RGBColor(0xC0, 0x00, 0x00));
        chart.draw_series(placed.iter().map(|&(x, p)| {
            let y = p.range.map_or(p.value, |(_, hi)| hi.max(p.value));
            let (text, style) = point_label(p);
            let style = if style { &fail_style } else { &value_style };
            EmptyElement::at((x, y)) + Text::new(text, (0, -3), style.clone())
        }))?;
    }

    if !series.is_empty() {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .label_font(("sans-serif", 17))
            .background_style(WHITE.mix(0.9))
            .border_style(RGBColor(180, 180, 180))
            .draw()?;
    }
    root.present()?;
    Ok(())
}

/// A bar's label and whether it reports failures (drawn in red): `0.79`,
/// `0.79 (3 failed)`, or `all 16 failed` where nothing was measured.
fn point_label(p: &ChartPoint) -> (String, bool) {
    if p.requests > 0 && p.failed == p.requests {
        (format!("all {} failed", p.failed), true)
    } else if p.failed > 0 {
        (
            format!("{} ({} failed)", trim_number(&sig3(p.value)), p.failed),
            true,
        )
    } else {
        (trim_number(&sig3(p.value)), false)
    }
}

/// "0.790" -> "0.79", "6.00" -> "6": on a bar, trailing zeros are noise.
fn trim_number(s: &str) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn study_series() -> Vec<ChartSeries> {
        let pts = |vals: &[(usize, f64)]| {
            vals.iter()
                .map(|&(c, v)| ChartPoint {
                    concurrency: c,
                    rate: None,
                    value: v,
                    range: Some((v * 0.97, v * 1.02)),
                    requests: 64,
                    failed: 0,
                })
                .collect()
        };
        vec![
            ChartSeries {
                name: series_name("llama-11b", &GpuInfo::declared("H100 SXM", 1)),
                points: pts(&[
                    (1, 0.79),
                    (2, 1.41),
                    (4, 2.52),
                    (8, 4.1),
                    (16, 5.9),
                    (32, 6.8),
                ]),
            },
            ChartSeries {
                name: series_name("llama-90b", &GpuInfo::declared("H100 SXM", 4)),
                points: pts(&[
                    (1, 0.12),
                    (2, 0.2),
                    (4, 0.29),
                    (8, 0.37),
                    (16, 0.42),
                    (32, 0.44),
                ]),
            },
        ]
    }

    /// The trimmed contents of every `<text>` element (plotters puts them on their own line).
    fn texts(svg: &str) -> Vec<String> {
        svg.split("<text")
            .skip(1)
            .filter_map(|t| {
                let body = &t[t.find('>')? + 1..t.find("</text>")?];
                Some(body.trim().to_string())
            })
            .collect()
    }

    #[test]
    fn svg_has_title_axes_legend_and_values() {
        let svg = render_svg("caption-560: images/s by concurrency", &study_series()).unwrap();
        // Set to a directory to look at the chart (e.g. convert with rsvg-convert).
        if let Ok(dir) = std::env::var("EYETEST_CHART_OUT") {
            fs::write(Path::new(&dir).join("throughput-chart.svg"), &svg).unwrap();
        }
        for needle in [
            "caption-560: images/s by concurrency",
            "concurrent requests",
            "images / s",
            "llama-11b (1x H100 SXM)",
            "llama-90b (4x H100 SXM)",
            "0.79",
            "0.42",
            "6.8",
            "32",
        ] {
            assert!(
                texts(&svg).iter().any(|t| t == needle),
                "missing {needle:?} in {:?}",
                texts(&svg)
            );
        }
        assert!(svg.contains("width=\"900\" height=\"500\""));
        // 12 bars plus background and legend swatches.
        assert!(svg.matches("<rect").count() >= 12);
    }

    #[test]
    fn empty_and_single_series_render() {
        let svg = render_svg("nothing", &[]).unwrap();
        assert!(svg.contains("nothing"));
        let one = vec![ChartSeries {
            name: "sim (no GPU)".into(),
            points: vec![
                ChartPoint {
                    concurrency: 1,
                    rate: None,
                    value: 3.0,
                    range: None,
                    requests: 8,
                    failed: 0,
                },
                ChartPoint {
                    concurrency: 2,
                    rate: None,
                    value: 4.0,
                    range: None,
                    requests: 8,
                    failed: 2,
                },
                ChartPoint {
                    concurrency: 4,
                    rate: None,
                    value: 0.0,
                    range: None,
                    requests: 8,
                    failed: 8,
                },
            ],
        }];
        let svg = render_svg("one", &one).unwrap();
        let t = texts(&svg);
        assert!(
            t.contains(&"sim (no GPU)".to_string())
                && t.contains(&"3".to_string())
                && t.contains(&"4 (2 failed)".to_string())
                && t.contains(&"all 8 failed".to_string()),
            "{t:?}"
        );
    }
}
