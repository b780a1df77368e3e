#!/usr/bin/env bash
# Every test of Keel on a fresh machine: installs what is missing, starts a throwaway
# PostgreSQL cluster, then runs formatting, lints and the whole test suite on SQLite and
# PostgreSQL. Nothing is skipped for lack of a tool or server: a missing one is installed.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s\n' "$*"; }

# Keep a copy of everything for the closing tally of every test binary's results.
transcript=$(mktemp /tmp/keel-test-log.XXXXXX)
exec > >(tee "$transcript") 2>&1

# --- what the suite needs from the system --------------------------------------------------
missing=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v runuser >/dev/null 2>&1 || missing+=(util-linux)
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  if [ "$(id -u)" != 0 ]; then echo "test.sh: need root to install ${missing[*]}" >&2; exit 1; fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if command -v rustup >/dev/null 2>&1; then
  # rust-toolchain.toml pins the toolchain; make sure its target and components are present.
  rustup target add wasm32-unknown-unknown >/dev/null 2>&1 || rustup target add wasm32-unknown-unknown
  rustup component add rustfmt clippy >/dev/null 2>&1 || rustup component add rustfmt clippy
fi

# --- a throwaway PostgreSQL cluster for the PostgreSQL half of the suite -------------------
pgdir=$(mktemp -d /tmp/keel-test-pg.XXXXXX)
pgport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cleanup() { scripts/pg-throwaway.sh stop "$pgdir" || true; rm -rf "$pgdir" "$transcript"; }
trap cleanup EXIT
log "starting PostgreSQL on port $pgport"
KEEL_TEST_POSTGRES_URL=$(scripts/pg-throwaway.sh start "$pgdir" "$pgport")
export KEEL_TEST_POSTGRES_URL

# --- checks ----------------------------------------------------------------------------------
log "cargo fmt --check"
cargo fmt --all -- --check
log "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
log "cargo test (SQLite and PostgreSQL)"
# The Function harness runs in test-function.sh, after the wasm it measures is built.
cargo test --workspace --locked --exclude function-harness
log "VIP discount Function: wasm, native tests, harness"
scripts/test-function.sh

# One closing line over every `cargo test` result above (the last binary alone may have run none).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed;?$/) p += $(i-1); if ($i ~ /^failed;?$/) f += $(i-1) } }
     END { printf "\ntests: %d passed, %d failed\n", p, f }' "$transcript"
