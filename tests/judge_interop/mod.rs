//! Interop checks of the model judge and of offline grading against a real server (see
//! tests/interop.rs). The server's model has random weights, so its verdicts are noise: these
//! check the plumbing (a verdict or a clear unparseable error is recorded and replayed, never
//! a silent pass) and that `eyetest regrade` and `eyetest agreement` work on a real run.

use std::path::Path;
use std::process::Output;

use eyetest::results::{read_results, ResultRecord, Status};
use eyetest::rubric::judge::JudgeStatus;
use libtest_mimic::Failed;

fn check(cond: bool, msg: impl FnOnce() -> String) -> Result<(), Failed> {
    if cond {
        Ok(())
    } else {
        Err(msg().into())
    }
}

/// A project with target `hf` (the interop server, through `url_env`), a replay of it, and
/// one case with `rubric`.
fn project(model: &str, url_env: &str, rubric: &str) -> std::io::Result<tempfile::TempDir> {
    let dir = tempfile::tempdir()?;
    let root = dir.path();
    std::fs::create_dir_all(root.join("specs"))?;
    std::fs::create_dir_all(root.join("fixtures"))?;
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/count/people-2.png"),
        root.join("fixtures/people.png"),
    )?;
    std::fs::write(
        root.join("eyetest.toml"),
        format!(
            "[target.hf]\nbackend = \"openai\"\nmodel = {model:?}\nbase_url_env = \"{url_env}\"\ntimeout_s = 120\nretries = 1\n\n[target.hf-replayed]\nbackend = \"replay\"\nreplay_of = \"hf\"\ndefault = false\n"
        ),
    )?;
    write_spec(root, rubric)?;
    Ok(dir)
}

fn write_spec(root: &Path, rubric: &str) -> std::io::Result<()> {
    std::fs::write(
        root.join("specs/count.toml"),
        format!("[[case]]\nname = \"people\"\nimage = \"fixtures/people.png\"\nprompt = \"How many people are there in this image?\"\nlabel = \"Two people.\"\nmax_tokens = 12\ntargets = [\"hf\", \"hf-replayed\"]\nrubric = {rubric}\n"),
    )
}

fn eyetest(root: &Path, args: &[&str]) -> std::io::Result<(Output, String)> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_eyetest"))
        .arg("--root")
        .arg(root)
        .args(args)
        .env_remove("EYETEST_TARGETS")
        .env("INSTA_UPDATE", "always")
        .env_remove("CI")
        .output()?;
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((out, log))
}

fn only_record(root: &Path, file: &str, log: &str) -> Result<ResultRecord, Failed> {
    let records = read_results(&root.join(file))?;
    check(records.len() == 1, || {
        format!("{} records: {log}", records.len())
    })?;
    Ok(records.into_iter().next().unwrap())
}

/// The real server judges its own answer: whatever it says, the record holds a verdict with
/// a reason, or an error quoting its text, and a replay reproduces it offline.
pub fn judge_path(model: &str, url_env: &str) -> Result<(), Failed> {
    let dir = project(
        model,
        url_env,
        "{ judge = { target = \"hf\", max_tokens = 16 } }",
    )?;
    let root = dir.path();
    let (_, log) = eyetest(
        root,
        &["run", "--target", "hf", "--record", "--out", "live.jsonl"],
    )?;
    let r = only_record(root, "live.jsonl", &log)?;
    let judge = r
        .verdict
        .as_ref()
        .and_then(|v| v.judge.clone())
        .ok_or_else(|| format!("no judge verdict recorded: {r:?}\n{log}"))?;
    check(judge.target == "hf" && !judge.replayed, || {
        format!("{judge:?}")
    })?;
    match judge.status {
        JudgeStatus::Pass => check(r.status == Status::Passed, || format!("{r:?}"))?,
        JudgeStatus::Fail => check(r.status == Status::Failed, || format!("{r:?}"))?,
        JudgeStatus::Error => {
            let why = r.reason.clone().unwrap_or_default();
            check(
                r.status == Status::Error
                    && why.contains("judge `hf`")
                    && (why.contains("without a readable verdict") || why.contains("failed")),
                || format!("a judge error must be the case's error, with the judge's text: {r:?}"),
            )?
        }
        JudgeStatus::NotAsked => return Err(format!("the judge was not asked: {r:?}").into()),
    }
    let rec = root.join("golden/judge-recordings/hf/hf/count/people.toml");
    if judge.status != JudgeStatus::Error || !judge.reason.contains("failed:") {
        check(rec.exists(), || {
            format!("no judge recording at {}: {log}", rec.display())
        })?;
        let (_, log) = eyetest(
            root,
            &["run", "--target", "hf-replayed", "--out", "replay.jsonl"],
        )?;
        let again = only_record(root, "replay.jsonl", &log)?;
        let replayed = again.verdict.as_ref().and_then(|v| v.judge.clone());
        check(
            replayed.as_ref().is_some_and(|j| {
                j.replayed && j.status == judge.status && j.reason == judge.reason
            }) && again.status == r.status,
            || {
                format!("the replay must give the recorded verdict: live {judge:?}, replayed {replayed:?}\n{log}")
            },
        )?;
    }
    Ok(())
}

/// `eyetest regrade` and `eyetest agreement` on the results of a real run: no flip with the
/// rubric it ran with, a flip listed (and `--fail-on-flip` failing) after a rubric edit, and
/// agreement with a human grade before and after.
pub fn regrade_and_agreement(model: &str, url_env: &str) -> Result<(), Failed> {
    // Random weights do not say "zebra-xylophone": the rubric fails the answer, as the human does.
    let dir = project(model, url_env, "{ all = [\"zebra-xylophone\"] }")?;
    let root = dir.path();
    let (_, log) = eyetest(root, &["run", "--target", "hf", "--out", "results.jsonl"])?;
    let r = only_record(root, "results.jsonl", &log)?;
    check(r.status == Status::Failed && r.answer.is_some(), || {
        format!("{r:?}\n{log}")
    })?;
    std::fs::create_dir_all(root.join("grades"))?;
    std::fs::write(
        root.join("grades/human.toml"),
        "[[grade]]\ncase = \"count::people\"\ntarget = \"hf\"\ncorrect = false\nnote = \"random weights say nothing about people\"\n",
    )?;

    let (out, log) = eyetest(
        root,
        &["regrade", "--results", "results.jsonl", "--fail-on-flip"],
    )?;
    check(out.status.success() && !log.contains("FLIP"), || {
        format!("no flip expected: {log}")
    })?;
    let (out, log) = eyetest(
        root,
        &["agreement", "--results", "results.jsonl", "--min", "100"],
    )?;
    check(
        out.status.success() && log.contains("agreement: 100.0% (1 of 1 answers)"),
        || log.clone(),
    )?;

    // A rubric that accepts anything flips the stored verdict and disagrees with the human.
    write_spec(root, "{ regex = '(?s).*' }")?;
    let (out, log) = eyetest(
        root,
        &["regrade", "--results", "results.jsonl", "--fail-on-flip"],
    )?;
    check(
        !out.status.success() && log.contains("FLIP count::people@hf: failed then, passes now"),
        || format!("a flip expected: {log}"),
    )?;
    let (out, log) = eyetest(
        root,
        &["agreement", "--results", "results.jsonl", "--min", "98"],
    )?;
    check(
        !out.status.success()
            && log.contains("agreement: 0.0% (0 of 1 answers)")
            && log.contains("random weights say nothing about people"),
        || log.clone(),
    )
}
