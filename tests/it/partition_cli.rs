//! `eyetest run --partition`: shards of one suite, run as a CI matrix would run them, ask
//! every test exactly once between them, and their results files report as one run.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Output;

use crate::support::{self, people_png, write, write_people};
use eyetest::results::{read_results, Status};

/// Five cases on one simulated target.
fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write_people(root, people_png(16, 40, "There are two people.", "Three."));
    write(
        root,
        "eyetest.toml",
        "[target.sim]\nbackend = \"sim\"\nmodel = \"eyetest-sim\"\n",
    );
    let mut spec = String::new();
    for i in 1..=5 {
        spec.push_str(&format!(
            "[[case]]\nname = \"people-{i}\"\nimage = \"fixtures/people.png\"\n\
             prompt = \"How many people are there? ({i})\"\nrubric = {{ number = 2 }}\n\n"
        ));
    }
    write(root, "specs/people.toml", &spec);
    dir
}

/// New snapshots are accepted as they come, so the verdict is the rubric's.
fn eyetest(root: &Path, args: &[&str]) -> Output {
    support::eyetest(root, args, "always").output().unwrap()
}

fn tests_in(path: &Path) -> Vec<String> {
    read_results(path)
        .unwrap()
        .into_iter()
        .inspect(|r| assert_eq!(r.status, Status::Passed, "{r:?}"))
        .map(|r| r.test)
        .collect()
}

#[test]
fn shards_cover_every_test_once_and_report_as_one_run() {
    for how in ["count", "hash"] {
        let dir = project();
        let root = dir.path();
        let mut seen = Vec::new();
        let mut files = Vec::new();
        for k in 1..=2 {
            let file = format!("shard-{k}.jsonl");
            let o = eyetest(
                root,
                &[
                    "run",
                    "--partition",
                    &format!("{how}:{k}/2"),
                    "--out",
                    &file,
                ],
            );
            let stdout = String::from_utf8_lossy(&o.stdout);
            let stderr = String::from_utf8_lossy(&o.stderr);
            // A hash shard may come out empty; that fails rather than passing unasked.
            if !o.status.success() {
                assert!(
                    stderr.contains("holds none of the 5 test(s)"),
                    "{how} {k}/2: {stdout}\n{stderr}"
                );
                continue;
            }
            assert!(
                stdout.contains(&format!("partition {how}:{k}/2: ")),
                "{stdout}"
            );
            seen.extend(tests_in(&root.join(&file)));
            files.push(file);
        }
        let unique: BTreeSet<&String> = seen.iter().collect();
        assert_eq!(seen.len(), 5, "{how}: {seen:?}");
        assert_eq!(unique.len(), 5, "{how}: a test ran twice: {seen:?}");

        let mut args = vec!["report", "-f", "text"];
        args.extend(files.iter().map(String::as_str));
        let o = eyetest(root, &args);
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(o.status.success(), "{text}");
        for i in 1..=5 {
            assert!(text.contains(&format!("people-{i}")), "{how}: {text}");
        }
    }
}

#[test]
fn count_shards_are_balanced_and_a_bad_partition_is_refused() {
    let dir = project();
    let root = dir.path();
    let o = eyetest(
        root,
        &["run", "--partition", "count:2/2", "--out", "b.jsonl"],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(tests_in(&root.join("b.jsonl")).len(), 2);

    let o = eyetest(root, &["run", "--partition", "3/2"]);
    assert!(!o.status.success());
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("invalid partition `3/2`: K must be between 1 and N"),
        "{stderr}"
    );

    // More shards than tests: the empty shard fails instead of passing without a model.
    let o = eyetest(root, &["run", "--partition", "count:6/6"]);
    assert!(!o.status.success());
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("partition count:6/6 holds none of the 5 test(s)"),
        "{stderr}"
    );
}
