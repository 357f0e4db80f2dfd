//! The module layering of docs/design.md "Architecture", checked: the top-level modules of
//! `src/` import each other without a cycle, so each flow reads straight down and nothing
//! calls back up. A cycle is easy to add without noticing (one `use crate::spec::Suite` in
//! a lower module is enough) and hard to take out later, so it fails here, naming the files
//! that make each edge.
//!
//! Imports are read from the source text: `crate::NAME` (also inside `crate::{...}`) and
//! `super::` paths that climb to the crate root, outside comments and test modules (a test
//! may build whatever it needs). That is what a reader follows, and it is enough for a
//! crate that always names other modules through `crate::`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use regex::Regex;

/// module -> module it imports -> the files that do it.
type Graph = BTreeMap<String, BTreeMap<String, BTreeSet<String>>>;

#[test]
fn top_level_modules_import_each_other_without_cycles() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = import_graph(&src);
    assert!(
        graph.len() > 10 && graph.values().map(BTreeMap::len).sum::<usize>() > 20,
        "the import scan found too little to mean anything: {graph:?}"
    );
    let cycles = cycles(&graph);
    let shown: Vec<String> = cycles
        .iter()
        .map(|comp| {
            let names: Vec<&str> = comp.iter().map(String::as_str).collect();
            let mut lines = vec![format!("cycle among {}:", names.join(", "))];
            for (from, edges) in graph.iter().filter(|(m, _)| comp.contains(*m)) {
                for (to, files) in edges.iter().filter(|(m, _)| comp.contains(*m)) {
                    let files: Vec<&str> = files.iter().map(String::as_str).collect();
                    lines.push(format!("  {from} -> {to}: {}", files.join(", ")));
                }
            }
            lines.join("\n")
        })
        .collect();
    assert!(
        cycles.is_empty(),
        "module import cycles (move the shared piece below both, or pass the data down):\n{}",
        shown.join("\n")
    );
}

/// A cycle is found when one is there: the check above cannot pass by finding nothing.
#[test]
fn a_back_edge_is_reported_as_a_cycle() {
    fn edge(g: &mut Graph, a: &str, b: &str) {
        let files = g.entry(a.into()).or_default().entry(b.into()).or_default();
        files.insert(format!("src/{a}.rs"));
    }
    let mut g = Graph::new();
    edge(&mut g, "spec", "targets");
    edge(&mut g, "targets", "env");
    edge(&mut g, "runner", "spec");
    assert!(cycles(&g).is_empty());
    edge(&mut g, "env", "spec");
    let expected: BTreeSet<String> = ["env", "spec", "targets"].map(String::from).into();
    assert_eq!(cycles(&g), vec![expected]);
}

fn import_graph(src: &Path) -> Graph {
    let mut files = Vec::new();
    walk(src, &mut files);
    let tests = test_files(&files);
    let modules: BTreeSet<String> = files.iter().map(|f| top_module(src, f)).collect();
    let crate_ref = Regex::new(r"crate::(\w+)").unwrap();
    let crate_group = Regex::new(r"crate::\{([^}]*)\}").unwrap();
    let first_word = Regex::new(r"(?:^|,)\s*(\w+)").unwrap();
    let mut graph = Graph::new();
    for file in files.iter().filter(|f| !tests.contains(*f)) {
        let me = top_module(src, file);
        if me == "lib" || me == "main" {
            continue;
        }
        let text = without_tests(&without_comments(&std::fs::read_to_string(file).unwrap()));
        let mut refs: BTreeSet<String> = crate_ref
            .captures_iter(&text)
            .map(|c| c[1].to_string())
            .collect();
        for group in crate_group.captures_iter(&text) {
            refs.extend(
                first_word
                    .captures_iter(&group[1])
                    .map(|c| c[1].to_string()),
            );
        }
        // `super::` from src/a/b.rs climbs to src/a; one more climbs to the crate root.
        let rel = file.strip_prefix(src).unwrap();
        let mut depth = rel.components().count();
        if file.file_name().is_some_and(|n| n == "mod.rs") {
            depth -= 1;
        }
        let to_root = Regex::new(&format!(r"(?:super::){{{depth}}}(\w+)")).unwrap();
        refs.extend(to_root.captures_iter(&text).map(|c| c[1].to_string()));
        for other in refs {
            if other != me && modules.contains(&other) {
                let shown = format!("src/{}", rel.display());
                let edges = graph.entry(me.clone()).or_default();
                edges.entry(other).or_default().insert(shown);
            }
        }
    }
    graph
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `src/spec/mod.rs` and `src/spec/raw.rs` are both `spec`.
fn top_module(src: &Path, file: &Path) -> String {
    let first = file.strip_prefix(src).unwrap().components().next().unwrap();
    let name = first.as_os_str().to_string_lossy();
    name.strip_suffix(".rs").unwrap_or(&name).to_string()
}

/// Files that are `#[cfg(test)] mod NAME;` of another file.
fn test_files(files: &[PathBuf]) -> BTreeSet<PathBuf> {
    let decl = Regex::new(r"#\[cfg\(test\)\]\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;").unwrap();
    let mut out = BTreeSet::new();
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy();
        let dir = if ["mod.rs", "lib.rs", "main.rs"].contains(&name.as_ref()) {
            file.parent().unwrap().to_path_buf()
        } else {
            file.with_extension("")
        };
        for m in decl.captures_iter(&std::fs::read_to_string(file).unwrap()) {
            out.insert(dir.join(format!("{}.rs", &m[1])));
            out.insert(dir.join(&m[1]).join("mod.rs"));
        }
    }
    out
}

/// Drops `//` comments (doc comments name modules without importing them).
fn without_comments(text: &str) -> String {
    text.lines()
        .map(|l| l.split_once("//").map_or(l, |(code, _)| code))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Drops inline `#[cfg(test)] mod NAME { ... }` blocks.
fn without_tests(text: &str) -> String {
    let start = Regex::new(r"#\[cfg\(test\)\]\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+\w+\s*\{").unwrap();
    let mut out = String::new();
    let mut rest = text;
    while let Some(m) = start.find(rest) {
        out.push_str(&rest[..m.start()]);
        let mut depth = 1;
        let mut end = rest.len();
        for (i, c) in rest[m.end()..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                _ => {}
            }
            if depth == 0 {
                end = m.end() + i + 1;
                break;
            }
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// The modules caught in cycles, one set per strongly connected component: modules that
/// each reach the others through imports.
fn cycles(graph: &Graph) -> Vec<BTreeSet<String>> {
    let nodes: BTreeSet<&String> = graph
        .iter()
        .flat_map(|(a, bs)| std::iter::once(a).chain(bs.keys()))
        .collect();
    let reaches = |from: &String| -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut stack = vec![from.clone()];
        while let Some(n) = stack.pop() {
            for next in graph.get(&n).into_iter().flat_map(BTreeMap::keys) {
                if seen.insert(next.clone()) {
                    stack.push(next.clone());
                }
            }
        }
        seen
    };
    let reach: BTreeMap<&String, BTreeSet<String>> =
        nodes.iter().map(|n| (*n, reaches(n))).collect();
    let mut out: Vec<BTreeSet<String>> = Vec::new();
    for n in nodes {
        if reach[n].contains(n) && !out.iter().any(|c| c.contains(n)) {
            out.push(
                reach[n]
                    .iter()
                    .filter(|m| reach[m].contains(n))
                    .cloned()
                    .collect(),
            );
        }
    }
    out
}
