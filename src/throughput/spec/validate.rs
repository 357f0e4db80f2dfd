//! Checks of one `[[throughput]]` table, each problem reported at its span with a fix.

use std::collections::{BTreeMap, HashSet};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use toml::Spanned;

use super::{
    ImageSource, RawImages, RawThroughput, ThroughputSpec, MAX_BODY_MEMORY, MAX_CONCURRENCY,
    MAX_REPEATS, MAX_REQUESTS, MAX_SIDE, MIN_SIDE,
};
use crate::diagnostic::{closest, InputError, InputErrors};
use crate::target::ProjectConfig;
use crate::throughput::config::GateConfig;
use crate::throughput::metrics::Metric;
use crate::throughput::slo::{self, Slo};

pub(super) struct Validator<'a> {
    pub(super) rel: &'a Path,
    pub(super) source: &'a Arc<str>,
    pub(super) errors: &'a mut InputErrors,
    pub(super) failed: bool,
}

impl Validator<'_> {
    pub(super) fn err(&mut self, span: Range<usize>, message: String, help: impl Into<String>) {
        self.failed = true;
        self.errors
            .push(InputError::at(self.rel, self.source, span, message).with_help(help));
    }

    /// An integer in `lo..=hi`, or an error at its span.
    pub(super) fn int(
        &mut self,
        v: &Spanned<i64>,
        what: &str,
        lo: i64,
        hi: i64,
        help: &str,
    ) -> Option<i64> {
        let x = *v.get_ref();
        if x < lo {
            self.err(
                v.span(),
                format!("{what} must be at least {lo}, got {x}"),
                help,
            );
            None
        } else if x > hi {
            self.err(
                v.span(),
                format!("{what} {x} is too large (at most {hi})"),
                help,
            );
            None
        } else {
            Some(x)
        }
    }

    pub(super) fn spec(
        &mut self,
        root: &Path,
        spec_id: &str,
        line: usize,
        r: RawThroughput,
        config: &ProjectConfig,
        names: &mut HashSet<String>,
    ) -> Option<ThroughputSpec> {
        let name = r.name.get_ref().trim().to_string();
        if name.is_empty() {
            self.err(
                r.name.span(),
                "throughput name is empty".into(),
                "give the sweep a short name like `caption-560`",
            );
        } else if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            self.err(
                r.name.span(),
                format!(
                    "throughput name `{name}` has characters that cannot go in a test or file name"
                ),
                "use letters, digits, `-`, `_` and `.` only",
            );
        } else if !names.insert(name.clone()) {
            self.err(
                r.name.span(),
                format!("duplicate throughput name `{name}` in this file"),
                "throughput names must be unique within a spec file: rename one of them",
            );
        }

        let targets = self.targets(r.targets.as_ref(), r.name.span(), config);
        let images = self.images(root, &r.images);
        let prompt = r.prompt.get_ref().trim().to_string();
        if prompt.is_empty() {
            self.err(
                r.prompt.span(),
                "prompt is empty".into(),
                "write the text sent with every image, e.g. the study's \"If I had to write a description for this image, it would be: \"",
            );
        }
        let max_tokens = self.int(
            &r.max_tokens,
            "max_tokens",
            1,
            1_000_000,
            "the study used `max_tokens = 512`",
        );
        let min_tokens = r.min_tokens.as_ref().and_then(|m| {
            let v = self.int(m, "min_tokens", 0, 1_000_000, "min_tokens is vLLM's floor on answer length; omit it or use 0..=max_tokens")?;
            if max_tokens.is_some_and(|max| v > max) {
                self.err(
                    m.span(),
                    format!("min_tokens {v} is more than max_tokens {}", max_tokens.unwrap_or(0)),
                    "lower min_tokens, or use `ignore_eos = true` to make every answer max_tokens long",
                );
                return None;
            }
            Some(v as u32)
        });
        let temperature = match &r.temperature {
            Some(t) if !(0.0..=2.0).contains(t.get_ref()) => {
                self.err(
                    t.span(),
                    format!("temperature must be between 0 and 2, got {}", t.get_ref()),
                    "use `temperature = 0.0` (greedy), as the study did",
                );
                0.0
            }
            Some(t) => *t.get_ref(),
            None => 0.0,
        };
        let count = images.as_ref().map(ImageSource::count);
        let mut arrival = self.arrival(&r);
        let (concurrency, requests) = if arrival.is_rate() {
            let req = self.rate_requests(&r, &arrival, count);
            let req = req.map(|req| super::profile::sort_rates(&mut arrival.rates, req));
            (Vec::new(), req)
        } else {
            self.concurrency_levels(&r, count)
        };
        let warmup = r.warmup.as_ref().and_then(|w| {
            self.int(w, "warmup", 0, MAX_REQUESTS, "warmup is the number of unmeasured requests before each level; omit it for one per slot")
                .map(|v| v as usize)
        });
        let repeats = match &r.repeats {
            Some(rep) => self
                .int(rep, "repeats", 1, MAX_REPEATS, "use 3 or more: the gate's significance test needs at least 3 repeats on each side")
                .map(|v| v as usize),
            None => Some(3),
        };
        let stream = r.stream.unwrap_or(true);
        let gate = r.gate.as_ref().map(|g| (g.get_ref().clone(), g.span()));
        if let Some((g, span)) = &gate {
            self.gate(g, span.clone(), stream);
        }
        let mut gate = gate.map(|g| g.0).unwrap_or_default();
        let slo = self.slo(r.slo.as_ref(), stream, r.gate.as_ref());
        let telemetry = self.telemetry(r.telemetry.as_ref());
        if let Some(rate) = slo.failure_rate_max {
            gate.max_failure_rate = rate;
        }
        Some(ThroughputSpec {
            name,
            spec_id: spec_id.to_string(),
            spec_path: self.rel.to_path_buf(),
            line,
            targets,
            images: images?,
            prompt,
            max_tokens: max_tokens? as u32,
            ignore_eos: r.ignore_eos,
            min_tokens,
            temperature,
            concurrency,
            requests: requests?,
            warmup,
            repeats: repeats?,
            stream,
            test: r.test.unwrap_or(true),
            gate,
            slo,
            arrival,
            telemetry,
        })
    }

    /// The `concurrency` profile's levels, sorted, and their requests.
    fn concurrency_levels(
        &mut self,
        r: &RawThroughput,
        count: Option<usize>,
    ) -> (Vec<usize>, Option<Vec<usize>>) {
        let Some(list) = &r.concurrency else {
            // A misspelt `concurrency` was reported as an unknown key (and blanked out to
            // read on): saying it is missing too would be the same problem twice.
            let misspelt = self.errors.errors.iter().any(|e| {
                e.path == self.rel
                    && e.message.starts_with("unknown field `")
                    && e.message
                        .split('`')
                        .nth(1)
                        .is_some_and(|k| crate::diagnostic::closest(k, ["concurrency"]).is_some())
            });
            if misspelt {
                self.failed = true;
                return (Vec::new(), None);
            }
            self.err(
                r.name.span(),
                "throughput sweep has no `concurrency` levels and no rate `profile`".into(),
                "add `concurrency = [1, 2, 4, 8]` (closed loop), or an arrival profile such as `profile = \"poisson\"` with `rates = [1.0, 2.0]`",
            );
            return (Vec::new(), None);
        };
        let (written, all_valid) = self.concurrency(list);
        let requests = self.requests(r.requests.as_ref(), &written, all_valid, count);
        let mut levels: Vec<(usize, usize)> = match &requests {
            Some(req) => written
                .iter()
                .map(|l| l.0)
                .zip(req.iter().copied())
                .collect(),
            None => written.iter().map(|l| (l.0, 0)).collect(),
        };
        levels.sort_unstable();
        levels.dedup_by_key(|l| l.0);
        let concurrency = levels.iter().map(|l| l.0).collect();
        let requests = requests.map(|_| levels.iter().map(|l| l.1).collect());
        (concurrency, requests)
    }

    fn targets(
        &mut self,
        list: Option<&Spanned<Vec<Spanned<String>>>>,
        name_span: Range<usize>,
        config: &ProjectConfig,
    ) -> Vec<String> {
        let all: Vec<&str> = config.targets.keys().map(String::as_str).collect();
        let Some(list) = list else {
            self.err(
                name_span,
                "throughput sweep has no `targets`".into(),
                format!(
                    "a sweep costs GPU time, so it names its targets: add e.g. `targets = [\"{}\"]` (declared: `{}`)",
                    all.first().copied().unwrap_or("sim"),
                    all.join("`, `")
                ),
            );
            return Vec::new();
        };
        if list.get_ref().is_empty() {
            self.err(
                list.span(),
                "`targets` is empty: the sweep would never run".into(),
                format!("name at least one of `{}`", all.join("`, `")),
            );
        }
        let mut seen = HashSet::new();
        for t in list.get_ref() {
            let name = t.get_ref();
            if !config.targets.contains_key(name.as_str()) {
                let help = match closest(name, all.iter().copied()) {
                    Some(s) => format!(
                        "did you mean `{s}`? targets are declared in eyetest.toml as [target.NAME]"
                    ),
                    None => format!(
                        "declare it in eyetest.toml as [target.{name}], or use one of `{}`",
                        all.join("`, `")
                    ),
                };
                self.failed = true;
                self.errors.push(
                    InputError::at(
                        self.rel,
                        self.source,
                        t.span(),
                        format!("unknown target `{name}`"),
                    )
                    .with_help(help)
                    .with_label("not declared"),
                );
            } else if !seen.insert(name.clone()) {
                self.err(
                    t.span(),
                    format!("target `{name}` is listed twice"),
                    "remove the repetition",
                );
            }
        }
        list.get_ref().iter().map(|t| t.get_ref().clone()).collect()
    }

    fn images(&mut self, root: &Path, images: &Spanned<RawImages>) -> Option<ImageSource> {
        let raw = images.get_ref();
        match (&raw.random, &raw.files) {
            (Some(_), Some(_)) | (None, None) => {
                self.err(
                    images.span(),
                    "`images` needs exactly one of `random` or `files`".into(),
                    "e.g. `images = { random = { width = 560, height = 560, count = 256, seed = 0 } }` or `images = { files = [\"fixtures/a.png\"] }`",
                );
                None
            }
            (Some(random), None) => {
                let r = random.get_ref();
                let side_help =
                    "the study used 560x560, the base tile of the Llama 3.2 Vision processor";
                let w = self.int(&r.width, "width", MIN_SIDE, MAX_SIDE, side_help);
                let h = self.int(&r.height, "height", MIN_SIDE, MAX_SIDE, side_help);
                let count = self.int(
                    &r.count,
                    "count",
                    1,
                    1_000_000,
                    "the study used 256 distinct images; requests cycle through them",
                );
                let seed = match &r.seed {
                    Some(s) => self.int(s, "seed", 0, i64::MAX, "any non-negative integer")?,
                    None => 0,
                };
                let (w, h, count) = (w?, h?, count?);
                let bytes = 4 * w * h * count;
                if bytes > MAX_BODY_MEMORY {
                    self.err(
                        r.count.span(),
                        format!(
                            "{count} images of {w}x{h} would hold about {:.1} GiB of request bodies in memory",
                            bytes as f64 / (1u64 << 30) as f64
                        ),
                        format!(
                            "lower count (at most {} at this size): requests cycle through the images, so a few hundred distinct ones are plenty",
                            (MAX_BODY_MEMORY / (4 * w * h)).max(1)
                        ),
                    );
                    return None;
                }
                Some(ImageSource::Random {
                    width: w as u32,
                    height: h as u32,
                    count: count as usize,
                    seed: seed as u64,
                })
            }
            (None, Some(files)) => {
                if files.get_ref().is_empty() {
                    self.err(
                        files.span(),
                        "`files` is empty".into(),
                        "list at least one PNG or JPEG, relative to the project root",
                    );
                    return None;
                }
                let mut written = Vec::new();
                let mut paths = Vec::new();
                for f in files.get_ref() {
                    let path = root.join(f.get_ref());
                    if let Err(msg) = crate::files::check_image(&path) {
                        self.err(
                            f.span(),
                            format!("image `{}` {msg}", f.get_ref()),
                            "use a PNG or JPEG, with a path relative to the project root",
                        );
                    }
                    written.push(PathBuf::from(f.get_ref()));
                    paths.push(path);
                }
                Some(ImageSource::Files { written, paths })
            }
        }
    }

    /// The valid levels as written, with their spans, and whether every one was valid.
    fn concurrency(
        &mut self,
        list: &Spanned<Vec<Spanned<i64>>>,
    ) -> (Vec<(usize, Range<usize>)>, bool) {
        if list.get_ref().is_empty() {
            self.err(
                list.span(),
                "`concurrency` is empty: there is nothing to sweep".into(),
                "list the levels, e.g. the study's `concurrency = [1, 2, 4, 8, 16, 32]`",
            );
            return (Vec::new(), false);
        }
        let mut levels: Vec<(usize, Range<usize>)> = Vec::new();
        let mut all_valid = true;
        for c in list.get_ref() {
            let Some(v) = self.int(
                c,
                "a concurrency level",
                1,
                MAX_CONCURRENCY,
                "a level is how many requests are in flight at once; the study swept 1, 2, 4, 8, 16, 32",
            ) else {
                all_valid = false;
                continue;
            };
            if levels.iter().any(|l| l.0 == v as usize) {
                self.err(
                    c.span(),
                    format!("concurrency level {v} is listed twice"),
                    "remove the repetition",
                );
                all_valid = false;
            }
            levels.push((v as usize, c.span()));
        }
        (levels, all_valid)
    }

    /// Requests per level, aligned with `levels` as written.
    fn requests(
        &mut self,
        raw: Option<&Spanned<toml::Value>>,
        levels: &[(usize, Range<usize>)],
        all_valid: bool,
        count: Option<usize>,
    ) -> Option<Vec<usize>> {
        let help = "requests is the number of measured requests per concurrency level (the study sent 256): an integer, or a list with one value per level";
        let per_level: Vec<(usize, Range<usize>, bool)> = match raw {
            None => {
                let n = count?;
                levels.iter().map(|l| (n, l.1.clone(), true)).collect()
            }
            Some(v) => {
                let one = |s: &mut Self, x: &toml::Value| -> Option<usize> {
                    match x.as_integer() {
                        Some(i) if (1..=MAX_REQUESTS).contains(&i) => Some(i as usize),
                        Some(i) => {
                            s.err(
                                v.span(),
                                format!("requests must be between 1 and {MAX_REQUESTS}, got {i}"),
                                help,
                            );
                            None
                        }
                        None => {
                            s.err(
                                v.span(),
                                format!(
                                    "requests must be an integer or a list of integers, got {x}"
                                ),
                                help,
                            );
                            None
                        }
                    }
                };
                match v.get_ref() {
                    toml::Value::Array(list) => {
                        if all_valid && list.len() != levels.len() {
                            self.err(
                                v.span(),
                                format!("requests lists {} values but concurrency has {} levels", list.len(), levels.len()),
                                "give one value per concurrency level, in the same order, or a single integer for all",
                            );
                            return None;
                        }
                        let values: Vec<usize> = list.iter().filter_map(|x| one(self, x)).collect();
                        if values.len() != list.len() {
                            return None;
                        }
                        values.into_iter().map(|n| (n, v.span(), false)).collect()
                    }
                    x => {
                        let n = one(self, x)?;
                        levels.iter().map(|_| (n, v.span(), false)).collect()
                    }
                }
            }
        };
        let mut ok = true;
        for ((n, span, defaulted), (c, _)) in per_level.iter().zip(levels) {
            if n < c {
                let why = if *defaulted {
                    format!("requests defaults to the image count ({n})")
                } else {
                    format!("{n} requests")
                };
                self.err(
                    span.clone(),
                    format!("{why} at concurrency {c}: that level could never have {c} requests in flight"),
                    format!("send at least {c} requests at that level (requests cycle through the images), or drop the level"),
                );
                ok = false;
            }
        }
        ok.then(|| per_level.into_iter().map(|p| p.0).collect())
    }

    fn gate(&mut self, g: &GateConfig, span: Range<usize>, stream: bool) {
        if !(g.alpha > 0.0 && g.alpha < 1.0) {
            self.err(
                span.clone(),
                format!("gate alpha must be between 0 and 1, got {}", g.alpha),
                "omit it for the default 0.05",
            );
        }
        let limits = [
            ("min_abs", g.min_abs),
            ("max_ttft_ms", g.max_ttft_ms),
            ("max_tpot_ms", g.max_tpot_ms),
            ("max_e2e_ms", g.max_e2e_ms),
        ];
        for (key, v) in limits {
            if let Some(v) = v.filter(|v| !(v.is_finite() && *v >= 0.0)) {
                self.err(
                    span.clone(),
                    format!("gate {key} must be a non-negative number, got {v}"),
                    "remove it, or give a limit like `max_ttft_ms = 500`",
                );
            }
        }
        let needs_stream = matches!(
            g.metric,
            Metric::TtftP50
                | Metric::TtftP90
                | Metric::TtftP99
                | Metric::TpotP50
                | Metric::TpotP99
                | Metric::ItlP50
                | Metric::ItlP99
        ) || g.max_ttft_ms.is_some()
            || g.max_tpot_ms.is_some();
        if needs_stream && !stream {
            self.err(
                span,
                "the gate uses TTFT, TPOT or ITL, which only a streamed answer has, but `stream = false`".into(),
                "remove `stream = false`, or gate on images_per_s or e2e",
            );
        }
    }

    /// The `slo` table: every bad key or value reported at its value.
    fn slo(
        &mut self,
        table: Option<&Spanned<BTreeMap<String, Spanned<toml::Value>>>>,
        stream: bool,
        gate: Option<&Spanned<GateConfig>>,
    ) -> Slo {
        let mut out = Slo::default();
        let Some(table) = table else { return out };
        for (key, value) in table.get_ref() {
            let v = match value.get_ref() {
                toml::Value::Integer(i) => slo::Value::Num(*i as f64),
                toml::Value::Float(f) => slo::Value::Num(*f),
                toml::Value::String(s) => slo::Value::Str(s),
                other => {
                    self.err(
                        value.span(),
                        format!("slo {key} must be a number, got a {}", other.type_str()),
                        "write a limit like `ttft_p99_ms = 500`",
                    );
                    continue;
                }
            };
            if let Err((message, help)) = slo::set(&mut out, key, v) {
                self.err(value.span(), message, help);
                continue;
            }
            let streamed_only = key.starts_with("ttft_")
                || key.starts_with("tpot_")
                || key.starts_with("itl_")
                || key == "goodput_ttft_ms";
            if streamed_only && !stream {
                self.err(
                    value.span(),
                    format!("slo {key} needs a streamed answer (TTFT, TPOT and ITL are measured on the stream), but `stream = false`"),
                    "remove `stream = false`, or limit e2e instead",
                );
            }
            if key == "failure_rate_max" {
                if let Some(g) = gate.filter(|g| g.get_ref().max_failure_rate > 0.0) {
                    self.err(
                        g.span(),
                        "the failure limit is set twice: gate max_failure_rate and slo failure_rate_max".into(),
                        "keep one of them (they are the same check)",
                    );
                }
            }
        }
        if out.goodput_min.is_some() && out.goodput.is_none() {
            self.err(
                table.span(),
                "slo goodput_min needs per-request limits to count good requests".into(),
                "add goodput_ttft_ms, goodput_tpot_ms or goodput_e2e_ms (vLLM's --goodput)",
            );
        }
        out
    }
}
