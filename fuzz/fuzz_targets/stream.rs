//! Fuzz target `stream`: the input as newline-separated records through one enricher, then a snapshot round trip.
#![no_main]

#[path = "../../tests/hostile_support/mod.rs"]
mod hostile_support;
#[path = "../invariants.rs"]
mod invariants;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| invariants::stream(data));
