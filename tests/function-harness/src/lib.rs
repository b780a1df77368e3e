//! A harness that runs Keel's VIP discount Function (`extensions/vip-discount`) as Shopify does —
//! the built `.wasm` in wasmtime, linked to Shopify's Function API provider — and measures each
//! run against Shopify's resource limits.
//!
//! - [`artifacts`]: builds or locates the Function and provider wasm;
//! - [`runner`]: the wasmtime host (the trampoline's work, fuel, peak memory, input and output);
//! - [`limits`]: Shopify's limits and their scaling above 200 cart lines;
//! - [`report`]: formatting measurements beside limits.
//!
//! Fixtures come from `vip-fixtures`, shared with the Function's native tests. The tests in
//! `tests/` run every fixture; `function-bench` (tests/bench/function.sh) prints the benchmark.

pub mod artifacts;
pub mod limits;
pub mod report;
pub mod runner;

pub use limits::Limits;
pub use runner::{Harness, RunReport};
