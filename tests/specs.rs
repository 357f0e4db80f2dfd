//! Every case x target of specs/ as a cargo test (see `eyetest::harness`).

fn main() -> std::process::ExitCode {
    eyetest::harness::main(env!("CARGO_MANIFEST_DIR"))
}
