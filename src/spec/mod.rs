//! Spec files: TOML that declares cases (image + prompt + rubric + targets).
//!
//! Loading is all-or-nothing: every file is parsed and every case validated (image exists
//! and is an image, rubric is usable, targets exist, names unique) before any request is
//! sent, and *all* problems are reported at once with file, line and column.

mod raw;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::diagnostic::{closest, InputError, InputErrors};
use crate::files::{check_image, dangling_link, read_text, ImageProblem};
use crate::rubric::Rubric;
use crate::targets::{ProjectConfig, Target};
use crate::throughput::spec::ThroughputSpec;

pub use raw::{RawCase, RawDefaults, RawSpecFile};

/// Name of the project file that holds targets and settings.
pub const PROJECT_FILE: &str = "eyetest.toml";

/// One spec file, kept with its text so errors found later can still point into it.
#[derive(Debug)]
pub struct SpecFile {
    /// Path relative to the project root, e.g. `specs/study/count.toml`.
    pub path: PathBuf,
    /// Path under the specs dir without `.toml`, `/`-separated: `study/count`. Test names start with it.
    pub id: String,
    pub source: Arc<str>,
}

/// One question about one image, with everything needed to ask it and judge the answer.
#[derive(Debug, Clone)]
pub struct Case {
    pub spec: Arc<SpecFile>,
    pub name: String,
    pub category: Option<String>,
    pub subcategory: Option<String>,
    /// As written in the spec (relative to the project root).
    pub image: PathBuf,
    /// Resolved against the project root.
    pub image_path: PathBuf,
    /// A user-supplied photo that may be absent: the case is ignored (with the reason) when it is.
    pub user_image: bool,
    /// The manifest entry the image comes from (`photo = "study/elephant.png"`); `image` is
    /// then its place in the photo cache, and the case is ignored until it is fetched.
    pub photo: Option<Arc<crate::fetch::Photo>>,
    pub prompt: String,
    /// The reference answer, for humans and reports; the rubric decides.
    pub label: Option<String>,
    pub rubric: Rubric,
    pub targets: Vec<String>,
    pub max_tokens: u32,
    pub temperature: f64,
    pub seed: Option<u64>,
    /// How many times to ask (1 = once).
    pub repeats: u32,
    /// Fraction of repeats whose answer must pass the rubric (1.0 = all).
    pub pass_rate: f64,
    /// 1-based line of the `[[case]]` header, for messages.
    pub line: usize,
}

impl Case {
    /// `study/count::people`: the test name without the target.
    pub fn id(&self) -> String {
        format!("{}::{}", self.spec.id, self.name)
    }

    /// `study/count::people@sim`: the trial's name in `cargo test` and in results.
    pub fn test_name(&self, target: &str) -> String {
        format!("{}@{}", self.id(), target)
    }
}

/// A project: its config (targets) and every case of every spec file.
#[derive(Debug, Clone)]
pub struct Suite {
    pub root: PathBuf,
    pub config: ProjectConfig,
    pub cases: Vec<Arc<Case>>,
    /// Throughput sweeps declared with `[[throughput]]`.
    pub throughputs: Vec<Arc<ThroughputSpec>>,
}

impl Suite {
    /// Loads `eyetest.toml` and every `*.toml` under the specs dir, validating everything.
    pub fn load(root: &Path) -> Result<Suite, InputErrors> {
        if !root.is_dir() {
            let mut errors = InputErrors::default();
            let what = if root.exists() {
                "is not a folder"
            } else {
                "does not exist"
            };
            errors.push(
                InputError::file(root, format!("project root {what}"))
                    .with_help("pass the folder that holds eyetest.toml with --root, or run `eyetest init` to create a project"),
            );
            return Err(errors);
        }
        // Messages name eyetest.toml as they name spec files: relative to the project root.
        let project_file = root.join(PROJECT_FILE);
        let (config, mut errors) = ProjectConfig::load_all(&project_file);
        for e in &mut errors.errors {
            e.path = PathBuf::from(PROJECT_FILE);
        }
        // Without a project file there are no specs to speak of; with a broken one, the
        // specs are still checked, so that every problem is reported in one round.
        if !project_file.exists() {
            return Err(errors);
        }
        let config = config.unwrap_or_else(|| ProjectConfig::unreadable(&project_file));
        let specs_dir = root.join(&config.settings.specs);
        let manifests = crate::fetch::Manifests::load(root).unwrap_or_else(|e| {
            errors.errors.extend(e.errors);
            Default::default()
        });
        let mut files = Vec::new();
        collect_toml_files(&specs_dir, &mut files, &mut HashSet::new(), &mut errors);
        files.sort();
        let mut cases = Vec::new();
        let mut throughputs = Vec::new();
        let mut folded_ids: std::collections::HashMap<String, String> = Default::default();
        for abs in files {
            let rel = abs.strip_prefix(root).unwrap_or(&abs).to_path_buf();
            let id = abs
                .strip_prefix(&specs_dir)
                .unwrap_or(&abs)
                .with_extension("")
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            if let Some(other) = folded_ids.insert(id.to_lowercase(), id.clone()) {
                errors.push(
                    InputError::file(
                        &rel,
                        format!("spec id `{id}` differs from `{other}` only in letter case"),
                    )
                    .with_help("their snapshot directories would be one on macOS and Windows: rename one of the files"),
                );
                continue;
            }
            if let Some((file_cases, file_throughputs)) =
                load_file(root, &abs, rel, id, &config, &manifests, &mut errors)
            {
                cases.extend(file_cases);
                throughputs.extend(file_throughputs);
            }
        }
        errors.into_result()?;
        Ok(Suite {
            root: root.to_path_buf(),
            config,
            cases,
            throughputs,
        })
    }

    pub fn target(&self, name: &str) -> Option<&Arc<Target>> {
        self.config.targets.get(name)
    }

    /// The distinct manifest photos the cases use, in case order: what `eyetest fetch` gets.
    pub fn photos(&self) -> Vec<Arc<crate::fetch::Photo>> {
        crate::fetch::photos_needed(self.cases.iter().filter_map(|c| c.photo.as_ref()))
    }

    /// Why `case` cannot run yet because of its photo, with the command that fixes it; `None`
    /// when the case has no manifest photo or its photo is verified in the cache.
    pub fn not_fetched_reason(&self, case: &Case) -> Option<String> {
        let photo = case.photo.as_ref()?;
        let all = self.cases.iter().filter_map(|c| c.photo.as_ref());
        crate::fetch::not_fetched_reason(&self.root, photo, &case.image, all)
    }
}

/// Symlinked directories are followed (a spec set may be linked in), each real directory
/// once, so a link back up the tree cannot make the walk endless.
fn collect_toml_files(
    dir: &Path,
    out: &mut Vec<PathBuf>,
    seen: &mut HashSet<PathBuf>,
    errors: &mut InputErrors,
) {
    if let Ok(real) = std::fs::canonicalize(dir) {
        if !seen.insert(real) {
            return;
        }
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
        Err(e) => {
            errors.push(InputError::file(
                dir,
                format!("cannot list spec directory: {e}"),
            ));
            return;
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_toml_files(&path, out, seen, errors);
        } else if path.extension().is_some_and(|e| e == "toml") {
            out.push(path);
        }
    }
}

/// Spec files larger than this are rejected before parsing: no spec needs it, and a huge
/// generated file is far more likely a mistake than a suite.
pub const MAX_SPEC_BYTES: u64 = 4 * 1024 * 1024;

/// What one spec file declares: its cases and its throughput sweeps.
type FileContents = (Vec<Arc<Case>>, Vec<Arc<ThroughputSpec>>);

fn load_file(
    root: &Path,
    abs: &Path,
    rel: PathBuf,
    id: String,
    config: &ProjectConfig,
    manifests: &crate::fetch::Manifests,
    errors: &mut InputErrors,
) -> Option<FileContents> {
    if let Ok(meta) = std::fs::metadata(abs) {
        if meta.len() > MAX_SPEC_BYTES {
            errors.push(
                InputError::file(
                    &rel,
                    format!(
                        "spec file is {} bytes, over the {} byte limit",
                        meta.len(),
                        MAX_SPEC_BYTES
                    ),
                )
                .with_help("split it into several files"),
            );
            return None;
        }
    }
    let source = match read_text(abs, "spec file") {
        Ok(s) => s,
        Err(mut e) => {
            e.help =
                Some("check the file's permissions, and where it links to if it is a link".into());
            if let Some(target) = dangling_link(abs) {
                e.message = format!(
                    "spec file is a symbolic link to `{}`, which does not exist",
                    target.display()
                );
                e.help = Some("point the link at a spec file, or remove it".into());
            }
            e.path = rel;
            errors.push(*e);
            return None;
        }
    };
    // Every schema problem of the file, not only the first; what is left is still checked.
    let (raw, problems) = crate::diagnostic::parse_all::<RawSpecFile>(&rel, &source);
    let had_problems = !problems.is_empty();
    for p in problems {
        errors.push(p);
    }
    let raw = raw?;
    let spec = Arc::new(SpecFile {
        path: rel.clone(),
        id,
        source: source.clone(),
    });
    let err_at =
        |span: std::ops::Range<usize>, msg: String| InputError::at(&rel, &source, span, msg);
    let defaults = raw.defaults.unwrap_or_default();
    let declares_nothing = raw.cases.is_empty() && raw.throughput.is_empty();
    let throughputs = crate::throughput::spec::load(
        root,
        &rel,
        &source,
        &spec.id,
        raw.throughput,
        config,
        errors,
    );
    if declares_nothing && !had_problems {
        errors.push(
            InputError::at(&rel, &source, 0..0, "spec file declares no `[[case]]` and no `[[throughput]]`")
                .with_help("add a case, e.g. [[case]] name = \"...\" image = \"...\" prompt = \"...\" rubric = { any = [\"...\"] }"),
        );
        return None;
    }
    let mut names = HashSet::new();
    // Snapshot files are named after cases: on macOS and Windows `People` and `people` would
    // be one file.
    let mut folded: std::collections::HashMap<String, String> = Default::default();
    let mut cases = Vec::new();
    let all_targets: Vec<String> = config.targets.keys().cloned().collect();
    for spanned in raw.cases {
        let case_span = spanned.span();
        let c = spanned.into_inner();
        let before = errors.errors.len();
        let name = c.name.get_ref().trim().to_string();
        if name.is_empty() {
            errors.push(
                err_at(c.name.span(), "case name is empty".into())
                    .with_help("give the case a short name like `people-count`"),
            );
        } else if !name
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || "-_.".contains(ch))
        {
            errors.push(
                err_at(c.name.span(), format!("case name `{name}` has characters that cannot go in a test or snapshot file name"))
                    .with_help("use letters, digits, `-`, `_` and `.` only"),
            );
        } else if !names.insert(name.clone()) {
            errors.push(
                err_at(
                    c.name.span(),
                    format!("duplicate case name `{name}` in this file"),
                )
                .with_help("case names must be unique within a spec file: rename one of them"),
            );
        } else if let Some(other) = folded.insert(name.to_lowercase(), name.clone()) {
            errors.push(
                err_at(
                    c.name.span(),
                    format!("case name `{name}` differs from `{other}` only in letter case"),
                )
                .with_help("their snapshot files would be one file on macOS and Windows: rename one of them"),
            );
        }
        let prompt = c.prompt.get_ref().trim().to_string();
        if prompt.is_empty() {
            errors.push(
                err_at(c.prompt.span(), "prompt is empty".into())
                    .with_help("write the question to ask about the image"),
            );
        }
        let rubric = c.rubric.get_ref().clone();
        if rubric.is_empty() {
            errors.push(
                err_at(
                    c.rubric.span(),
                    "rubric checks nothing: every answer would pass".into(),
                )
                .with_help("add at least one check, e.g. `rubric = { any = [\"two\", \"2\"] }`"),
            );
        } else if let Err(msg) = rubric.validate() {
            errors.push(err_at(c.rubric.span(), format!("invalid rubric: {msg}")));
        }
        let user_image = c.user_image.unwrap_or(false);
        let (image, photo) = match (&c.image, &c.photo) {
            (Some(_), Some(p)) => {
                errors.push(
                    err_at(p.span(), "a case has either `image` or `photo`, not both".into())
                        .with_help("`image` is a file in the project, `photo` a manifest entry that `eyetest fetch` downloads: keep one"),
                );
                (PathBuf::new(), None)
            }
            (None, None) => {
                errors.push(
                    err_at(case_span.clone(), "case has no `image` (or `photo`)".into())
                        .with_help("add `image = \"fixtures/...png\"`, or `photo = \"MANIFEST/NAME\"` for a photo listed in manifests/"),
                );
                (PathBuf::new(), None)
            }
            (None, Some(p)) => match manifests.resolve(p.get_ref()) {
                Ok(photo) => (photo.cache_path(), Some(photo)),
                Err((msg, help)) => {
                    errors.push(err_at(p.span(), msg).with_help(help));
                    (PathBuf::new(), None)
                }
            },
            (Some(i), None) => {
                let image = PathBuf::from(i.get_ref());
                if let Err(problem) = check_image(&root.join(&image)) {
                    if !user_image || root.join(&image).exists() {
                        let help = match problem {
                            _ if user_image => {
                                "this is a user-supplied photo: put a PNG or JPEG there"
                            }
                            ImageProblem::Missing | ImageProblem::DanglingLink(_) => {
                                "check the path (relative to the project root); generated fixtures are rebuilt with `eyetest fixtures`; for a photo you supply yourself, add `user_image = true`"
                            }
                            ImageProblem::Unreadable(_) => {
                                "check the file's permissions, and where it links to if it is a link"
                            }
                            ImageProblem::Directory | ImageProblem::NotAnImage => {
                                "use a PNG or JPEG file"
                            }
                        };
                        errors.push(
                            err_at(i.span(), format!("image `{}` {problem}", image.display()))
                                .with_help(help),
                        );
                    }
                }
                (image, None)
            }
        };
        let image_path = root.join(&image);
        let targets_spanned = c.targets.as_ref().or(defaults.targets.as_ref());
        let targets: Vec<String> = match targets_spanned {
            Some(list) => {
                if list.get_ref().is_empty() {
                    errors.push(
                        err_at(
                            list.span(),
                            "`targets` is empty: the case would never run".into(),
                        )
                        .with_help(format!(
                            "name at least one of `{}`",
                            all_targets.join("`, `")
                        )),
                    );
                }
                let mut seen = HashSet::new();
                for t in list.get_ref() {
                    let tname = t.get_ref();
                    if !config.declares(tname.as_str()) {
                        let help = match closest(tname, all_targets.iter().map(String::as_str)) {
                            Some(s) => format!("did you mean `{s}`? targets are declared in eyetest.toml as [target.NAME]"),
                            None => format!("declare it in eyetest.toml as [target.{tname}], or use one of `{}`", all_targets.join("`, `")),
                        };
                        errors.push(
                            err_at(t.span(), format!("unknown target `{tname}`"))
                                .with_help(help)
                                .with_label("not declared"),
                        );
                    } else if !seen.insert(tname.clone()) {
                        errors.push(
                            err_at(t.span(), format!("target `{tname}` is listed twice"))
                                .with_help("remove the repetition"),
                        );
                    }
                }
                list.get_ref().iter().map(|t| t.get_ref().clone()).collect()
            }
            None => config
                .targets
                .values()
                .filter(|t| t.common.default)
                .map(|t| t.name.clone())
                .collect(),
        };
        let max_tokens = c.max_tokens.as_ref().or(defaults.max_tokens.as_ref());
        if let Some(m) = max_tokens {
            if *m.get_ref() <= 0 {
                errors.push(
                    err_at(
                        m.span(),
                        format!("max_tokens must be at least 1, got {}", m.get_ref()),
                    )
                    .with_help("the study used `max_tokens = 200`"),
                );
            } else if *m.get_ref() > 1_000_000 {
                errors.push(
                    err_at(
                        m.span(),
                        format!("max_tokens {} is unreasonably large", m.get_ref()),
                    )
                    .with_help("use at most 1000000"),
                );
            }
        }
        let temperature = c.temperature.as_ref().or(defaults.temperature.as_ref());
        if let Some(t) = temperature {
            let v = *t.get_ref();
            if !(0.0..=2.0).contains(&v) {
                errors.push(
                    err_at(
                        t.span(),
                        format!("temperature must be between 0 and 2, got {v}"),
                    )
                    .with_help("use `temperature = 0.0` for greedy, reproducible answers"),
                );
            }
        }
        let repeats = c.repeats.as_ref().or(defaults.repeats.as_ref());
        if let Some(r) = repeats {
            if !(1..=100).contains(r.get_ref()) {
                errors.push(
                    err_at(
                        r.span(),
                        format!("repeats must be between 1 and 100, got {}", r.get_ref()),
                    )
                    .with_help(
                        "e.g. `repeats = 5` with `pass_rate = 0.8` passes when 4 of 5 answers pass",
                    ),
                );
            }
        }
        let pass_rate = c.pass_rate.as_ref().or(defaults.pass_rate.as_ref());
        if let Some(p) = pass_rate {
            let v = *p.get_ref();
            if !(v > 0.0 && v <= 1.0) {
                errors.push(
                    err_at(p.span(), format!("pass_rate must be in (0, 1], got {v}"))
                        .with_help("a fraction of the repeats: `pass_rate = 0.8` means 4 of 5"),
                );
            } else if repeats.is_none() {
                errors.push(
                    err_at(p.span(), "pass_rate without repeats has no effect".into())
                        .with_help("add `repeats = 5` (or remove pass_rate)"),
                );
            }
        }
        if let Some(j) = &rubric.judge {
            let help = judge_problem(
                j,
                config,
                &all_targets,
                c.label.is_some(),
                repeats.is_some_and(|r| *r.get_ref() > 1),
            );
            if let Some((msg, help)) = help {
                errors.push(err_at(c.rubric.span(), msg).with_help(help));
            }
        }
        if errors.errors.len() > before {
            continue;
        }
        let (line, _) = crate::diagnostic::line_col(&source, case_span.start);
        cases.push(Arc::new(Case {
            spec: spec.clone(),
            name,
            category: c.category.or_else(|| defaults.category.clone()),
            subcategory: c.subcategory.or_else(|| defaults.subcategory.clone()),
            image,
            image_path,
            user_image,
            photo,
            prompt,
            label: c.label,
            rubric,
            targets,
            max_tokens: max_tokens.map_or(200, |m| *m.get_ref() as u32),
            temperature: temperature.map_or(0.0, |t| *t.get_ref()),
            seed: c.seed.or(defaults.seed),
            repeats: repeats.map_or(1, |r| *r.get_ref() as u32),
            pass_rate: pass_rate.map_or(1.0, |p| *p.get_ref()),
            line,
        }));
    }
    Some((cases, throughputs))
}

/// What is wrong with a rubric's judge in this project (the rubric itself validated it):
/// the message and the advice.
fn judge_problem(
    j: &crate::rubric::judge::JudgeSpec,
    config: &ProjectConfig,
    all_targets: &[String],
    has_label: bool,
    repeated: bool,
) -> Option<(String, String)> {
    if !j.target.trim().is_empty() && !config.declares(&j.target) {
        let help = match closest(&j.target, all_targets.iter().map(String::as_str)) {
            Some(s) => {
                format!("did you mean `{s}`? targets are declared in eyetest.toml as [target.NAME]")
            }
            None => format!("declare it in eyetest.toml as [target.{}]", j.target),
        };
        return Some((format!("judge target `{}` is not declared", j.target), help));
    }
    if !has_label {
        return Some((
            "a rubric with a judge needs the case's `label`: the judge grades the answer against it".into(),
            "add `label = \"...\"` to the case: the correct answer, as a person would state it".into(),
        ));
    }
    if repeated {
        return Some((
            "a judge cannot be combined with `repeats` yet".into(),
            "remove `repeats` (and `pass_rate`) from this case, or the judge from its rubric"
                .into(),
        ));
    }
    None
}

/// Cases grouped by spec id, in file order; handy for reports and listings.
pub fn by_spec(cases: &[Arc<Case>]) -> BTreeMap<String, Vec<Arc<Case>>> {
    let mut map: BTreeMap<String, Vec<Arc<Case>>> = BTreeMap::new();
    for c in cases {
        map.entry(c.spec.id.clone()).or_default().push(c.clone());
    }
    map
}
