#!/usr/bin/env bash
# Everything about Keel's VIP discount Function, on a fresh machine (crates.io and Rust's own
# toolchain downloads only; nothing prebuilt from Shopify):
#   1. the wasm, built exactly as `shopify app build` builds it (release, wasm32-unknown-unknown);
#   2. the Function crate's checks and native tests (every fixture through
#      `run_function_with_input`, the schema-subset check against Shopify's schema, query limits);
#   3. the shared config and fixtures crates, and the wasm harness (every fixture through wasmtime
#      and Shopify's provider, against Shopify's resource limits).
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s\n' "$*"; }

# The provider Shopify's function-runner bundles was built with Rust 1.89.0; the harness builds
# the crates.io provider with the same toolchain so that it counts instructions as the runner does.
PROVIDER_TOOLCHAIN=1.89.0

log "toolchains"
rustup target add wasm32-unknown-unknown
rustup component add rustfmt clippy >/dev/null 2>&1 || rustup component add rustfmt clippy
rustup toolchain install "$PROVIDER_TOOLCHAIN" --profile minimal --target wasm32-unknown-unknown

log "vip-discount: release wasm"
(cd extensions/vip-discount && cargo build --release --target wasm32-unknown-unknown --locked --target-dir target)
ls -l extensions/vip-discount/target/wasm32-unknown-unknown/release/vip-discount.wasm

log "vip-discount: fmt, clippy, native tests"
(
  cd extensions/vip-discount
  cargo fmt --check
  cargo clippy --all-targets --locked -- -D warnings
  cargo clippy --release --target wasm32-unknown-unknown --locked -- -D warnings
  cargo test --locked
)

log "vip-config, vip-fixtures, function-harness"
cargo test --locked -p vip-config -p vip-fixtures -p function-harness
