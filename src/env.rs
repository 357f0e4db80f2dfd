//! Every `EYETEST_*` environment setting, read and validated in one place (as insta's
//! `env.rs` does), so that a variable means the same thing in `cargo test`, `eyetest run`
//! and `eyetest bench`, and a mistyped value is an error that names the variable instead
//! of being read as "off".
//!
//! One truthiness rule for switches: `1`, `true`, `yes` (any case) turn it on; `0`, `false`,
//! `no` and empty turn it off; anything else is an error listing the accepted values.
//!
//! Variables a project names itself (`base_url_env`, `api_key_env`) are read with [`var`].

use std::path::PathBuf;

/// Selects targets, like `INSTA_UPDATE` for insta: a comma-separated list of target names,
/// or `all`. Unset: every target whose endpoint is configured ([`crate::targets::Selection`]).
pub const TARGETS: &str = "EYETEST_TARGETS";
/// A JSON-lines file that `cargo test` trials append their results to.
pub const RESULTS: &str = "EYETEST_RESULTS";
/// Switch: store every live answer under golden/recordings (like `eyetest run --record`).
pub const RECORD: &str = "EYETEST_RECORD";
/// Switch: throughput trials write (or replace) their baselines, like `INSTA_UPDATE=always`.
pub const ACCEPT_BASELINE: &str = "EYETEST_ACCEPT_BASELINE";
/// Directory for throughput CSV, JSON and charts (default `target/eyetest/throughput`).
pub const THROUGHPUT_OUT: &str = "EYETEST_THROUGHPUT_OUT";
/// Seconds a stopped `eyetest run` lets requests in flight finish.
pub const GRACE_S: &str = "EYETEST_GRACE_S";
/// Switch: rewrite the generated fixtures instead of checking them (the fixture tests).
pub const REGENERATE_FIXTURES: &str = "EYETEST_REGENERATE_FIXTURES";

/// Every setting above, for documentation and for a check that none is forgotten.
pub const ALL: [&str; 7] = [
    TARGETS,
    RESULTS,
    RECORD,
    ACCEPT_BASELINE,
    THROUGHPUT_OUT,
    GRACE_S,
    REGENERATE_FIXTURES,
];

/// A setting whose value eyetest cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var}={value:?} is not {expected}")]
pub struct EnvError {
    pub var: &'static str,
    pub value: String,
    pub expected: &'static str,
}

/// The value of `name`, trimmed; `None` when unset, empty, or not UTF-8 (an endpoint or key
/// that is not text is as good as none).
pub fn var(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// A switch, by the one truthiness rule.
pub fn flag(name: &'static str) -> Result<bool, EnvError> {
    match var(name) {
        None => Ok(false),
        Some(v) => parse_flag(&v).ok_or(EnvError {
            var: name,
            value: v,
            expected: "a switch: use 1, true or yes to turn it on; 0, false or no to turn it off",
        }),
    }
}

fn parse_flag(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" => Some(true),
        "0" | "false" | "no" | "" => Some(false),
        _ => None,
    }
}

/// `EYETEST_TARGETS`, if set to something.
pub fn targets() -> Option<String> {
    var(TARGETS)
}

/// `EYETEST_RESULTS`, if set.
pub fn results_file() -> Option<PathBuf> {
    var(RESULTS).map(PathBuf::from)
}

/// `EYETEST_RECORD`.
pub fn record() -> Result<bool, EnvError> {
    flag(RECORD)
}

/// `EYETEST_ACCEPT_BASELINE`.
pub fn accept_baseline() -> Result<bool, EnvError> {
    flag(ACCEPT_BASELINE)
}

/// `EYETEST_THROUGHPUT_OUT`, if set.
pub fn throughput_out() -> Option<PathBuf> {
    var(THROUGHPUT_OUT).map(PathBuf::from)
}

/// `EYETEST_GRACE_S`: a non-negative number of seconds, if set.
pub fn grace_s() -> Result<Option<f64>, EnvError> {
    match var(GRACE_S) {
        None => Ok(None),
        Some(v) => match v.parse::<f64>() {
            Ok(s) if s.is_finite() && s >= 0.0 => Ok(Some(s)),
            _ => Err(EnvError {
                var: GRACE_S,
                value: v,
                expected: "a non-negative number of seconds, e.g. 10",
            }),
        },
    }
}

/// `EYETEST_REGENERATE_FIXTURES`.
pub fn regenerate_fixtures() -> Result<bool, EnvError> {
    flag(REGENERATE_FIXTURES)
}

/// Every setting that is set to a value eyetest cannot use, so that a harness can refuse to
/// start rather than quietly treat a typo as "off".
pub fn check() -> Vec<EnvError> {
    [record(), accept_baseline(), regenerate_fixtures()]
        .into_iter()
        .filter_map(Result::err)
        .chain(grace_s().err())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_truthiness_rule() {
        for on in ["1", "true", "TRUE", "yes", "Yes"] {
            assert_eq!(parse_flag(on), Some(true), "{on}");
        }
        for off in ["0", "false", "no", "NO", ""] {
            assert_eq!(parse_flag(off), Some(false), "{off}");
        }
        for bad in ["2", "on", "y", "enable"] {
            assert_eq!(parse_flag(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_bad_switch_names_the_variable_and_the_accepted_values() {
        let e = EnvError {
            var: RECORD,
            value: "on".into(),
            expected: "a switch: use 1, true or yes to turn it on; 0, false or no to turn it off",
        };
        assert_eq!(
            e.to_string(),
            "EYETEST_RECORD=\"on\" is not a switch: use 1, true or yes to turn it on; 0, false or no to turn it off"
        );
    }
}
