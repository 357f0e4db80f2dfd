//! What the integration tests share: writing a project's files, and the image of two people
//! that most of them ask the simulated engine about.

use std::path::Path;
use std::process::{Command, Output};

use eyetest::fixture::{encode_png, Truth};

/// Writes `text` to `root/rel`, creating the folders on the way.
pub fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

/// A `side` x `side` PNG of one grey `shade` that the simulated engine answers as a picture
/// of two people: tersely "Two people.", or with the given verbose or wrong answer.
pub fn people_png(side: u32, shade: u8, verbose: &str, wrong: &str) -> Vec<u8> {
    let truth = Truth {
        kind: "count".into(),
        terse: "Two people.".into(),
        verbose: verbose.into(),
        wrong: wrong.into(),
    };
    let pixels = vec![shade; (side * side * 3) as usize];
    encode_png(side, side, &pixels, Some(&truth)).unwrap()
}

/// Writes [`people_png`] as `fixtures/people.png` of the project at `root`.
pub fn write_people(root: &Path, png: Vec<u8>) {
    std::fs::create_dir_all(root.join("fixtures")).unwrap();
    std::fs::write(root.join("fixtures/people.png"), png).unwrap();
}

/// The `eyetest` binary on the project at `root`, without the parts of this process's
/// environment that would change what a test sees (`CI`, `EYETEST_TARGETS`), and with insta's
/// `INSTA_UPDATE` as the test needs it: `always` to accept first answers as they come (so
/// that a verdict is the rubric's), `no` to see new snapshots as failures.
pub fn eyetest(root: &Path, args: &[&str], insta_update: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_eyetest"));
    cmd.arg("--root")
        .arg(root)
        .args(args)
        .env_remove("CI")
        .env_remove("EYETEST_TARGETS")
        .env("INSTA_UPDATE", insta_update);
    cmd
}

/// A command's stdout and stderr together.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A `sim` target as a throughput sweep takes it (the engine itself is started by the test).
pub fn sim_target() -> eyetest::targets::Target {
    let config = toml::from_str("backend = \"sim\"\nmodel = \"eyetest-sim\"").unwrap();
    eyetest::targets::Target::from_config("sim", &config).unwrap()
}
