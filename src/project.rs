//! What both test harnesses (cases and throughput) do before they make trials: load the
//! project, check the environment and read the target selection, printing what is wrong.
//! A harness is the test binary's `main`, so printing here is its job; in its own module so
//! that the throughput harness does not import the case harness.

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use crate::spec::Suite;
use crate::targets::Selection;
use crate::warning::Warnings;

/// The project and the selected targets, or the exit code after printing why not.
pub(crate) fn load_project(root: &Path) -> Result<(Arc<Suite>, Selection), ExitCode> {
    let suite = match Suite::load(root) {
        Ok(s) => Arc::new(s),
        Err(errors) => {
            eprintln!("{}", errors.render(std::io::stderr().is_terminal()));
            return Err(ExitCode::FAILURE);
        }
    };
    let bad = crate::env::check();
    for e in &bad {
        eprintln!("error: {e}");
    }
    if !bad.is_empty() {
        return Err(ExitCode::FAILURE);
    }
    match Selection::from_env(&suite.config) {
        Ok(selection) => Ok((suite, selection)),
        Err(e) => {
            eprintln!("error: {e}");
            Err(ExitCode::FAILURE)
        }
    }
}

/// The library's warnings, to the test binary's stderr.
pub(crate) fn stderr_warnings() -> Warnings {
    Warnings::new(|w| eprintln!("{w}"))
}
