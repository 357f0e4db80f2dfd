//! Every `[[throughput]]` sweep of specs/ as a cargo test, one at a time
//! (see `eyetest::harness::throughput`).

fn main() -> std::process::ExitCode {
    eyetest::harness::throughput::main(env!("CARGO_MANIFEST_DIR"))
}
