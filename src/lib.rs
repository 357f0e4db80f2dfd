//! eyetest: an eye exam for vision-language models.
//!
//! Declarative TOML specs (see `specs/`) become cargo tests: every case x target asks a model
//! over HTTP, checks the answer against a [`rubric`], and snapshot-checks it with insta
//! ([`snapshot`]). The library holds all logic; the `eyetest` binary and the `harness = false`
//! test target are thin shells over [`runner`] and [`harness`].

pub mod atomic;
pub mod backend;
pub mod cli;
pub mod diagnostic;
pub mod env;
pub mod fetch;
pub mod fixture;
pub mod grading;
pub mod halt;
pub mod harness;
pub mod judge;
pub mod record;
pub mod report;
pub mod results;
pub mod rubric;
pub mod runner;
pub mod sim;
pub mod snapshot;
pub mod spec;
pub mod targets;
pub mod throughput;
pub mod verdict;

/// The old name of [`targets`], kept so that code written against it still builds.
#[doc(hidden)]
pub use targets as target;
