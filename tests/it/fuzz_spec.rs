//! Property-based fuzzing of the spec loader (proptest stands in for cargo-fuzz, which needs
//! a nightly toolchain): whatever a spec file or eyetest.toml holds, `Suite::load` returns,
//! never panics, and every error points at a line of the file (or is about the whole file),
//! and renders.
//!
//! Inputs come three ways: raw bytes; TOML-ish text from a grammar of the real keys, tables
//! and awkward values; and byte-level mutations of a valid spec. `cargo test --test
//! fuzz_spec` runs a few hundred cases; `PROPTEST_CASES=N` runs more (docs/design.md: "Fuzzing").

use std::cell::RefCell;
use std::path::Path;

use eyetest::fixture::encode_png;
use eyetest::spec::Suite;
use proptest::prelude::*;
use proptest::sample::Index;

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    ProptestConfig {
        cases,
        max_shrink_iters: 10_000,
        ..ProptestConfig::default()
    }
}

const PROJECT: &str = "[target.sim]\nbackend = \"sim\"\nmodel = \"eyetest-sim\"\n\n\
[target.live]\nbackend = \"openai\"\nmodel = \"m\"\nbase_url = \"http://127.0.0.1:9/v1\"\n\n\
[target.rec]\nbackend = \"replay\"\nreplay_of = \"live\"\n";

const VALID_SPEC: &str = r#"[defaults]
targets = ["sim", "rec"]
max_tokens = 64
repeats = 3
pass_rate = 0.6

[[case]]
name = "people"
image = "fixtures/ok.png"
prompt = "How many people?"
label = "Two"
rubric = { number = 2, none = ["three"], regex = '\d' }

[[case]]
name = "colour"
category = "colour"
image = "fixtures/ok.png"
prompt = "What colour?"
temperature = 0.5
seed = 7
rubric = { any = ["red", "crimson"], max_words = 5 }
"#;

thread_local! {
    /// One project per test thread; each case overwrites its one spec file.
    static PROJECT_DIR: RefCell<Option<tempfile::TempDir>> = const { RefCell::new(None) };
}

fn with_project<T>(f: impl FnOnce(&Path) -> T) -> T {
    PROJECT_DIR.with(|cell| {
        let mut cell = cell.borrow_mut();
        let dir = cell.get_or_insert_with(|| {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path();
            std::fs::create_dir_all(root.join("specs")).unwrap();
            std::fs::create_dir_all(root.join("fixtures")).unwrap();
            let png = encode_png(2, 2, &[0; 12], None).unwrap();
            std::fs::write(root.join("fixtures/ok.png"), png).unwrap();
            std::fs::write(root.join("fixtures/not-image.png"), "GIF89a").unwrap();
            dir
        });
        f(dir.path())
    })
}

/// Loads a project whose spec file (and optionally eyetest.toml) holds `spec` and checks
/// that every error is placed in the file it is about.
fn check(spec: &[u8], project: Option<&[u8]>) -> Result<(), TestCaseError> {
    with_project(|root| {
        std::fs::write(root.join("specs/fuzz.toml"), spec).unwrap();
        std::fs::write(
            root.join("eyetest.toml"),
            project.unwrap_or(PROJECT.as_bytes()),
        )
        .unwrap();
        let Err(errors) = Suite::load(root) else {
            return Ok(());
        };
        prop_assert!(!errors.errors.is_empty());
        for e in &errors.errors {
            let text = if e.path.ends_with("eyetest.toml") {
                project.unwrap_or(PROJECT.as_bytes())
            } else {
                prop_assert_eq!(&e.path, Path::new("specs/fuzz.toml"));
                spec
            };
            let lines = text.split(|&b| b == b'\n').count();
            if e.line == 0 {
                let whole_file = ["spec file declares no", "not valid UTF-8"]
                    .iter()
                    .any(|m| e.message.starts_with(m));
                prop_assert!(whole_file, "a placed error has no line: {}", e.one_line());
            } else {
                prop_assert!(e.line <= lines, "line {} of {lines}: {}", e.line, e.message);
                prop_assert!(e.column >= 1, "column 0: {}", e.one_line());
            }
            prop_assert!(!e.message.trim().is_empty());
            let _ = e.one_line();
        }
        let _ = errors.render(false);
        Ok(())
    })
}

fn key() -> impl Strategy<Value = String> {
    const KEYS: &[&str] = &[
        "name",
        "image",
        "prompt",
        "rubric",
        "targets",
        "max_tokens",
        "temperature",
        "seed",
        "repeats",
        "pass_rate",
        "category",
        "subcategory",
        "label",
        "user_image",
        "all",
        "any",
        "none",
        "regex",
        "number",
        "tolerance",
        "max_words",
        "digits_in_order",
        "case_sensitive",
        "fold_punctuation",
        "defaults",
        "case",
        "throughput",
        "backend",
        "model",
        "base_url",
        "replay_of",
        "ca_file",
        "latency",
        "ttft_ms",
        "concurrency",
        "rubric.any",
        "\"prompt\"",
        "'name'",
        "promt",
        "",
    ];
    prop_oneof![
        8 => prop::sample::select(KEYS).prop_map(str::to_string),
        1 => "[a-z_.\"]{0,8}",
    ]
}

fn scalar() -> impl Strategy<Value = String> {
    const FIXED: &[&str] = &[
        "\"fixtures/ok.png\"",
        "\"fixtures/not-image.png\"",
        "\"fixtures\"",
        "\"nope.png\"",
        "\"\"",
        "\"   \"",
        "\"sim\"",
        "\"rec\"",
        "\"live\"",
        "\"x\"",
        "\"How many?\"",
        "'(two'",
        "'\\d+'",
        "\"[\"",
        "\"\\u00e9\"",
        "\"\\uD800\"",
        "\"\"\"multi\nline\"\"\"",
        "'''lit'''",
        "-1",
        "0",
        "1",
        "5",
        "100",
        "101",
        "9223372036854775807",
        "-9223372036854775808",
        "99999999999999999999",
        "0x10",
        "1_000",
        "0.5",
        "1.5",
        "-0.0",
        "nan",
        "inf",
        "-inf",
        "1e308",
        "2.0",
        "true",
        "false",
        "1979-05-27",
        "07:32:00",
        "1979-05-27T07:32:00Z",
    ];
    prop_oneof![
        8 => prop::sample::select(FIXED).prop_map(str::to_string),
        1 => "\"[^\"\\\\]{0,12}\"",
        1 => any::<i64>().prop_map(|i| i.to_string()),
        1 => any::<f64>().prop_map(|f| format!("{f:?}")),
    ]
}

fn value() -> impl Strategy<Value = String> {
    scalar().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(", "))),
            prop::collection::vec((key(), inner), 0..4).prop_map(|kv| {
                let pairs: Vec<String> = kv.iter().map(|(k, v)| format!("{k} = {v}")).collect();
                format!("{{ {} }}", pairs.join(", "))
            }),
        ]
    })
}

fn line() -> impl Strategy<Value = String> {
    const HEADERS: &[&str] = &[
        "[defaults]",
        "[[case]]",
        "[[throughput]]",
        "[case.rubric]",
        "[[case.rubric]]",
        "[defaults.rubric]",
        "[rubric]",
        "[target.sim]",
        "[target.x]",
        "[settings]",
        "[[case",
        "[]",
        "# comment",
    ];
    prop_oneof![
        2 => prop::sample::select(HEADERS).prop_map(str::to_string),
        6 => (key(), value()).prop_map(|(k, v)| format!("{k} = {v}")),
        1 => "[ -~]{0,20}",
    ]
}

/// TOML-ish text; sometimes cut short or with CRLF line endings.
fn document() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::collection::vec(line(), 0..24),
        any::<bool>(),
        prop::option::of(any::<Index>()),
    )
        .prop_map(|(lines, crlf, cut)| {
            let mut text = lines.join(if crlf { "\r\n" } else { "\n" }).into_bytes();
            if let Some(cut) = cut {
                text.truncate(cut.index(text.len() + 1));
            }
            text
        })
}

#[derive(Debug, Clone)]
enum Edit {
    Insert(Index, u8),
    Delete(Index),
    Replace(Index, u8),
}

/// A valid spec with a few bytes inserted, deleted or replaced.
fn mutated_spec() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        Just(b'"'),
        Just(b'\''),
        Just(b'['),
        Just(b']'),
        Just(b'{'),
        Just(b'}'),
        Just(b'='),
        Just(b'\n'),
        Just(b','),
        Just(b'\\'),
        Just(b'#'),
        Just(b'.'),
        any::<u8>(),
    ];
    let edit = prop_oneof![
        (any::<Index>(), byte.clone()).prop_map(|(i, b)| Edit::Insert(i, b)),
        any::<Index>().prop_map(Edit::Delete),
        (any::<Index>(), byte).prop_map(|(i, b)| Edit::Replace(i, b)),
    ];
    prop::collection::vec(edit, 1..6).prop_map(|edits| {
        let mut text = VALID_SPEC.as_bytes().to_vec();
        for edit in edits {
            match edit {
                Edit::Insert(i, b) => text.insert(i.index(text.len() + 1), b),
                Edit::Delete(i) if !text.is_empty() => {
                    text.remove(i.index(text.len()));
                }
                Edit::Replace(i, b) if !text.is_empty() => {
                    let at = i.index(text.len());
                    text[at] = b;
                }
                _ => {}
            }
        }
        text
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_bytes_as_a_spec(spec in prop::collection::vec(any::<u8>(), 0..1024)) {
        check(&spec, None)?;
    }

    #[test]
    fn toml_ish_specs(spec in document()) {
        check(&spec, None)?;
    }

    #[test]
    fn mutated_valid_specs(spec in mutated_spec()) {
        check(&spec, None)?;
    }

    /// eyetest.toml goes through the same error machinery: targets, settings, replay links.
    #[test]
    fn toml_ish_project_files(project in document()) {
        // `[settings] specs = "/"` would have the loader walk the whole disk: legal, slow.
        let project = String::from_utf8_lossy(&project).replace("specs", "spex");
        check(VALID_SPEC.as_bytes(), Some(project.as_bytes()))?;
    }
}

#[test]
fn the_valid_spec_loads() {
    with_project(|root| {
        std::fs::write(root.join("specs/fuzz.toml"), VALID_SPEC).unwrap();
        std::fs::write(root.join("eyetest.toml"), PROJECT).unwrap();
        let suite = Suite::load(root).unwrap_or_else(|e| panic!("{}", e.render(false)));
        assert_eq!(suite.cases.len(), 2);
    });
}
