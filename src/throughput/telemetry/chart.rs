//! The telemetry chart: stacked panels over the sweep's time axis (engine requests, KV-cache
//! usage, GPU utilisation, GPU power), with each level's window shaded and labelled, so a
//! reader sees where the queue built up and what the GPU drew while it did.
//!
//! SVG for the reasons given in [`crate::throughput::chart`]; same palette and fonts.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::summary::{gpu_samples, scrape_values, Combine, LevelWindow};
use super::{TelemetrySeries, KV_CACHE_USAGE, RUNNING, WAITING};
use crate::throughput::chart::ChartError;

pub const WIDTH: u32 = 900;
const PANEL_HEIGHT: u32 = 200;
const TITLE_HEIGHT: u32 = 44;

const BLUE: RGBColor = RGBColor(0x00, 0x72, 0xB2);
const ORANGE: RGBColor = RGBColor(0xE6, 0x9F, 0x00);
const GREEN: RGBColor = RGBColor(0x00, 0x9E, 0x73);
const VERMILION: RGBColor = RGBColor(0xD5, 0x5E, 0x00);
const SHADES: [RGBColor; 2] = [RGBColor(0xEE, 0xF3, 0xF8), RGBColor(0xF8, 0xF1, 0xE6)];

struct Line {
    name: &'static str,
    color: RGBColor,
    points: Vec<(f64, f64)>,
}

struct Panel {
    y_desc: &'static str,
    lines: Vec<Line>,
}

fn panels(series: &TelemetrySeries) -> Vec<Panel> {
    let gpu = gpu_samples(series);
    let pick = |f: fn(&super::summary::GpuSample) -> Option<f64>| -> Vec<(f64, f64)> {
        gpu.iter().filter_map(|g| Some((g.t_s, f(g)?))).collect()
    };
    let candidates = vec![
        Panel {
            y_desc: "engine requests",
            lines: vec![
                Line {
                    name: "running",
                    color: BLUE,
                    points: scrape_values(series, &RUNNING, Combine::Sum),
                },
                Line {
                    name: "waiting",
                    color: ORANGE,
                    points: scrape_values(series, &WAITING, Combine::Sum),
                },
            ],
        },
        Panel {
            y_desc: "KV cache %",
            lines: vec![Line {
                name: "KV-cache usage",
                color: GREEN,
                points: scrape_values(series, &KV_CACHE_USAGE, Combine::Max)
                    .into_iter()
                    .map(|(t, v)| (t, v * 100.0))
                    .collect(),
            }],
        },
        Panel {
            y_desc: "GPU util %",
            lines: vec![Line {
                name: "GPU utilisation (mean of GPUs)",
                color: VERMILION,
                points: pick(|g| g.util_pct),
            }],
        },
        Panel {
            y_desc: "GPU power W",
            lines: vec![Line {
                name: "power (sum of GPUs)",
                color: BLUE,
                points: pick(|g| g.power_w),
            }],
        },
    ];
    candidates
        .into_iter()
        .filter(|p| p.lines.iter().any(|l| !l.points.is_empty()))
        .collect()
}

/// Renders the chart; a sweep that sampled nothing gets one panel that says so and why.
pub fn render_svg(
    title: &str,
    series: &TelemetrySeries,
    windows: &[LevelWindow],
) -> Result<String, ChartError> {
    let mut svg = String::new();
    draw(&mut svg, title, series, windows).map_err(|e| ChartError::Draw(e.to_string()))?;
    Ok(svg)
}

/// [`render_svg`] into a file, creating its directory.
pub fn write_svg(
    path: &Path,
    title: &str,
    series: &TelemetrySeries,
    windows: &[LevelWindow],
) -> Result<(), ChartError> {
    let svg = render_svg(title, series, windows)?;
    let err = |source| ChartError::Write {
        path: path.into(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    crate::atomic::write_atomic(path, svg.as_bytes()).map_err(err)
}

fn draw(
    svg: &mut String,
    title: &str,
    series: &TelemetrySeries,
    windows: &[LevelWindow],
) -> Result<(), Box<dyn std::error::Error>> {
    let panels = panels(series);
    let rows = panels.len().max(1);
    let height = TITLE_HEIGHT + PANEL_HEIGHT * rows as u32;
    let root = SVGBackend::with_string(svg, (WIDTH, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(title, ("sans-serif", 24))?;
    let x_max = windows
        .iter()
        .map(|w| w.end_s)
        .chain([series.duration_s])
        .fold(0.0f64, f64::max)
        .max(1.0);

    if panels.is_empty() {
        let mut lines = vec!["no telemetry was sampled".to_string()];
        lines.extend(series.notes());
        let style = TextStyle::from(("sans-serif", 17).into_font());
        for (i, l) in lines.iter().enumerate() {
            root.draw(&Text::new(
                l.clone(),
                (40, 30 + 26 * i as i32),
                style.clone(),
            ))?;
        }
        root.present()?;
        return Ok(());
    }

    let areas = root.split_evenly((rows, 1));
    for (row, (panel, area)) in panels.iter().zip(areas.iter()).enumerate() {
        let top = panel
            .lines
            .iter()
            .flat_map(|l| l.points.iter().map(|p| p.1))
            .filter(|v| v.is_finite())
            .fold(0.0f64, f64::max);
        let y_max = if panel.y_desc.ends_with('%') {
            100.0f64.max(top * 1.05)
        } else {
            (top * 1.15).max(1.0)
        };
        let last = row + 1 == rows;
        let mut chart = ChartBuilder::on(area)
            .margin_left(12)
            .margin_right(20)
            .margin_top(8)
            .x_label_area_size(if last { 40 } else { 12 })
            .y_label_area_size(64)
            .build_cartesian_2d(0f64..x_max, 0f64..y_max)?;
        let mut mesh = chart.configure_mesh();
        mesh.y_desc(panel.y_desc)
            .y_labels(5)
            .y_label_formatter(&|y: &f64| trim(*y))
            .axis_desc_style(("sans-serif", 16))
            .label_style(("sans-serif", 14))
            .light_line_style(TRANSPARENT)
            .bold_line_style(RGBColor(225, 225, 225));
        if last {
            mesh.x_desc("seconds since the sweep started");
        } else {
            mesh.x_label_formatter(&|_| String::new());
        }
        mesh.draw()?;

        // Level windows: alternating shades behind the lines, named in the top panel.
        chart.draw_series(windows.iter().enumerate().map(|(i, w)| {
            Rectangle::new(
                [(w.start_s, 0.0), (w.end_s, y_max)],
                SHADES[i % SHADES.len()].filled(),
            )
        }))?;
        if row == 0 {
            let style = TextStyle::from(("sans-serif", 13).into_font())
                .pos(Pos::new(HPos::Center, VPos::Top));
            chart.draw_series(windows.iter().map(|w| {
                Text::new(
                    w.label.clone(),
                    ((w.start_s + w.end_s) / 2.0, y_max),
                    style.clone(),
                )
            }))?;
        }
        for line in panel.lines.iter().filter(|l| !l.points.is_empty()) {
            let color = line.color;
            chart
                .draw_series(LineSeries::new(
                    line.points.iter().copied(),
                    color.stroke_width(2),
                ))?
                .label(line.name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .label_font(("sans-serif", 14))
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(180, 180, 180))
            .draw()?;
    }
    root.present()?;
    Ok(())
}

fn trim(y: f64) -> String {
    let s = format!("{y:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::super::{GpuPoint, GpuTrack, MetricKind, MetricSeries, SourceStatus};
    use super::*;

    fn sample_series() -> TelemetrySeries {
        let ts: Vec<f64> = (0..30).map(|i| i as f64 * 0.5).collect();
        let gauge = |name: &str, f: &dyn Fn(f64) -> f64| MetricSeries {
            name: name.into(),
            labels: Default::default(),
            kind: MetricKind::Gauge,
            points: ts.iter().map(|&t| [t, f(t)]).collect(),
        };
        let mut s = TelemetrySeries {
            interval_s: 0.5,
            duration_s: 15.0,
            ..TelemetrySeries::default()
        };
        s.engine.status = SourceStatus::Sampled;
        s.engine.series = vec![
            gauge("vllm:num_requests_running", &|t| (t / 2.0).floor().min(4.0)),
            gauge("vllm:num_requests_waiting", &|t| (t - 8.0).max(0.0).floor()),
            gauge("vllm:kv_cache_usage_perc", &|t| (t / 15.0).min(1.0)),
        ];
        s.gpu.status = SourceStatus::Sampled;
        s.gpu.gpus = vec![GpuTrack {
            index: 0,
            name: "fake".into(),
            points: ts
                .iter()
                .map(|&t| GpuPoint {
                    t_s: t,
                    util_pct: Some((t * 7.0).min(100.0)),
                    mem_used_mib: Some(1000.0),
                    mem_total_mib: Some(80000.0),
                    power_w: (!(5.0..=6.0).contains(&t)).then_some(100.0 + t * 20.0),
                })
                .collect(),
        }];
        s
    }

    fn windows() -> Vec<LevelWindow> {
        [("c=1", 0.0, 5.0), ("c=4", 5.0, 10.0), ("c=16", 10.0, 15.0)]
            .into_iter()
            .map(|(l, a, b)| LevelWindow {
                label: l.into(),
                start_s: a,
                end_s: b,
                images_per_s: None,
            })
            .collect()
    }

    #[test]
    fn draws_a_panel_per_source_with_levels_named() {
        let svg = render_svg("caption-560 telemetry", &sample_series(), &windows()).unwrap();
        if let Ok(dir) = std::env::var("EYETEST_CHART_OUT") {
            std::fs::write(Path::new(&dir).join("telemetry-chart.svg"), &svg).unwrap();
        }
        for needle in [
            "caption-560 telemetry",
            "engine requests",
            "KV cache %",
            "GPU util %",
            "GPU power W",
            "running",
            "waiting",
            "c=1",
            "c=16",
            "seconds since the sweep started",
        ] {
            assert!(svg.contains(needle), "missing {needle:?}");
        }
        assert!(svg.contains(&format!("height=\"{}\"", TITLE_HEIGHT + 4 * PANEL_HEIGHT)));
        // One polyline per drawn line.
        assert!(
            svg.matches("<polyline").count() >= 5,
            "{}",
            svg.matches("<polyline").count()
        );
    }

    #[test]
    fn nothing_sampled_says_why() {
        let mut s = TelemetrySeries::default();
        s.engine.status = SourceStatus::Unavailable("GET http://h/metrics answered 404".into());
        let svg = render_svg("empty", &s, &[]).unwrap();
        assert!(svg.contains("no telemetry was sampled"));
        assert!(svg.contains("no engine metrics: GET http://h/metrics answered 404"));
    }
}
