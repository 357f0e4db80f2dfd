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

fn rate_spec(keys: &str) -> (Vec<Arc<ThroughputSpec>>, InputErrors) {
    load_str(&format!(
        "[[throughput]]\nname = \"r\"\ntargets = [\"sim\"]\nimages = {{ random = {{ width = 64, height = 64, count = 2 }} }}\nprompt = \"p\"\nmax_tokens = 4\n{keys}\n"
    ))
}

/// `(line, message, help)` of every error, for located checks.
fn located(errors: &InputErrors) -> Vec<(usize, String, String)> {
    errors
        .errors
        .iter()
        .map(|e| {
            (
                e.line,
                e.message.clone(),
                e.help.clone().unwrap_or_default(),
            )
        })
        .collect()
}

#[test]
fn rate_profiles_parse_with_sorted_rates_and_defaults() {
    use crate::throughput::arrival::DEFAULT_MAX_CONCURRENCY;
    use crate::throughput::level::ProfileKind;
    let (specs, errors) = rate_spec(
        "profile = \"gamma\"\nrates = [4, 0.5, 2.0]\nrequests = [40, 5, 20]\nburstiness = 0.5\nmax_concurrency = 32\narrival_seed = 9",
    );
    assert!(errors.is_empty(), "{:?}", located(&errors));
    let s = &specs[0];
    assert_eq!(s.arrival.profile, ProfileKind::Gamma);
    assert_eq!(s.arrival.rates, [0.5, 2.0, 4.0]);
    assert_eq!(s.requests, [5, 20, 40]);
    assert_eq!(
        (
            s.arrival.burstiness,
            s.arrival.max_concurrency,
            s.arrival.seed
        ),
        (0.5, 32, 9)
    );
    assert_eq!(s.arrival.shape(), Some(0.5));
    assert!(s.concurrency.is_empty());
    assert_eq!(s.warmup_at_rate(4.0), 4);

    let (specs, errors) = rate_spec("profile = \"poisson\"\nrates = [1.0]\nduration_s = 2.5");
    assert!(errors.is_empty(), "{:?}", located(&errors));
    let s = &specs[0];
    assert_eq!(
        s.arrival.duration,
        Some(std::time::Duration::from_millis(2500))
    );
    assert!(s.requests.is_empty());
    assert_eq!(
        (s.arrival.shape(), s.arrival.max_concurrency),
        (Some(1.0), DEFAULT_MAX_CONCURRENCY)
    );

    let (specs, errors) =
        rate_spec("profile = \"sweep\"\nsweep_points = 4\nrequests = 30\nmax_concurrency = 16");
    assert!(errors.is_empty(), "{:?}", located(&errors));
    assert_eq!(
        (specs[0].arrival.sweep_points, &specs[0].requests[..]),
        (4, &[30][..])
    );
}

#[test]
fn bad_profile_keys_are_located_with_a_fix() {
    let cases: [(&str, usize, &str, &str); 9] = [
        (
            "profile = \"posson\"\nrates = [1.0]",
            7,
            "unknown profile `posson`",
            "did you mean `poisson`",
        ),
        (
            "profile = \"constant\"",
            7,
            "profile `constant` needs `rates`",
            "rates = [1.0, 2.0, 4.0]",
        ),
        (
            "profile = \"poisson\"\nrates = [1.0, -2]",
            8,
            "a rate must be a positive number",
            "rates = [0.5",
        ),
        (
            "profile = \"poisson\"\nrates = [1.0]\nburstiness = 0.5",
            9,
            "`burstiness` with profile `poisson`",
            "profile = \"gamma\"",
        ),
        (
            "concurrency = [1]\nmax_concurrency = 4",
            8,
            "`max_concurrency` with the concurrency profile",
            "rate profiles only",
        ),
        (
            "profile = \"poisson\"\nrates = [1.0]\nconcurrency = [1, 2]",
            9,
            "`concurrency` with profile `poisson`",
            "max_concurrency",
        ),
        (
            "profile = \"poisson\"\nrates = [1.0]\nrequests = 8\nduration_s = 3",
            10,
            "both `requests` and `duration_s`",
            "keep one",
        ),
        (
            "profile = \"sweep\"\nrates = [1.0]",
            8,
            "`rates` with profile `sweep`",
            "sweep_points",
        ),
        (
            "profile = \"constant\"\nrates = [1.0, 2.0]\nrequests = [4]",
            9,
            "requests lists 1 values but rates has 2",
            "one value per rate",
        ),
    ];
    for (keys, line, message, help) in cases {
        let (specs, errors) = rate_spec(keys);
        assert!(specs.is_empty(), "{keys}: accepted");
        let e = located(&errors);
        assert!(
            e.iter()
                .any(|(l, m, h)| *l == line && m.contains(message) && h.contains(help)),
            "{keys}: want line {line} {message:?} / {help:?}, got {e:?}"
        );
    }
    let (_, errors) = rate_spec("");
    assert!(
        located(&errors).iter().any(|(l, m, _)| *l == 2 && m.contains("no `concurrency` levels and no rate `profile`")),
        "{:?}",
        located(&errors)
    );
}

#[test]
fn telemetry_tables_parse_and_bad_values_are_located() {
    let (specs, errors) = rate_spec(
        "concurrency = [1]\ntelemetry = { metrics_url = \"auto\", nvidia_smi = true, interval_ms = 250 }",
    );
    assert!(errors.is_empty(), "{:?}", located(&errors));
    let t = specs[0].telemetry.clone().unwrap();
    assert_eq!(t.metrics_url, Some(MetricsUrl::Auto));
    assert_eq!(t.nvidia_smi.as_deref(), Some("nvidia-smi"));
    assert_eq!(t.interval, std::time::Duration::from_millis(250));
    let (specs, _) =
        rate_spec("concurrency = [1]\ntelemetry = { metrics_url = \"http://h:8000/metrics\" }");
    let t = specs[0].telemetry.clone().unwrap();
    assert_eq!(
        (t.metrics_url, t.nvidia_smi),
        (Some(MetricsUrl::Url("http://h:8000/metrics".into())), None)
    );
    let (_, errors) =
        rate_spec("concurrency = [1]\ntelemetry = { metrics_url = \"h:8000\", interval_ms = 1 }");
    let e = located(&errors);
    assert!(
        e.iter()
            .any(|(l, m, _)| *l == 8 && m.contains("is not an http(s) URL")),
        "{e:?}"
    );
    assert!(
        e.iter()
            .any(|(l, m, _)| *l == 8 && m.contains("interval_ms must be at least 10")),
        "{e:?}"
    );
}
