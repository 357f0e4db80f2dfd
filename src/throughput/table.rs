//! The per-level table a sweep prints: one row per concurrency level, each number the median
//! over repeats (the value the gate compares), requests summed over repeats.

use super::metrics::{median, LevelMetrics, Stats};
use super::sig3;

const HEADER: [&str; 11] = [
    "c",
    "ok/failed",
    "img/s",
    "out tok/s",
    "TTFT p50",
    "TTFT p99",
    "TPOT p50",
    "ITL p99",
    "E2E p50",
    "queued p50",
    "out len",
];

/// Renders `metrics` (every repeat of every level, any order) as an aligned text table.
/// Latencies are in ms; "-" marks a value no repeat measured.
pub fn level_table(metrics: &[LevelMetrics]) -> String {
    let mut levels: Vec<usize> = metrics.iter().map(|m| m.concurrency).collect();
    levels.sort_unstable();
    levels.dedup();
    let mut rows: Vec<Vec<String>> = vec![HEADER.iter().map(|s| s.to_string()).collect()];
    for c in levels {
        let reps: Vec<&LevelMetrics> = metrics.iter().filter(|m| m.concurrency == c).collect();
        let med = |f: &dyn Fn(&LevelMetrics) -> Option<f64>| -> String {
            let v: Vec<f64> = reps.iter().filter_map(|m| f(m)).collect();
            median(&v).map_or("-".into(), sig3)
        };
        let stat = |s: fn(&LevelMetrics) -> &Option<Stats>, g: fn(&Stats) -> f64| {
            med(&|m: &LevelMetrics| s(m).as_ref().map(g))
        };
        let ok: usize = reps.iter().map(|m| m.completed).sum();
        let failed: usize = reps.iter().map(|m| m.failed).sum();
        rows.push(vec![
            c.to_string(),
            format!("{ok}/{failed}"),
            med(&|m| Some(m.images_per_s)),
            med(&|m| m.output_tokens_per_s),
            stat(|m| &m.ttft_ms, |s| s.p50),
            stat(|m| &m.ttft_ms, |s| s.p99),
            stat(|m| &m.tpot_ms, |s| s.p50),
            stat(|m| &m.itl_ms, |s| s.p99),
            stat(|m| &m.e2e_ms, |s| s.p50),
            stat(|m| &m.queued_ms, |s| s.p50),
            stat(|m| &m.output_len, |s| s.mean),
        ]);
    }
    let widths: Vec<usize> = (0..HEADER.len())
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for (n, row) in rows.iter().enumerate() {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:>w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
        if n == 0 {
            out.push_str(&format!(
                "{}(latencies in ms; medians over repeats)\n",
                " ".repeat(widths[0] + 2)
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::throughput::test_support::level;

    #[test]
    fn one_row_per_level_with_medians() {
        let t = level_table(&[
            level(4, 2.0, 100.0),
            level(1, 0.8, 50.0),
            level(1, 0.7, 60.0),
            level(1, 0.9, 55.0),
        ]);
        let rows: Vec<Vec<&str>> = t.lines().map(|l| l.split_whitespace().collect()).collect();
        assert_eq!(rows.len(), 4, "{t}");
        assert_eq!(rows[0][..3], ["c", "ok/failed", "img/s"], "{t}");
        // Three repeats at c=1: requests summed, images/s the median.
        assert_eq!(rows[2][..3], ["1", "192/0", "0.800"], "{t}");
        assert_eq!(rows[3][..3], ["4", "64/0", "2.00"], "{t}");
    }
}
