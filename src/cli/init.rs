//! `eyetest init`: scaffolds a spec project that passes `cargo test` on its first run.
//!
//! A first run that fails teaches the wrong lesson, and the natural first run fails: insta
//! treats a missing snapshot as a failure. So init ships the snapshots too. They are recorded
//! by the very code the harness checks with ([`crate::snapshot::check`], insta in
//! `INSTA_UPDATE=always` mode), fed the answer the simulated engine gives with
//! `behaviour = "terse"`: the terse answer embedded in the generated fixture. No engine has to
//! run for that, and the files are byte for byte what `cargo insta accept` would write.
//!
//! Nothing written depends on the machine: the eyetest dependency is a version requirement
//! unless `--path` or `--git` names a checkout explicitly (it used to be the folder the
//! binary was compiled in), and snapshot headers name the spec, not eyetest's source.
//!
//! The templates live in `src/init/` as plain files, so they read (and diff) as what they are.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

use crate::backend::{Answer, ImageData, ImageError, Timing};
use crate::diagnostic::InputErrors;
use crate::fixture::{read_truth, Catalogue, FixtureError, CATALOGUE_FILE};
use crate::report::runs::absolute;
use crate::sim::Behaviour;
use crate::spec::Suite;
use crate::targets::Kind;

const CARGO_TOML: &str = include_str!("../init/Cargo.toml.tmpl");
const EYETEST_TOML: &str = include_str!("../init/eyetest.toml");
const EXAMPLE_SPEC: &str = include_str!("../init/example.toml");
const CATALOGUE: &str = include_str!("../init/catalogue.toml");

const HARNESS: &str = "\
//! Runs every case of specs/ against the targets of eyetest.toml: `cargo test`.

fn main() -> std::process::ExitCode {
    eyetest::harness::main(env!(\"CARGO_MANIFEST_DIR\"))
}
";

const LIB_RS: &str = "\
//! Empty on purpose: the project's tests are its specs (see tests/eyetest.rs and specs/).
";

const GITIGNORE: &str = "/target\n*.snap.new\n*.pending-snap\n";

/// The spec id of the example, which names its tests and its snapshot directory.
const EXAMPLE_ID: &str = "example";

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Directory to create the project in (created if missing; relative to --root).
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// Depend on the eyetest checkout at PATH instead of the published crate.
    #[arg(long, value_name = "PATH", conflicts_with = "git")]
    path: Option<PathBuf>,
    /// Depend on eyetest from this git repository instead of the published crate.
    #[arg(long, value_name = "URL")]
    git: Option<String>,
}

/// Where the new project gets eyetest from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `version = "0.1"`: this eyetest's major.minor, from the registry.
    Registry,
    Path(PathBuf),
    Git(String),
}

impl Source {
    /// The dependency's value in Cargo.toml.
    fn requirement(&self) -> String {
        let quote = |s: &str| toml::Value::String(s.to_string()).to_string();
        let from = match self {
            Source::Registry => {
                let v = env!("CARGO_PKG_VERSION");
                let major_minor: Vec<&str> = v.split('.').take(2).collect();
                format!("version = {}", quote(&major_minor.join(".")))
            }
            Source::Path(p) => format!("path = {}", quote(&p.to_string_lossy())),
            Source::Git(url) => format!("git = {}", quote(url)),
        };
        // The harness needs the simulated engine but not the command line: without its
        // default features a project's first `cargo test` compiles much less.
        format!("{{ {from}, default-features = false, features = [\"sim\"] }}")
    }
}

pub fn run(root: &Path, args: InitArgs) -> ExitCode {
    let dir = absolute(&if args.dir.is_relative() {
        root.join(&args.dir)
    } else {
        args.dir.clone()
    });
    let source = match (args.path, args.git) {
        (Some(p), _) => Source::Path(absolute(&p)),
        (None, Some(url)) => Source::Git(url),
        (None, None) => Source::Registry,
    };
    let registry = source == Source::Registry;
    match init(&dir, &source) {
        Ok(created) => {
            println!("created an eyetest project in {}:", dir.display());
            for p in &created {
                println!("  {}", p.display());
            }
            println!(
                "\nnext:\n  cd {}\n  cargo test                  \
                 # the example cases, against the SIMULATED engine (a test double, not a model)\n  \
                 EYETEST_RESULTS=target/eyetest/results.jsonl cargo test && \
                 eyetest report target/eyetest/results.jsonl --out report.md\n\n\
                 To ask a real model, uncomment the `openai` target in eyetest.toml, run\n  \
                 EYETEST_TARGETS=<target> cargo test\nand accept its first answers with `cargo insta review`.",
                dir.display()
            );
            if registry {
                println!(
                    "\nCargo.toml asks for eyetest {} from crates.io; to use a checkout instead, \
                     edit its [dev-dependencies] or re-create the project with \
                     `eyetest init --path <checkout>` (or --git <url>).",
                    Source::Registry.requirement()
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Why `eyetest init` did not create the project.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// A bug in eyetest, not in the user's project.
    #[error("bad built-in fixture catalogue: {0}")]
    Catalogue(#[source] FixtureError),
    /// A bug in eyetest, not in the user's project.
    #[error("bad built-in example spec: {0}")]
    ExampleSpec(#[source] toml::de::Error),
    #[error(
        "refusing to overwrite what is already in {}:\n{}\nchoose an empty directory, or move these away",
        dir.display(),
        existing.iter().map(|p| format!("  {}", p.display())).collect::<Vec<_>>().join("\n")
    )]
    Exists {
        dir: PathBuf,
        existing: Vec<PathBuf>,
    },
    #[error("cannot create {}: {source}", path.display())]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Fixtures(#[from] FixtureError),
    #[error("the new project does not load:\n{}", .0.render(false))]
    DoesNotLoad(InputErrors),
    #[error("cannot read {}: {source}", path.display())]
    ReadImage {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} carries no ground truth", image.display())]
    NoTruth { image: PathBuf },
    #[error(transparent)]
    Image(#[from] ImageError),
    /// The snapshot check's own message.
    #[error("{0}")]
    Snapshot(String),
    #[error(
        "the snapshot {} was not recorded; the first `cargo test` will fail until it is \
         accepted with `cargo insta review`",
        path.display()
    )]
    NotRecorded { path: PathBuf },
}

/// Creates the project in `dir`; returns the files created, relative to `dir`.
pub fn init(dir: &Path, source: &Source) -> Result<Vec<PathBuf>, InitError> {
    let texts = text_files(dir, source);
    let catalogue = Catalogue::parse(
        CATALOGUE,
        Path::new("fixtures").join(CATALOGUE_FILE).as_path(),
    )
    .map_err(InitError::Catalogue)?;
    let pngs: Vec<PathBuf> = catalogue
        .fixtures
        .iter()
        .map(|f| Path::new("fixtures").join(&f.path))
        .collect();
    let snapshots = snapshot_files()?;

    let mut planned: Vec<PathBuf> = texts.iter().map(|(p, _)| p.clone()).collect();
    planned.extend(pngs.iter().cloned());
    planned.extend(snapshots.iter().cloned());
    let existing: Vec<PathBuf> = planned
        .iter()
        .filter(|p| dir.join(p).symlink_metadata().is_ok())
        .cloned()
        .collect();
    if !existing.is_empty() {
        return Err(InitError::Exists {
            dir: dir.to_path_buf(),
            existing,
        });
    }

    for (rel, text) in &texts {
        create(&dir.join(rel), text.as_bytes())?;
    }
    crate::fixture::generate_all(&dir.join("fixtures"))?;
    record_snapshots(dir)?;
    for s in &snapshots {
        if !dir.join(s).is_file() {
            return Err(InitError::NotRecorded { path: s.clone() });
        }
    }
    Ok(planned)
}

fn text_files(dir: &Path, source: &Source) -> Vec<(PathBuf, String)> {
    let cargo_toml = CARGO_TOML
        .replace("{{name}}", &package_name(dir))
        .replace("{{eyetest}}", &source.requirement());
    [
        ("Cargo.toml", cargo_toml),
        ("tests/eyetest.rs", HARNESS.to_string()),
        ("src/lib.rs", LIB_RS.to_string()),
        ("eyetest.toml", EYETEST_TOML.to_string()),
        ("specs/example.toml", EXAMPLE_SPEC.to_string()),
        ("fixtures/catalogue.toml", CATALOGUE.to_string()),
        ("golden/.gitkeep", String::new()),
        (".gitignore", GITIGNORE.to_string()),
    ]
    .into_iter()
    .map(|(p, t)| (PathBuf::from(p), t))
    .collect()
}

/// `golden/snapshots/example/<case>@sim.snap` for each case of the example spec.
fn snapshot_files() -> Result<Vec<PathBuf>, InitError> {
    #[derive(serde::Deserialize)]
    struct Spec {
        case: Vec<Case>,
    }
    #[derive(serde::Deserialize)]
    struct Case {
        name: String,
    }
    let spec: Spec = toml::from_str(EXAMPLE_SPEC).map_err(InitError::ExampleSpec)?;
    Ok(spec
        .case
        .iter()
        .map(|c| {
            Path::new("golden/snapshots")
                .join(EXAMPLE_ID)
                .join(format!("{}@sim.snap", c.name))
        })
        .collect())
}

/// Creates a new file (and its directory); never replaces one, even if it appeared since the
/// check above.
fn create(path: &Path, bytes: &[u8]) -> Result<(), InitError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|source| InitError::Create {
            path: parent.to_path_buf(),
            source,
        })?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|source| InitError::Create {
            path: path.to_path_buf(),
            source,
        })?;
    f.write_all(bytes).map_err(|source| InitError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Records the example's snapshot for every simulated target, from the fixtures' ground truth.
fn record_snapshots(dir: &Path) -> Result<(), InitError> {
    // insta reads its mode from the environment. This runs in the `eyetest` process before
    // any other thread exists, and only insta reads these variables afterwards.
    std::env::set_var("INSTA_UPDATE", "always");
    std::env::set_var("INSTA_OUTPUT", "none");
    std::env::set_var("INSTA_WORKSPACE_ROOT", dir);
    let suite = Suite::load(dir).map_err(InitError::DoesNotLoad)?;
    for case in suite.cases.iter().filter(|c| c.spec.id == EXAMPLE_ID) {
        let bytes = std::fs::read(&case.image_path).map_err(|source| InitError::ReadImage {
            path: case.image_path.clone(),
            source,
        })?;
        let truth = read_truth(&bytes).ok_or_else(|| InitError::NoTruth {
            image: case.image.clone(),
        })?;
        let image = ImageData::from_bytes(bytes)?;
        for tname in &case.targets {
            let Some(target) = suite.target(tname) else {
                continue;
            };
            let behaviour = match &target.kind {
                Kind::Sim(sim) => sim.behaviour,
                _ => continue,
            };
            let text = match behaviour {
                Behaviour::Verbose => truth.verbose.clone(),
                Behaviour::Wrong => truth.wrong.clone(),
                _ => truth.terse.clone(),
            };
            let answer = Answer {
                text,
                model: String::new(),
                finish_reason: Some("stop".into()),
                usage: None,
                timing: Timing::default(),
            };
            let check = crate::snapshot::check(
                &suite.root,
                &suite.config.settings.golden,
                case,
                target,
                &answer,
                &image.sha256,
            );
            if let Some(problem) = check.problem() {
                return Err(InitError::Snapshot(problem));
            }
        }
    }
    Ok(())
}

/// A valid cargo package name from the directory's name.
fn package_name(dir: &Path) -> String {
    let raw = dir
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let mut name: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    name = name
        .trim_start_matches(|c: char| !c.is_ascii_alphabetic())
        .trim_end_matches('-')
        .to_string();
    // A package named `eyetest` cannot depend on eyetest; the others cargo refuses outright.
    const TAKEN: &[&str] = &[
        "eyetest",
        "test",
        "std",
        "core",
        "alloc",
        "proc_macro",
        "proc-macro",
        "self",
        "super",
        "crate",
        "build",
        "deps",
        "examples",
        "incremental",
    ];
    if name.is_empty() {
        "eyetest-specs".into()
    } else if TAKEN.contains(&name.as_str()) {
        format!("{name}-specs")
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_names_are_valid() {
        let n = |s: &str| package_name(Path::new(s));
        assert_eq!(n("/x/My Vision Specs"), "my-vision-specs");
        assert_eq!(n("/tmp/.tmpAb12"), "tmpab12");
        assert_eq!(n("/x/eyetest"), "eyetest-specs");
        assert_eq!(n("/x/123"), "eyetest-specs");
        assert_eq!(n("/"), "eyetest-specs");
    }

    #[test]
    fn templates_parse() {
        assert_eq!(snapshot_files().unwrap().len(), 2);
        for (source, want) in [
            (Source::Registry, "version = \"0.1\""),
            (Source::Path("/e".into()), "path = \"/e\""),
            (Source::Git("https://x/e".into()), "git = \"https://x/e\""),
        ] {
            let text = CARGO_TOML
                .replace("{{name}}", "x")
                .replace("{{eyetest}}", &source.requirement());
            let lean = ", default-features = false, features = [\"sim\"] }";
            assert!(
                text.contains(&format!("\neyetest = {{ {want}{lean}\n")),
                "{text}"
            );
            let cargo: toml::Table = toml::from_str(&text).unwrap();
            assert_eq!(cargo["test"][0]["harness"].as_bool(), Some(false));
        }
    }
}
