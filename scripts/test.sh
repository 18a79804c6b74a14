#!/usr/bin/env bash
# Every check the project has: format, lint, 32-bit and no-default-features builds, and all tests.
set -euo pipefail
cd "$(dirname "$0")/.."
step() { printf '\n==> %s\n' "$*"; }

step "toolchain pieces a fresh machine lacks"
command -v cargo >/dev/null || { echo "cargo not found: install Rust with rustup first" >&2; exit 1; }
rustup component add rustfmt clippy
rustup target add wasm32-unknown-unknown wasm32-wasip1 wasm32-wasip2

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings

step "cargo check --no-default-features (the pure core alone)"
cargo check --lib --no-default-features

step "cargo check --target wasm32-unknown-unknown (32-bit: usize and pointer-width bugs show here first)"
cargo check --lib --no-default-features --target wasm32-unknown-unknown

step "cargo clippy on the Fluent Bit module (wasm32-wasip1)"
cargo clippy --lib --target wasm32-wasip1 --no-default-features --features fluent-bit -- -D warnings

step "cargo test (unit, SPEC rules, golden CLI, hostile input, properties, serve, WASM hosts)"
cargo test --release --all-targets
cargo test --release --doc

step "SIEM side: Sigma rules through pySigma, Elastic and Splunk files (pipelines/)"
./scripts/test-siem.sh
