//! One GPU reading per `nvidia-smi` run: utilisation, memory and power of every GPU of
//! this machine. Only meaningful when eyetest runs on the GPU host; elsewhere `nvidia-smi`
//! is absent and the caller records "no GPU telemetry" once.
//!
//! The program is a parameter so that tests stand a fake script in for it (printing
//! canned lines, `[N/A]` power included) without touching the test process's `PATH`.

use std::ffi::OsStr;
use std::process::Stdio;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The query: fixed columns, no header, no units, so every line is
/// `index, name, util %, MiB used, MiB total, W`.
pub const QUERY_ARGS: [&str; 2] = [
    "--query-gpu=index,name,utilization.gpu,memory.used,memory.total,power.draw",
    "--format=csv,noheader,nounits",
];

/// One GPU at one moment. `None` where `nvidia-smi` says `[N/A]` or `[Not Supported]`
/// (power on many consumer and MIG setups).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpuReading {
    pub index: u32,
    pub name: String,
    pub util_pct: Option<f64>,
    pub mem_used_mib: Option<f64>,
    pub mem_total_mib: Option<f64>,
    pub power_w: Option<f64>,
}

/// Why a run gave no readings.
#[derive(Debug, Clone, PartialEq)]
pub enum SmiError {
    /// The program could not be started (absent, not executable): this machine has no
    /// GPU telemetry, and asking again will not change that.
    Unavailable(String),
    /// It ran and failed, timed out or printed nothing readable: a gap in the series.
    Failed(String),
}

/// Why the output of [`QUERY_ARGS`] could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("nvidia-smi printed no GPU lines")]
    NoLines,
    #[error("unexpected nvidia-smi line {line:?}: {problem}")]
    Line { line: String, problem: LineProblem },
}

/// What is wrong with one line of `nvidia-smi` output.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineProblem {
    #[error("expected 6 comma-separated fields")]
    Fields,
    #[error("the first field is not a GPU index")]
    Index,
    #[error("{field:?} is not a number")]
    NotANumber { field: String },
}

/// Runs `program` with [`QUERY_ARGS`], killed after `timeout` (a wedged driver can make
/// `nvidia-smi` hang for minutes).
pub async fn query(program: &OsStr, timeout: Duration) -> Result<Vec<GpuReading>, SmiError> {
    let shown = program.to_string_lossy();
    let child = tokio::process::Command::new(program)
        .args(QUERY_ARGS)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| SmiError::Unavailable(format!("cannot run `{shown}`: {e}")))?;
    let out = match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => return Err(SmiError::Failed(format!("`{shown}` failed: {e}"))),
        // Dropping the future drops the child, which kill_on_drop kills and tokio reaps.
        Err(_) => {
            return Err(SmiError::Failed(format!(
                "`{shown}` did not answer within {:.1} s",
                timeout.as_secs_f64()
            )))
        }
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let said = first_line(&stdout).or(first_line(&stderr)).unwrap_or("");
        // No driver or no device is the machine's state, not a passing hiccup.
        let no_gpu = said.contains("has failed") || said.starts_with("No devices");
        let msg = format!("`{shown}` exited with {}: {said}", out.status);
        return Err(if no_gpu {
            SmiError::Unavailable(msg)
        } else {
            SmiError::Failed(msg)
        });
    }
    parse(&stdout).map_err(|e| SmiError::Failed(e.to_string()))
}

fn first_line(s: &str) -> Option<&str> {
    s.lines().map(str::trim).find(|l| !l.is_empty())
}

/// Parses the output of [`QUERY_ARGS`]: one line per GPU; an error names the first line
/// that does not fit.
pub fn parse(out: &str) -> Result<Vec<GpuReading>, ParseError> {
    let mut gpus = Vec::new();
    for line in out.lines().map(str::trim).filter(|l| !l.is_empty()) {
        gpus.push(parse_line(line)?);
    }
    if gpus.is_empty() {
        return Err(ParseError::NoLines);
    }
    Ok(gpus)
}

/// `0, NVIDIA H100 80GB HBM3, 35, 1234, 81559, 123.45`. The name sits between the index
/// and the four numbers, so a name with a comma in it still parses.
pub fn parse_line(line: &str) -> Result<GpuReading, ParseError> {
    let fields: Vec<&str> = line.split(',').map(str::trim).collect();
    let bad = |problem| ParseError::Line {
        line: line.to_string(),
        problem,
    };
    if fields.len() < 6 {
        return Err(bad(LineProblem::Fields));
    }
    let n = fields.len();
    let index = fields[0]
        .parse::<u32>()
        .map_err(|_| bad(LineProblem::Index))?;
    let name = fields[1..n - 4].join(", ");
    let num = |i: usize| -> Result<Option<f64>, ParseError> {
        let f = fields[i];
        if f.starts_with('[') || f.eq_ignore_ascii_case("N/A") {
            return Ok(None);
        }
        f.parse::<f64>().map(Some).map_err(|_| {
            bad(LineProblem::NotANumber {
                field: f.to_string(),
            })
        })
    };
    Ok(GpuReading {
        index,
        name,
        util_pct: num(n - 4)?,
        mem_used_mib: num(n - 3)?,
        mem_total_mib: num(n - 2)?,
        power_w: num(n - 1)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lines_with_unknown_power_and_commas_in_names() {
        let g = parse(
            "0, NVIDIA H100 80GB HBM3, 35, 1234, 81559, 123.45\n\
             1, NVIDIA GeForce RTX 4090, 0, 5, 24564, [N/A]\n\n",
        )
        .unwrap();
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].index, 0);
        assert_eq!(g[0].name, "NVIDIA H100 80GB HBM3");
        assert_eq!(g[0].util_pct, Some(35.0));
        assert_eq!(g[0].mem_used_mib, Some(1234.0));
        assert_eq!(g[0].mem_total_mib, Some(81559.0));
        assert_eq!(g[0].power_w, Some(123.45));
        assert_eq!(g[1].power_w, None);
        let odd = parse_line("2, Odd, Inc, GPU, [Not Supported], 1, 2, 3").unwrap();
        assert_eq!(odd.name, "Odd, Inc, GPU");
        assert_eq!(odd.util_pct, None);
    }

    #[test]
    fn rejects_what_is_not_a_query_line() {
        assert_eq!(parse(""), Err(ParseError::NoLines));
        assert!(parse("").unwrap_err().to_string().contains("no GPU lines"));
        let e = parse("NVIDIA-SMI has failed because it couldn't communicate").unwrap_err();
        assert!(e.to_string().contains("expected 6"), "{e}");
        let e = parse_line("x, H100, 1, 2, 3, 4").unwrap_err();
        assert!(e.to_string().contains("GPU index"), "{e}");
        let e = parse_line("0, H100, busy, 2, 3, 4").unwrap_err();
        assert!(
            matches!(&e, ParseError::Line { problem: LineProblem::NotANumber { field }, .. } if field == "busy"),
            "{e:?}"
        );
        assert!(e.to_string().contains("\"busy\" is not a number"), "{e}");
    }

    #[tokio::test]
    async fn a_missing_program_is_unavailable() {
        let e = query(
            OsStr::new("/nonexistent/nvidia-smi"),
            Duration::from_secs(1),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(e, SmiError::Unavailable(ref m) if m.contains("cannot run")),
            "{e:?}"
        );
    }
}
