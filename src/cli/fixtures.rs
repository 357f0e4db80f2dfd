//! `eyetest fixtures`: regenerate or check the generated fixture images.

use std::path::Path;
use std::process::ExitCode;

pub fn run(root: &Path, check: bool) -> ExitCode {
    let dir = root.join("fixtures");
    if check {
        match crate::fixture::check_all(&dir) {
            Ok(m) if m.is_empty() => {
                println!(
                    "ok: every generated fixture under {} matches its catalogue",
                    dir.display()
                );
                ExitCode::SUCCESS
            }
            Ok(m) => {
                for x in &m {
                    eprintln!("mismatch: {x}");
                }
                eprintln!(
                    "{} fixture(s) differ; regenerate with `eyetest fixtures`",
                    m.len()
                );
                ExitCode::FAILURE
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        }
    } else {
        match crate::fixture::generate_all(&dir) {
            Ok(paths) => {
                println!("wrote {} fixture(s) under {}", paths.len(), dir.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        }
    }
}
