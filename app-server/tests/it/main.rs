//! Keel's integration tests: one test binary (one link) whose modules each prove one surface,
//! against the real app on port 0, a fresh database per test and its own shopify-sim.

mod support;

mod admin;
mod auth;
mod compliance;
mod embedded;
mod health;
mod process;
mod store_conformance;
mod vip;
mod webhooks;
