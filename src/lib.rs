//! An eye exam for vision-language models: declarative TOML specs become cargo tests.
//!
//! Each case of a spec names an image, a prompt and a rubric; each target of `eyetest.toml`
//! names a model behind an OpenAI-compatible endpoint (vLLM, SGLang, TGI, llama.cpp, Ollama,
//! OpenAI), or the built-in simulated engine. Every case x target becomes one test: the model
//! is asked over HTTP, its answer is checked against the rubric and against its insta
//! snapshot under `golden/`, reviewed with `cargo insta review`. Throughput specs sweep a
//! target's load and gate on a stored, hardware-keyed baseline and on absolute SLOs.
//!
//! # Using it from a project
//!
//! `eyetest init` writes a project whose only test file is the harness:
//!
//! ```toml
//! [[test]]
//! name = "eyetest"
//! path = "tests/eyetest.rs"
//! harness = false
//!
//! [dev-dependencies]
//! eyetest = { version = "0.1", default-features = false, features = ["sim"] }
//! ```
//!
//! ```no_run
//! // tests/eyetest.rs
//! fn main() -> std::process::ExitCode {
//!     eyetest::harness::main(env!("CARGO_MANIFEST_DIR"))
//! }
//! ```
//!
//! `cargo test` then runs every case on every target configured here; a target asked for
//! (`EYETEST_TARGETS=name`) that cannot run fails, never skips. Throughput specs run from a
//! second test target through [`harness::throughput::main`] the same way.
//!
//! # What is public
//!
//! The two harnesses ([`harness`], [`harness::throughput`]) are the API: they take the
//! project's folder and read everything else from its files and the environment (see the
//! `EYETEST_*` variables in docs/reference.md). The other modules are public only so that the
//! `eyetest` command line and eyetest's own tests can reach them; they are hidden from the
//! documentation and may change in any release.
//!
//! # Features
//!
//! - `cli` (default): the `eyetest` command line (clap, progress bars, JUnit output).
//! - `sim` (in `cli`): the built-in simulated engine, an HTTP server on loopback behind
//!   `backend = "sim"` targets. Without it a `sim` target asked for fails with what to enable.
//!
//! # How a case becomes a verdict
//!
//! spec (TOML, with file and line for every problem) -> targets (which targets run, and how
//! each is reached) -> runner (asks the model, with retries) -> rubric and snapshot -> verdict
//! (both must pass) -> results (`target/eyetest/runs/<run-id>.jsonl`) -> report.
//! A throughput spec goes spec -> targets -> load generator -> metrics -> gate -> exporters.

#![warn(missing_docs)]

#[doc(hidden)]
pub mod atomic;
#[doc(hidden)]
pub mod backend;
#[doc(hidden)]
#[cfg(feature = "cli")]
pub mod cli;
#[doc(hidden)]
pub mod diagnostic;
#[doc(hidden)]
pub mod digest;
#[doc(hidden)]
pub mod env;
#[doc(hidden)]
pub mod fetch;
mod files;
#[doc(hidden)]
pub mod fixture;
#[doc(hidden)]
pub mod grading;
#[doc(hidden)]
pub mod halt;
pub mod harness;
mod project;
#[doc(hidden)]
pub mod record;
#[doc(hidden)]
pub mod report;
#[doc(hidden)]
pub mod results;
#[doc(hidden)]
pub mod rubric;
#[doc(hidden)]
pub mod runner;
#[doc(hidden)]
pub mod runtime;
#[doc(hidden)]
pub mod sim;
#[doc(hidden)]
pub mod snapshot;
#[doc(hidden)]
pub mod spec;
#[doc(hidden)]
pub mod targets;
#[doc(hidden)]
pub mod throughput;
#[doc(hidden)]
pub mod verdict;
#[doc(hidden)]
pub mod warning;

/// The old name of [`targets`], kept so that code written against it still builds.
#[doc(hidden)]
pub use targets as target;
