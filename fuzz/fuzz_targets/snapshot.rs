//! Fuzz target `snapshot`: arbitrary bytes restored as a state snapshot into an enricher that holds state.
#![no_main]

#[path = "../../tests/hostile_support/mod.rs"]
mod hostile_support;
#[path = "../invariants.rs"]
mod invariants;

use libfuzzer_sys::fuzz_target;

const SEED: &[u8] = include_bytes!("../../tests/fixtures/scenarios.jsonl");

fuzz_target!(|data: &[u8]| invariants::snapshot(data, SEED));
