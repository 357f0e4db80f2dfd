//! The per-level table a sweep prints: one row per concurrency level, each number the median
//! over repeats (the value the gate compares), requests summed over repeats.

use super::level::{keys, repeats_at};
use super::metrics::{median, LevelMetrics, Stats};
use super::verdict::GateOutcome;
use super::{percent, sig3};

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
/// Latencies are in ms; "-" marks a value no repeat measured. With the gate's `outcome`, a
/// last column says each level's verdict (`ok`, `FAIL`, `ALL FAILED`), so a level where
/// requests failed is marked on its own row; a goodput column appears when the spec
/// defines goodput (median share of good requests over repeats).
pub fn level_table(metrics: &[LevelMetrics], outcome: Option<&GateOutcome>) -> String {
    let levels = keys(metrics);
    let goodput = metrics.iter().any(|m| m.goodput.is_some());
    // Open-loop levels: the send rate achieved and the queueing delay behind the cap.
    let open = metrics.iter().any(|m| m.rate.is_some());
    let mut header: Vec<String> = HEADER.iter().map(|s| s.to_string()).collect();
    if open {
        header[0] = "level".into();
        header.splice(2..2, ["sent/s".to_string()]);
        header.extend(["queue mean".to_string(), "queue p99".to_string()]);
    }
    if goodput {
        header.push("goodput".into());
    }
    if outcome.is_some() {
        header.push("status".into());
    }
    let mut rows: Vec<Vec<String>> = vec![header];
    for c in levels {
        let reps = repeats_at(metrics, c);
        let med = |f: &dyn Fn(&LevelMetrics) -> Option<f64>| -> String {
            let v: Vec<f64> = reps.iter().filter_map(|m| f(m)).collect();
            median(&v).map_or("-".into(), sig3)
        };
        let stat = |s: fn(&LevelMetrics) -> &Option<Stats>, g: fn(&Stats) -> f64| {
            med(&|m: &LevelMetrics| s(m).as_ref().map(g))
        };
        let ok: usize = reps.iter().map(|m| m.completed).sum();
        let failed: usize = reps.iter().map(|m| m.failed).sum();
        let mut row = vec![
            if open {
                c.to_string()
            } else {
                c.concurrency.to_string()
            },
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
        ];
        if open {
            row.splice(2..2, [med(&|m| m.sent_per_s)]);
            row.push(stat(|m| &m.queued_ms, |s| s.mean));
            row.push(stat(|m| &m.queued_ms, |s| s.p99));
        }
        if goodput {
            let v: Vec<f64> = reps
                .iter()
                .filter_map(|m| m.goodput.map(|g| g.fraction))
                .collect();
            row.push(median(&v).map_or("-".into(), percent));
        }
        if let Some(o) = outcome {
            row.push(o.level_at(c).map_or("-", |l| l.status()).to_string());
        }
        rows.push(row);
    }
    let widths: Vec<usize> = (0..rows[0].len())
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
        let t = level_table(
            &[
                level(4, 2.0, 100.0),
                level(1, 0.8, 50.0),
                level(1, 0.7, 60.0),
                level(1, 0.9, 55.0),
            ],
            None,
        );
        let rows: Vec<Vec<&str>> = t.lines().map(|l| l.split_whitespace().collect()).collect();
        assert_eq!(rows.len(), 4, "{t}");
        assert_eq!(rows[0][..3], ["c", "ok/failed", "img/s"], "{t}");
        // Three repeats at c=1: requests summed, images/s the median.
        assert_eq!(rows[2][..3], ["1", "192/0", "0.800"], "{t}");
        assert_eq!(rows[3][..3], ["4", "64/0", "2.00"], "{t}");
    }

    #[test]
    fn failed_levels_are_marked() {
        use crate::throughput::baseline::BaselineLookup;
        use crate::throughput::config::GateConfig;
        use crate::throughput::test_support::h100;
        use crate::throughput::verdict::evaluate;
        let mut dead = level(4, 0.0, 100.0);
        (dead.completed, dead.failed) = (0, 64);
        let mut some = level(2, 1.0, 100.0);
        some.failed = 3;
        let metrics = [level(1, 0.8, 50.0), some, dead];
        let lookup = BaselineLookup::Missing {
            expected: "k.toml".into(),
            others: vec![],
        };
        let outcome = evaluate(&GateConfig::default(), &h100(), &metrics, &lookup);
        let t = level_table(&metrics, Some(&outcome));
        let last: Vec<&str> = t
            .lines()
            .map(|l| l.rsplit("  ").next().unwrap().trim())
            .collect();
        assert_eq!(last[0], "status", "{t}");
        assert_eq!(last[2..], ["ok", "FAIL", "ALL FAILED"], "{t}");
    }
}
