//! Fuzz target `document`: arbitrary bytes as a document read the CLI's way (a one-line S3 delivery file's records in place, then `split` from the first damage) against `split` + `process_into` on every piece.
#![no_main]

#[path = "../../tests/hostile_support/mod.rs"]
mod hostile_support;
#[path = "../invariants.rs"]
mod invariants;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    invariants::document(data);
});
