//! The terminal view of a run: a line per result as it arrives, then a case x target matrix.

use std::collections::BTreeMap;

use crate::results::{ResultRecord, Status};

fn mark(s: Status) -> &'static str {
    match s {
        Status::Passed => "PASS",
        Status::Failed => "FAIL",
        Status::Error => "ERROR",
        Status::Ignored => "IGNORED",
    }
}

fn truncate(s: &str, max: usize) -> String {
    let one_line = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= max {
        one_line
    } else {
        let cut: String = one_line.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}

/// `PASS   study/count::people@sim  0.12 s  "2"`
pub fn progress_line(r: &ResultRecord) -> String {
    let detail = match r.status {
        Status::Passed => format!("{:?}", truncate(r.answer.as_deref().unwrap_or(""), 60)),
        Status::Failed => format!(
            "{:?}  {}",
            truncate(r.answer.as_deref().unwrap_or(""), 40),
            r.verdict
                .as_ref()
                .map(|v| truncate(&v.summary(), 60))
                .unwrap_or_default()
        ),
        Status::Error | Status::Ignored => truncate(r.reason.as_deref().unwrap_or(""), 100),
    };
    format!(
        "{:<7} {}  {:.2} s  {}",
        mark(r.status),
        r.test,
        r.elapsed_ms / 1000.0,
        detail
    )
}

/// A case x target matrix of verdicts, cases in spec order, targets in name order.
pub fn verdict_table(records: &[ResultRecord]) -> String {
    let mut targets: Vec<&str> = records.iter().map(|r| r.target.as_str()).collect();
    targets.sort_unstable();
    targets.dedup();
    let mut rows: BTreeMap<String, BTreeMap<&str, Status>> = BTreeMap::new();
    for r in records {
        rows.entry(format!("{}::{}", r.spec, r.case))
            .or_default()
            .insert(r.target.as_str(), r.status);
    }
    let case_w = rows.keys().map(|k| k.len()).max().unwrap_or(4).max(4);
    let col_w: Vec<usize> = targets.iter().map(|t| t.len().max(7)).collect();
    let mut out = format!("{:<case_w$}", "case");
    for (t, w) in targets.iter().zip(&col_w) {
        out.push_str(&format!("  {t:<w$}"));
    }
    out.push('\n');
    out.push_str(&"-".repeat(case_w + col_w.iter().map(|w| w + 2).sum::<usize>()));
    out.push('\n');
    for (case, cells) in &rows {
        out.push_str(&format!("{case:<case_w$}"));
        for (t, w) in targets.iter().zip(&col_w) {
            let cell = cells.get(t).map_or("-", |s| mark(*s));
            out.push_str(&format!("  {cell:<w$}"));
        }
        out.push('\n');
    }
    out
}
