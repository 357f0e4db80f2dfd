//! The one tokio runtime of a process, shared by cases, throughput and the command line.
//! RUST-NOTES: several runtimes sharing one reqwest client fail with "dispatch task is
//! gone", so every trial `block_on`s this one. Its own module so that throughput and the
//! case runner both use it without one importing the other.

use std::sync::OnceLock;

/// The process-wide multi-threaded runtime, started on first use.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("eyetest-rt")
            .build()
            .expect("tokio runtime starts")
    })
}
