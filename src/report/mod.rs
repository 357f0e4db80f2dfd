//! Renderings of results for people and CI systems, one module per output format.

pub mod table;
