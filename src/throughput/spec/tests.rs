//! Loading valid throughput tables: defaults, per-level requests, sorting.

use super::*;
use crate::diagnostic::InputErrors;
use crate::spec::RawSpecFile;

fn load_str(text: &str) -> (Vec<Arc<ThroughputSpec>>, InputErrors) {
    let dir = tempfile::tempdir().unwrap();
    // Only declared targets exist: the sweeps below run on `sim`.
    let project = dir.path().join("eyetest.toml");
    std::fs::write(
        &project,
        "[target.sim]\nbackend = \"sim\"\nmodel = \"eyetest-sim\"\n",
    )
    .unwrap();
    let config = ProjectConfig::load(&project).unwrap();
    let source: Arc<str> = text.into();
    let raw: RawSpecFile = toml::from_str(text).unwrap();
    let mut errors = InputErrors::default();
    let specs = load(
        dir.path(),
        Path::new("specs/t.toml"),
        &source,
        "t",
        raw.throughput,
        &config,
        &mut errors,
    );
    (specs, errors)
}

#[test]
fn defaults_and_per_level_requests_follow_sorted_levels() {
    let (specs, errors) = load_str(
        r#"
[[throughput]]
name = "s"
targets = ["sim"]
images = { random = { width = 560, height = 560, count = 8, seed = 3 } }
prompt = "p"
max_tokens = 4
concurrency = [8, 1, 2]
requests = [64, 10, 20]
"#,
    );
    assert!(errors.is_empty(), "{:?}", errors.errors);
    let s = &specs[0];
    assert_eq!(s.concurrency, [1, 2, 8]);
    assert_eq!(s.requests, [10, 20, 64]);
    assert_eq!((s.requests_at(8), s.requests_at(3)), (64, 0));
    assert_eq!(
        (s.repeats, s.stream, s.test, s.ignore_eos),
        (3, true, true, false)
    );
    assert_eq!((s.warmup_at(8), s.line), (8, 2));
    assert_eq!(s.test_name("sim"), "t::s@sim");
    assert_eq!(s.gate, GateConfig::default());
    assert_eq!(
        s.images,
        ImageSource::Random {
            width: 560,
            height: 560,
            count: 8,
            seed: 3
        }
    );
}

#[test]
fn one_requests_value_for_every_level_and_a_length_mismatch() {
    let spec = |requests: &str| {
        load_str(&format!(
            "[[throughput]]\nname = \"s\"\ntargets = [\"sim\"]\nimages = {{ random = {{ width = 64, height = 64, count = 2 }} }}\nprompt = \"p\"\nmax_tokens = 4\nconcurrency = [1, 4]\nrequests = {requests}\n"
        ))
    };
    let (specs, errors) = spec("12");
    assert!(errors.is_empty());
    assert_eq!(specs[0].requests, [12, 12]);
    let (specs, errors) = spec("[4, 8, 16]");
    assert!(specs.is_empty());
    assert!(
        errors.errors[0]
            .message
            .contains("lists 3 values but concurrency has 2"),
        "{:?}",
        errors.errors
    );
    let (_, errors) = spec("\"many\"");
    assert!(errors.errors[0].message.contains("integer or a list"));
}

#[test]
fn slo_tables_parse_and_bad_values_are_located() {
    let spec = |slo: &str, extra: &str| {
        load_str(&format!(
            "[[throughput]]\nname = \"s\"\ntargets = [\"sim\"]\nimages = {{ random = {{ width = 64, height = 64, count = 2 }} }}\nprompt = \"p\"\nmax_tokens = 4\nconcurrency = [1, 4]\nrequests = 8\n{extra}slo = {slo}\n"
        ))
    };
    let (specs, errors) = spec(
        r#"{ ttft_p99_ms = 500, e2e_p99_ms = 10000, images_per_s_min = 0.5, failure_rate_max = "1%", goodput_e2e_ms = 10000, goodput_min = "95%" }"#,
        "",
    );
    assert!(errors.is_empty(), "{:?}", errors.errors);
    let s = &specs[0];
    assert_eq!(s.slo.latency.len(), 2);
    assert_eq!(s.slo.goodput.as_ref().unwrap().e2e_ms, Some(10_000.0));
    // The SLO's failure limit is the gate's.
    assert_eq!(s.gate.max_failure_rate, 0.01);

    let (specs, errors) = spec("{ ttft_p99 = 500, tpot_p50_ms = -1 }", "");
    assert!(specs.is_empty());
    let msgs: Vec<(usize, &str)> = errors
        .errors
        .iter()
        .map(|e| (e.line, e.message.as_str()))
        .collect();
    assert_eq!(msgs.len(), 2, "{msgs:?}");
    assert!(msgs.iter().all(|(line, _)| *line == 9), "{msgs:?}");
    assert!(msgs
        .iter()
        .any(|(_, m)| m.contains("unknown slo key `ttft_p99`")));
    assert!(msgs
        .iter()
        .any(|(_, m)| m.contains("tpot_p50_ms must be a positive number")));
    let help = errors
        .errors
        .iter()
        .find(|e| e.message.contains("unknown"))
        .and_then(|e| e.help.clone())
        .unwrap();
    assert!(help.contains("did you mean `ttft_p99_ms`"), "{help}");

    let (_, errors) = spec("{ ttft_p99_ms = 500 }", "stream = false\n");
    assert!(
        errors.errors[0].message.contains("needs a streamed answer"),
        "{:?}",
        errors.errors
    );
    let (_, errors) = spec("{ goodput_min = 0.9 }", "");
    assert!(errors.errors[0]
        .message
        .contains("goodput_min needs per-request limits"));
    let (_, errors) = spec(
        "{ failure_rate_max = 0.1 }",
        "gate = { max_failure_rate = 0.2 }\n",
    );
    assert!(
        errors.errors[0].message.contains("set twice"),
        "{:?}",
        errors.errors
    );
}
