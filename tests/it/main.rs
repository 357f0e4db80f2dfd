//! eyetest's integration tests, one binary: each module was a binary of its own, and each
//! linked all of eyetest and its dependencies again, which made a cold `cargo test` spend most
//! of its time linking. The harnesses that are not libtest (`specs`, `throughput`, `interop`)
//! stay separate binaries under tests/.
//!
//! Most modules drive the real `eyetest` binary (`CARGO_BIN_EXE_eyetest`) against a simulated
//! engine or a test server on loopback; support.rs holds what they share.

mod architecture;
mod bad_specs;
mod fault_matrix;
mod fetch_cli;
mod fuzz_spec;
mod fuzz_sse;
mod harness_cli;
mod init_cli;
#[cfg(unix)]
mod interrupt;
mod judge_regrade;
mod judge_replay;
mod judge_sim;
mod judge_support;
mod load_faults;
mod openai_backend;
mod partition_cli;
mod record_replay;
mod regrade_cli;
mod report_cli;
mod rubric_agreement;
mod secrets;
mod sim_engine;
mod sim_pacing;
mod study_rubrics;
mod study_suite;
mod support;
mod targets_cli;
mod telemetry;
mod throughput_core;
mod throughput_gate;
mod throughput_rate;
#[cfg(unix)]
mod throughput_telemetry;
mod tls;
