//! The `eyetest` binary: everything lives in the library (`eyetest::cli`).

fn main() -> std::process::ExitCode {
    eyetest::cli::main()
}
