//! The study's side-by-side report: per task the image, the label and the question, then one
//! row per model, preceded by who the targets are and a pass-rate matrix.
//!
//! Meant to be read rendered (GitHub, GitLab, an editor's preview) and diffed in a pull
//! request, so it contains nothing that changes between two renderings of the same results:
//! no dates, no timings, no absolute paths unless an image lies outside every shared root.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::runs::{case_id, group_key, relative_path, targets, TargetInfo};
use crate::results::{ResultRecord, Status};

/// Where the report's links point from, and what it names as its inputs.
#[derive(Debug, Clone)]
pub struct Options {
    pub title: String,
    /// The project root: the records' image paths are relative to it.
    pub root: PathBuf,
    /// The directory the report is read from: image links are relative to it, so they work
    /// where the file is rendered (the project root when the report goes to stdout).
    pub link_base: PathBuf,
    /// The results files, as the user named them.
    pub sources: Vec<String>,
}

impl Options {
    pub fn new(root: &Path) -> Self {
        Options {
            title: "eyetest report".into(),
            root: root.to_path_buf(),
            link_base: root.to_path_buf(),
            sources: Vec::new(),
        }
    }
}

/// Renders the whole report. `records` should already be merged (one per test).
pub fn render(records: &[ResultRecord], opts: &Options) -> String {
    let infos = in_declared_order(targets(records), &opts.root);
    let mut out = String::new();
    let _ = writeln!(out, "# {}\n", inline(&opts.title));
    header(&mut out, records, &infos, opts);
    if records.is_empty() {
        out.push_str("No results.\n");
        return out;
    }
    summary(&mut out, records, &infos);
    tasks(&mut out, records, &infos, opts);
    out
}

/// Targets in the order eyetest.toml declares them (the order a reader chose, e.g. the study's
/// models from small to large), those it does not declare after them by name.
fn in_declared_order(mut infos: Vec<TargetInfo>, root: &Path) -> Vec<TargetInfo> {
    let text = std::fs::read_to_string(root.join(crate::spec::PROJECT_FILE)).unwrap_or_default();
    let declared: Vec<String> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("[target.")?.strip_suffix(']'))
        .map(|n| n.trim().trim_matches('"').trim_matches('\'').to_string())
        .collect();
    infos.sort_by_key(|t| {
        declared
            .iter()
            .position(|d| *d == t.name)
            .unwrap_or(usize::MAX)
    });
    infos
}

fn header(out: &mut String, records: &[ResultRecord], infos: &[TargetInfo], opts: &Options) {
    let simulated: Vec<&TargetInfo> = infos.iter().filter(|t| t.simulated).collect();
    if !simulated.is_empty() {
        let names = simulated
            .iter()
            .map(|t| format!("`{}`", t.name))
            .collect::<Vec<_>>()
            .join(", ");
        let all = simulated.len() == infos.len();
        let (noun, verb, their) = if simulated.len() == 1 {
            ("Target", "is", "Its")
        } else {
            ("Targets", "are", "Their")
        };
        let scope = if all {
            "Every answer below is simulated: this report says nothing about any model.".into()
        } else {
            format!("{their} rows say nothing about any model.")
        };
        let _ = writeln!(
            out,
            "> ⚠️ **SIMULATED ANSWERS.** {noun} {names} {verb} eyetest's simulated engine, a test \
             double that answers from the fixtures' embedded ground truth (the study's photos: from \
             their labels), not a model. {scope}\n"
        );
    }
    if !opts.sources.is_empty() {
        let files = opts
            .sources
            .iter()
            .map(|s| format!("`{}`", s.replace('`', "'")))
            .collect::<Vec<_>>()
            .join(", ");
        let _ = writeln!(out, "Results from {files}.\n");
    }
    let count = |s: Status| records.iter().filter(|r| r.status == s).count();
    let _ = writeln!(
        out,
        "{} result(s) of {} case(s) on {} target(s): {} passed, {} failed, {} error(s), {} ignored.\n",
        records.len(),
        super::runs::case_ids(records).len(),
        infos.len(),
        count(Status::Passed),
        count(Status::Failed),
        count(Status::Error),
        count(Status::Ignored),
    );
    if infos.is_empty() {
        return;
    }
    out.push_str("## Targets\n\n| target | model | GPU | answered as |\n|---|---|---|---|\n");
    for t in infos {
        let served = if !t.answered() {
            "unknown (no answer recorded)".to_string()
        } else {
            let ids = t
                .served_models
                .iter()
                .map(|m| format!("`{}`", cell(m).replace('`', "'")))
                .collect::<Vec<_>>()
                .join(", ");
            if t.simulated {
                format!("⚠️ **simulated engine**: {ids}")
            } else {
                ids
            }
        };
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} |",
            t.name,
            cell(&t.model),
            t.gpu.as_deref().map_or("—".into(), cell),
            served
        );
    }
    out.push('\n');
}

/// `(category, sub-category)`.
type Group = (String, String);
/// The cases of one group, each with its records, in order of first appearance.
type GroupCases<'a> = Vec<(String, Vec<&'a ResultRecord>)>;

/// `passed/run`, or `—` when nothing ran: an ignored case is neither a pass nor a failure.
fn rate(passed: usize, run: usize) -> String {
    if run == 0 {
        "—".into()
    } else {
        format!("{passed}/{run}")
    }
}

fn summary(out: &mut String, records: &[ResultRecord], infos: &[TargetInfo]) {
    // (group) -> target -> (passed, run), groups in order of first appearance.
    let mut order: Vec<Group> = Vec::new();
    let mut cells: BTreeMap<(Group, &str), (usize, usize)> = BTreeMap::new();
    for r in records {
        let g = group_key(r);
        if !order.contains(&g) {
            order.push(g.clone());
        }
        let c = cells.entry((g, r.target.as_str())).or_default();
        match r.status {
            Status::Passed => *c = (c.0 + 1, c.1 + 1),
            Status::Failed | Status::Error => c.1 += 1,
            Status::Ignored => {}
        }
    }
    out.push_str(
        "## Pass rate\n\nPassed / run, per sub-category and target; errors count as run, \
         ignored cases do not (`—`: nothing ran).\n\n| category / sub-category |",
    );
    for t in infos {
        let _ = write!(out, " `{}` |", t.name);
    }
    out.push_str("\n|---|");
    out.push_str(&"---|".repeat(infos.len()));
    out.push('\n');
    for g in &order {
        let _ = write!(out, "| {} / {} |", cell(&g.0), cell(&g.1));
        for t in infos {
            let (p, n) = cells
                .get(&(g.clone(), t.name.as_str()))
                .copied()
                .unwrap_or_default();
            let _ = write!(out, " {} |", rate(p, n));
        }
        out.push('\n');
    }
    out.push_str("| **total** |");
    for t in infos {
        let _ = write!(out, " **{}** |", rate(t.passed, t.run()));
    }
    out.push_str("\n\n");
}

fn tasks(out: &mut String, records: &[ResultRecord], infos: &[TargetInfo], opts: &Options) {
    // group -> case id -> records, each level in order of first appearance.
    let mut groups: Vec<(Group, GroupCases)> = Vec::new();
    for r in records {
        let g = group_key(r);
        let gi = match groups.iter().position(|(k, _)| *k == g) {
            Some(i) => i,
            None => {
                groups.push((g, Vec::new()));
                groups.len() - 1
            }
        };
        let cases = &mut groups[gi].1;
        let id = case_id(r);
        match cases.iter_mut().find(|(k, _)| *k == id) {
            Some((_, rs)) => rs.push(r),
            None => cases.push((id, vec![r])),
        }
    }
    out.push_str("## Tasks\n");
    for ((cat, sub), cases) in &groups {
        let _ = writeln!(out, "\n### {} / {}", inline(cat), inline(sub));
        for (id, rs) in cases {
            let first = rs[0];
            let _ = writeln!(out, "\n#### `{id}`\n");
            let _ = writeln!(out, "![image]({})\n", image_link(&first.image, opts));
            let _ = writeln!(
                out,
                "**Label:** {}\n",
                first.label.as_deref().map_or("—".into(), inline)
            );
            let _ = writeln!(out, "**Question:** {}\n", inline(&first.prompt));
            // An HTML table, as the study's report used: a markdown table cell cannot hold
            // a multi-line answer, a fenced block or a list. One row per line and no blank
            // line inside, so that the whole table stays one HTML block in CommonMark.
            out.push_str(
                "<table>\n<tr><th>target</th><th>answer</th><th>verdict</th><th>rubric checked</th></tr>\n",
            );
            // Targets in one order throughout the report, whatever order the runs finished in.
            for t in infos {
                for r in rs.iter().filter(|r| r.target == t.name) {
                    let model = if t.simulated {
                        format!("{} (simulated)", escape_html(&r.model))
                    } else {
                        escape_html(&r.model)
                    };
                    let _ = writeln!(
                        out,
                        "<tr><td><code>{}</code><br><sub>{}</sub></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                        escape_html(&r.target),
                        model,
                        answer_html(r),
                        escape_html(&verdict_cell_plain(r)),
                        checks_html(r),
                    );
                }
            }
            out.push_str("</table>\n");
        }
    }
}

/// The answer as HTML that keeps its shape: paragraphs, line breaks, fenced code blocks,
/// inline code and bold, with everything else escaped (models do write `<image>`).
fn answer_html(r: &ResultRecord) -> String {
    match (r.status, r.answer.as_deref()) {
        (Status::Error | Status::Ignored, None) => "—".into(),
        (_, Some(a)) if !a.trim().is_empty() => markdown_to_html(a),
        _ => "<em>(empty answer)</em>".into(),
    }
}

/// Each check the rubric ran, passed or not, and what it found: the reader can judge the
/// rubric as well as the answer.
fn checks_html(r: &ResultRecord) -> String {
    match &r.verdict {
        None => "—".into(),
        Some(v) if v.checks.is_empty() && v.judge.is_none() => "rubric checks nothing".into(),
        Some(v) => v
            .judge
            .iter()
            .map(|j| escape_html(&j.to_string()))
            .chain(v.checks.iter().map(|c| escape_html(&c.to_string())))
            .collect::<Vec<_>>()
            .join("<br>"),
    }
}

/// "✅ pass", with the judge's reason when a judge passed it: a reader weighs a judged pass
/// by its reason.
fn pass_cell(r: &ResultRecord) -> String {
    match r.verdict.as_ref().and_then(|v| v.judge.as_ref()) {
        Some(j) if j.status == crate::rubric::judge::JudgeStatus::Pass => {
            format!("✅ pass (judge: {})", j.reason)
        }
        _ => "✅ pass".into(),
    }
}

/// The verdict as plain text (escaped by the caller).
fn verdict_cell_plain(r: &ResultRecord) -> String {
    let reason = || r.reason.clone().unwrap_or_default();
    match r.status {
        Status::Passed => pass_cell(r),
        Status::Failed => match &r.verdict {
            Some(v) => format!("❌ fail: {}", v.summary()),
            None => "❌ fail".into(),
        },
        Status::Error => format!("⚠️ error: {}", reason()),
        Status::Ignored => format!("⏭ ignored: {}", reason()),
    }
}

/// Escapes text (element content, never an attribute) for HTML; newlines become `<br>` so that nothing spans a blank line.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.trim().chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => {}
            '\n' => out.push_str("<br>"),
            c => out.push(c),
        }
    }
    out
}

/// The little markdown models put in answers, as one line of HTML: fenced code blocks become
/// `<pre><code>`, `` `code` `` and `**bold**` their tags, line breaks `<br>`; all text is
/// escaped, so nothing a model writes can become markup of its own.
pub fn markdown_to_html(text: &str) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut fence: Option<Vec<String>> = None;
    for line in text.trim_matches('\n').lines() {
        let line = line.trim_end_matches('\r');
        let is_fence = line.trim_start().starts_with("```");
        match (&mut fence, is_fence) {
            (None, true) => fence = Some(Vec::new()),
            (Some(body), true) => {
                parts.push(pre(body));
                fence = None;
            }
            (Some(body), false) => body.push(line.to_string()),
            (None, false) => parts.push(inline_html(line)),
        }
    }
    if let Some(body) = fence {
        // An unclosed fence (an answer cut at max_tokens) still shows as code.
        parts.push(pre(&body));
    }
    // A `<pre>` is a block already: no extra break around it.
    let mut out = String::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 && !p.starts_with("<pre>") && !parts[i - 1].starts_with("<pre>") {
            out.push_str("<br>");
        }
        out.push_str(p);
    }
    out
}

fn pre(lines: &[String]) -> String {
    let body: Vec<String> = lines.iter().map(|l| escape_html_keep_space(l)).collect();
    format!("<pre><code>{}</code></pre>", body.join("<br>"))
}

/// Like [`escape_html`] but keeps leading spaces (code indentation).
fn escape_html_keep_space(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// One line of prose: inline code spans and bold, the rest escaped. Unpaired markers stay as
/// they were written.
fn inline_html(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(start) = rest.find('`') {
        let after = &rest[start + 1..];
        match after.find('`') {
            Some(end) => {
                out.push_str(&bold(&escape_html_keep_space(&rest[..start])));
                out.push_str(&format!(
                    "<code>{}</code>",
                    escape_html_keep_space(&after[..end])
                ));
                rest = &after[end + 1..];
            }
            None => break,
        }
    }
    out.push_str(&bold(&escape_html_keep_space(rest)));
    out
}

/// `**x**` to `<strong>x</strong>`, pairs only.
fn bold(s: &str) -> String {
    let pieces: Vec<&str> = s.split("**").collect();
    if pieces.len() < 3 {
        return s.to_string();
    }
    let mut out = String::new();
    let pairs = (pieces.len() - 1) / 2;
    for (i, p) in pieces.iter().enumerate() {
        if i > 0 {
            let open = i % 2 == 1;
            if i <= pairs * 2 {
                out.push_str(if open { "<strong>" } else { "</strong>" });
            } else {
                out.push_str("**");
            }
        }
        out.push_str(p);
    }
    out
}

/// The verdict with the reason a reader needs to judge it, on one line.
pub fn verdict_cell(r: &ResultRecord) -> String {
    let reason = || r.reason.as_deref().map_or(String::new(), cell);
    match r.status {
        Status::Passed => cell(&pass_cell(r)),
        Status::Failed => match &r.verdict {
            Some(v) => format!("❌ fail: {}", cell(&v.summary())),
            None => "❌ fail".into(),
        },
        Status::Error => format!("⚠️ error: {}", reason()),
        Status::Ignored => format!("⏭ ignored: {}", reason()),
    }
}

/// The markdown link target for a record's image, relative to where the report is read.
pub fn image_link(image: &str, opts: &Options) -> String {
    let abs = opts.root.join(image);
    let rel = relative_path(&opts.link_base, &abs);
    let s = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/");
    // Absolute Unix paths lose their leading `/` in the join above.
    let s = if rel.has_root() && !s.starts_with('/') {
        format!("/{}", s.trim_start_matches('/'))
    } else {
        s
    };
    url_escape(&s)
}

/// Escapes what ends a markdown link destination early or makes it invalid.
fn url_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            ' ' => out.push_str("%20"),
            '(' => out.push_str("%28"),
            ')' => out.push_str("%29"),
            '<' => out.push_str("%3C"),
            '>' => out.push_str("%3E"),
            c => out.push(c),
        }
    }
    out
}

/// Text that must stay one paragraph and must not turn into HTML: models do emit `<image>`
/// and the like, and a label with a line break would end the paragraph.
pub fn inline(s: &str) -> String {
    let s = s.trim();
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => {}
            '\n' => out.push_str("<br>"),
            c => out.push(c),
        }
    }
    out
}

/// [`inline`] text that is also safe inside a table cell: `|` would start a new column.
pub fn cell(s: &str) -> String {
    inline(s).replace('|', "\\|")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_keep_tables_intact() {
        assert_eq!(
            cell("a | b\nc\r\n<image> & d "),
            "a \\| b<br>c<br>&lt;image&gt; &amp; d"
        );
    }

    #[test]
    fn answers_keep_their_shape_in_an_html_cell() {
        let a = "The output is:\n\n```python\nif x < 20:\n\n    print(a | b)\n```\nUse `x < 20` with **care** & `|`.";
        let html = markdown_to_html(a);
        assert_eq!(
            html,
            "The output is:<br><pre><code>if x &lt; 20:<br><br>    print(a | b)</code></pre>\
             Use <code>x &lt; 20</code> with <strong>care</strong> &amp; <code>|</code>."
        );
        assert!(
            !html.contains('\n'),
            "one line: a newline could end the HTML block"
        );
        // Markup a model writes is shown, never interpreted; unpaired markers stay as written.
        assert_eq!(
            markdown_to_html("<img src=x> **half `open"),
            "&lt;img src=x&gt; **half `open"
        );
        // An answer cut inside a fence still renders its code.
        assert_eq!(markdown_to_html("```\n0"), "<pre><code>0</code></pre>");
    }

    #[test]
    fn image_links_are_relative_to_the_report() {
        let mut opts = Options::new(Path::new("/p"));
        assert_eq!(image_link("fixtures/a b.png", &opts), "fixtures/a%20b.png");
        opts.link_base = PathBuf::from("/p/target/reports");
        assert_eq!(image_link("fixtures/x.png", &opts), "../../fixtures/x.png");
        assert_eq!(image_link("/photos/x.png", &opts), "../../../photos/x.png");
    }
}
