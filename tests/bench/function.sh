#!/usr/bin/env bash
# The VIP discount Function's benchmark: instructions, peak memory and output size of a
# lines-target run for 3, 200 and 500 cart lines, VIP and non-VIP, each beside Shopify's limit and
# beside Shopify's Rust discount template (its logic measured in this same run, and Shopify's own
# function-runner numbers), plus the binary size. Instruction counts are deterministic: the
# numbers are a property of the build, not of the machine. `--profile` adds where they go.
# The table is also written to tests/bench/out/function.txt.
set -euo pipefail
cd "$(dirname "$0")/../.."

# Quiet when already installed; on failure, run again to show why.
rustup target add wasm32-unknown-unknown >/dev/null 2>&1 || rustup target add wasm32-unknown-unknown
rustup toolchain install 1.89.0 --profile minimal --target wasm32-unknown-unknown >/dev/null 2>&1 \
  || rustup toolchain install 1.89.0 --profile minimal --target wasm32-unknown-unknown
mkdir -p tests/bench/out
cargo run --quiet -p function-harness --bin function-bench -- "$@" | tee tests/bench/out/function.txt
