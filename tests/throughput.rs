//! Every `[[throughput]]` sweep of specs/ as a cargo test, one at a time
//! (see `eyetest::throughput::harness`).

fn main() -> std::process::ExitCode {
    eyetest::throughput::harness::main(env!("CARGO_MANIFEST_DIR"))
}
