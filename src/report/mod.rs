//! Renderings of results for people and CI systems, one module per output format.

pub mod compare;
#[cfg(feature = "cli")]
pub mod junit;
pub mod markdown;
pub mod runs;
pub mod table;
