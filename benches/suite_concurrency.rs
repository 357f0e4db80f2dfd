//! How much concurrency buys a qualitative suite: 28 cases against a simulated target that
//! takes 1 s per answer, run one at a time (as the study did) and with concurrency 28, side
//! by side in one process. Run with `cargo bench --bench suite_concurrency`.

use std::sync::Arc;
use std::time::Instant;

use eyetest::fixture::{encode_png, Truth};
use eyetest::runner::{run_all, Selection, Session};
use eyetest::runtime::runtime;
use eyetest::spec::Suite;
use eyetest::warning::Warnings;

const CASES: usize = 28;

fn project(concurrency: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    std::fs::create_dir_all(root.join("specs")).unwrap();
    std::fs::create_dir_all(root.join("fixtures")).unwrap();
    let truth = Truth {
        kind: "count".into(),
        terse: "2".into(),
        verbose: "There are two circles.".into(),
        wrong: "3".into(),
    };
    let png = encode_png(64, 64, &[255; 64 * 64 * 3], Some(&truth)).unwrap();
    std::fs::write(root.join("fixtures/two.png"), png).unwrap();
    std::fs::write(
        root.join("eyetest.toml"),
        format!(
            "[target.slow-sim]\nbackend = \"sim\"\nmodel = \"eyetest-sim\"\nconcurrency = {concurrency}\nlatency = {{ ttft_ms = 1000 }}\n"
        ),
    )
    .unwrap();
    let mut spec = String::from("[defaults]\ntargets = [\"slow-sim\"]\n");
    for i in 0..CASES {
        spec.push_str(&format!(
            "\n[[case]]\nname = \"case-{i}\"\nimage = \"fixtures/two.png\"\nprompt = \"How many?\"\nrubric = {{ number = 2 }}\n"
        ));
    }
    std::fs::write(root.join("specs/suite.toml"), spec).unwrap();
    dir
}

fn wall_time(concurrency: usize) -> f64 {
    let dir = project(concurrency);
    let suite = Arc::new(Suite::load(dir.path()).expect("bench project loads"));
    let target = suite.target("slow-sim").unwrap().clone();
    let pairs: Vec<_> = suite
        .cases
        .iter()
        .map(|c| (c.clone(), target.clone()))
        .collect();
    let session = Session::new(suite.clone(), Warnings::none());
    let start = Instant::now();
    let mut passed = 0;
    runtime().block_on(run_all(session, pairs, Selection::all(), |_, _, o, _| {
        passed += o.passed() as usize;
    }));
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(passed, CASES, "every case should pass");
    secs
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` lists benches; nothing to list here
    }
    let sequential = wall_time(1);
    let concurrent = wall_time(CASES);
    println!("suite_concurrency: {CASES} cases, simulated target with 1 s per answer");
    println!("  concurrency 1:  {sequential:.2} s");
    println!("  concurrency {CASES}: {concurrent:.2} s");
    println!("  speed-up:       {:.1}x", sequential / concurrent);
}
