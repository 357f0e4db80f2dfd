//! The terminal view of a run: a line per result as it arrives, then a case x target matrix,
//! then every distinct error in full.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::results::{ResultRecord, Status};
use crate::verdict::SnapshotStatus;

/// Waits for a concurrency slot shorter than this are not worth a word in a result line.
const QUEUED_SHOWN_MS: f64 = 100.0;

/// At most this many test names are listed under an error; the rest are counted.
const TESTS_PER_ERROR: usize = 10;

fn truncate(s: &str, max: usize) -> String {
    let one_line = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= max {
        one_line
    } else {
        let cut: String = one_line.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}

/// `PASS    study/count::people@sim  0.12 s  snapshot unchanged  "2"`
///
/// The time is the request's own; a long wait for a concurrency slot is shown beside it.
/// Errors are cut to one line here and shown whole by [`error_summary`].
pub fn progress_line(r: &ResultRecord) -> String {
    let detail = match r.status {
        Status::Passed => format!("{:?}", truncate(r.answer.as_deref().unwrap_or(""), 60)),
        Status::Failed => {
            let rubric = r
                .verdict
                .as_ref()
                .filter(|v| !v.passed || r.repeats.is_some())
                .map(|v| truncate(&v.summary(), 60))
                .filter(|s| s != "ok")
                .unwrap_or_default();
            format!(
                "{:?}  {rubric}",
                truncate(r.answer.as_deref().unwrap_or(""), 40)
            )
        }
        Status::Error | Status::Ignored => truncate(r.reason.as_deref().unwrap_or(""), 100),
    };
    let mut time = format!("{:.2} s", r.elapsed_ms / 1000.0);
    if r.queued_ms >= QUEUED_SHOWN_MS {
        let _ = write!(time, " (+{:.2} s queued)", r.queued_ms / 1000.0);
    }
    let snapshot = r
        .snapshot
        .map(|s| format!("snapshot {:<9}  ", s.word()))
        .unwrap_or_default();
    format!(
        "{:<7} {}  {time}  {snapshot}{}",
        r.status.mark(),
        r.test,
        detail.trim_end()
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
            let cell = cells.get(t).map_or("-", |s| s.mark());
            out.push_str(&format!("  {cell:<w$}"));
        }
        out.push('\n');
    }
    out
}

/// Every distinct error, whole, once, with the tests it hit: the cause of a failed request
/// comes at the end of its message (`... : Connection refused`), past where a result line
/// is cut. Empty when there was no error.
pub fn error_summary(records: &[ResultRecord]) -> String {
    let mut errors: Vec<(&str, Vec<&str>)> = Vec::new();
    for r in records.iter().filter(|r| r.status == Status::Error) {
        let text = r
            .reason
            .as_deref()
            .unwrap_or("no answer (no reason recorded)");
        match errors.iter_mut().find(|(t, _)| *t == text) {
            Some((_, tests)) => tests.push(&r.test),
            None => errors.push((text, vec![&r.test])),
        }
    }
    if errors.is_empty() {
        return String::new();
    }
    let mut out = format!("\n{} distinct error(s):\n", errors.len());
    for (i, (text, tests)) in errors.iter().enumerate() {
        let _ = writeln!(out, "\n[{}] {text}", i + 1);
        let shown = tests.len().min(TESTS_PER_ERROR);
        let mut list = tests[..shown].join(", ");
        if tests.len() > shown {
            let _ = write!(list, " and {} more", tests.len() - shown);
        }
        let _ = writeln!(out, "    hit {} test(s): {list}", tests.len());
    }
    out
}

/// What to do about new and changed snapshots; empty when every snapshot matched.
pub fn snapshot_summary(records: &[ResultRecord]) -> String {
    let count = |s: SnapshotStatus| {
        records
            .iter()
            .filter(|r| r.snapshot == Some(s) && r.status == Status::Failed)
            .count()
    };
    let (new, changed) = (count(SnapshotStatus::New), count(SnapshotStatus::Changed));
    if new + changed == 0 {
        return String::new();
    }
    format!(
        "\n{new} new and {changed} changed snapshot(s) failed their case; review them with \
         `cargo insta review` (pending .snap.new files are not written when CI is set)\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(test: &str, status: Status, reason: Option<&str>) -> ResultRecord {
        serde_json::from_value(serde_json::json!({
            "test": test, "spec": "s", "case": test, "target": "t", "model": "m",
            "image": "i.png", "prompt": "p", "status": status, "reason": reason,
            "elapsed_ms": 1000.0, "queued_ms": 4020.0,
        }))
        .unwrap()
    }

    #[test]
    fn errors_are_shown_whole_once_with_the_tests_they_hit() {
        let long = "cannot connect to http://127.0.0.1:9199/v1/chat/completions: error sending \
                    request for url (http://127.0.0.1:9199/v1/chat/completions): client error \
                    (Connect): tcp connect error: Connection refused (os error 111) (is the \
                    server running?)";
        let records = [
            record("a@t", Status::Error, Some(long)),
            record("b@t", Status::Error, Some("HTTP 500 from u: boom")),
            record("c@t", Status::Error, Some(long)),
            record("d@t", Status::Passed, None),
        ];
        let line = progress_line(&records[0]);
        assert!(
            !line.contains("Connection refused"),
            "cut in the line: {line}"
        );
        let summary = error_summary(&records);
        assert_eq!(
            summary.matches("Connection refused").count(),
            1,
            "{summary}"
        );
        assert!(summary.contains(long), "{summary}");
        assert!(summary.contains("hit 2 test(s): a@t, c@t"), "{summary}");
        assert!(summary.contains("hit 1 test(s): b@t"), "{summary}");
        assert!(summary.starts_with("\n2 distinct error(s):"), "{summary}");
        assert_eq!(error_summary(&records[3..]), "");
    }

    #[test]
    fn the_time_shown_is_the_requests_own_with_the_wait_beside_it() {
        let line = progress_line(&record("a@t", Status::Error, Some("x")));
        assert!(line.contains("1.00 s (+4.02 s queued)"), "{line}");
        let mut r = record("a@t", Status::Error, Some("x"));
        r.queued_ms = 3.0;
        assert!(!progress_line(&r).contains("queued"));
    }
}
