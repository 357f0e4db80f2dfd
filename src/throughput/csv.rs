//! CSV rows in the study's format, appended across runs.
//!
//! The first five columns are exactly the study's (`num_images, model_id, batch_size,
//! total_time, throughput`) so its notebooks read eyetest's file unchanged; everything
//! else follows. Written by hand rather than with the `csv` crate: one fixed schema and
//! RFC 4180 quoting are twenty lines.

use std::fs::{self, OpenOptions};
use std::io::{self, BufRead, Write};
use std::path::Path;

use super::fingerprint::Fingerprint;
use super::level::ProfileKind;
use super::metrics::{LevelMetrics, Stats};

/// Column names, in order.
pub const HEADER: &[&str] = &[
    "num_images",
    "model_id",
    "batch_size",
    "total_time",
    "throughput",
    "target",
    "gpu",
    "gpu_count",
    "engine",
    "repeat",
    "completed",
    "failed",
    "requests_per_s",
    "output_tokens_per_s",
    "total_tokens_per_s",
    "ttft_mean_ms",
    "ttft_p50_ms",
    "ttft_p90_ms",
    "ttft_p99_ms",
    "tpot_mean_ms",
    "tpot_p50_ms",
    "tpot_p90_ms",
    "tpot_p99_ms",
    "itl_mean_ms",
    "itl_p50_ms",
    "itl_p90_ms",
    "itl_p99_ms",
    "e2e_mean_ms",
    "e2e_p50_ms",
    "e2e_p90_ms",
    "e2e_p99_ms",
    "queued_p50_ms",
    "output_len_mean",
    "usage_missing",
    "timestamp",
    "profile",
    "rate",
    "sent_per_s",
    "queued_mean_ms",
    "queued_p99_ms",
    "status",
    "goodput_fraction",
    "goodput_per_s",
];

/// Index of the `profile` column (kept before the last three, which stay `status`,
/// `goodput_fraction`, `goodput_per_s`).
const PROFILE_COL: usize = HEADER.len() - 8;

/// One level of one repeat, rendered to cells. Unmeasured values are empty cells, which
/// pandas and spreadsheets read as missing, never as 0. `status` is the level's gate
/// verdict (`ok`, `FAIL`, `ALL FAILED`), the same on every repeat's row.
#[derive(Debug, Clone, PartialEq)]
pub struct CsvRow(pub Vec<String>);

impl CsvRow {
    /// `num_images` counts every request sent (failed ones too: they were images the run
    /// had to process); `throughput` is completed images per second, as in the study.
    pub fn new(
        target: &str,
        fp: &Fingerprint,
        repeat: usize,
        m: &LevelMetrics,
        timestamp: &str,
        status: &str,
    ) -> CsvRow {
        let f = |x: f64, d: usize| format!("{x:.d$}");
        let o = |x: Option<f64>, d: usize| x.map(|x| f(x, d)).unwrap_or_default();
        let mut cells = vec![
            (m.completed + m.failed).to_string(),
            fp.model.clone(),
            m.concurrency.to_string(),
            f(m.wall_s, 3),
            f(m.images_per_s, 4),
            target.to_string(),
            fp.gpu.name.clone(),
            fp.gpu.count.to_string(),
            match (&fp.engine, &fp.engine_version) {
                (Some(e), Some(v)) => format!("{e} {v}"),
                (Some(e), None) => e.clone(),
                _ => String::new(),
            },
            repeat.to_string(),
            m.completed.to_string(),
            m.failed.to_string(),
            f(m.requests_per_s, 4),
            o(m.output_tokens_per_s, 2),
            o(m.total_tokens_per_s, 2),
        ];
        for s in [&m.ttft_ms, &m.tpot_ms, &m.itl_ms, &m.e2e_ms] {
            let get = |g: fn(&Stats) -> f64| o(s.as_ref().map(g), 3);
            cells.extend([
                get(|s| s.mean),
                get(|s| s.p50),
                get(|s| s.p90),
                get(|s| s.p99),
            ]);
        }
        cells.extend([
            o(m.queued_ms.map(|s| s.p50), 3),
            o(m.output_len.map(|s| s.mean), 1),
            m.usage_missing.to_string(),
            timestamp.to_string(),
            if m.rate.is_some() { "" } else { "concurrency" }.to_string(),
            o(m.rate, 4),
            o(m.sent_per_s, 4),
            o(m.queued_ms.map(|s| s.mean), 3),
            o(m.queued_ms.map(|s| s.p99), 3),
            status.to_string(),
            o(m.goodput.map(|g| g.fraction), 4),
            o(m.goodput.map(|g| g.per_s), 4),
        ]);
        debug_assert_eq!(cells.len(), HEADER.len());
        CsvRow(cells)
    }
}

impl CsvRow {
    /// Names the arrival profile `m` was measured with (the sweep's probes are closed
    /// loops, so they say `concurrency`).
    pub fn with_profile(mut self, profile: ProfileKind, m: &LevelMetrics) -> CsvRow {
        let name = if m.rate.is_some() {
            profile.name()
        } else {
            ProfileKind::Concurrency.name()
        };
        self.0[PROFILE_COL] = name.to_string();
        self
    }
}

/// RFC 4180: quote a field holding a comma, quote, CR or LF, doubling inner quotes.
pub fn quote(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}

fn line<S: AsRef<str>>(cells: impl IntoIterator<Item = S>) -> String {
    let mut s = cells
        .into_iter()
        .map(|c| quote(c.as_ref()))
        .collect::<Vec<_>>()
        .join(",");
    s.push('\n');
    s
}

/// Appends rows, writing the header first when the file is new or empty. Refuses to
/// append to a file whose header differs (an older eyetest's, or another tool's), since
/// misaligned columns would silently corrupt every later analysis.
pub fn append(path: &Path, rows: &[CsvRow]) -> io::Result<()> {
    let existing_header = match fs::File::open(path) {
        Ok(f) => {
            let mut first = String::new();
            io::BufReader::new(f).read_line(&mut first)?;
            Some(first)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    let header = line(HEADER.iter());
    let mut out = String::new();
    match existing_header.as_deref() {
        None | Some("") => out.push_str(&header),
        Some(h) if h.trim_end() == header.trim_end() => {}
        Some(h) => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                "{} has a different header ({}...); write to a new file or move the old one away",
                path.display(),
                h.chars().take(60).collect::<String>().trim_end()
            ),
            ))
        }
    }
    for row in rows {
        out.push_str(&line(&row.0));
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir)?;
    }
    // One write of the whole batch, so an interrupted run does not leave half a row.
    let mut f = OpenOptions::new().create(true).append(true).open(path)?;
    f.write_all(out.as_bytes())?;
    f.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::throughput::test_support::{h100, run};

    #[test]
    fn header_once_then_appended_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out/results.csv");
        let m = LevelMetrics::from_run(&run(2, 4, 2.0, 50, 11));
        let row = CsvRow::new("llama-11b", &h100(), 0, &m, "2026-11-27T10:00:00Z", "ok");
        append(&path, std::slice::from_ref(&row)).unwrap();
        append(&path, &[row.clone(), row]).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert!(lines[0]
            .starts_with("num_images,model_id,batch_size,total_time,throughput,target,gpu,"));
        assert_eq!(text.matches("num_images").count(), 1);
        assert!(
            lines[1].starts_with("4,meta-llama/Llama-3.2-11B-Vision-Instruct,2,2.000,2.0000,llama-11b,NVIDIA H100 80GB HBM3,1,vllm 0.10.2,0,4,0,"),
            "{}",
            lines[1]
        );
        // TTFT 50 ms, TPOT (150 - 50) / 10 = 10 ms.
        assert!(
            lines[1].contains(",50.000,50.000,50.000,50.000,10.000,"),
            "{}",
            lines[1]
        );
        assert_eq!(lines[1].split(',').count(), HEADER.len());
    }

    #[test]
    fn quoting_and_foreign_headers() {
        assert_eq!(quote("plain"), "plain");
        assert_eq!(quote("a,b"), "\"a,b\"");
        assert_eq!(quote("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(quote("two\nlines"), "\"two\nlines\"");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.csv");
        fs::write(&path, "").unwrap();
        append(&path, &[]).unwrap();
        assert!(fs::read_to_string(&path)
            .unwrap()
            .starts_with("num_images,"));
        fs::write(&path, "a,b,c\n1,2,3\n").unwrap();
        let err = append(&path, &[]).unwrap_err().to_string();
        assert!(
            err.contains("x.csv") && err.contains("different header"),
            "{err}"
        );
    }
}
