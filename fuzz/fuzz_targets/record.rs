//! Fuzz target `record`: one arbitrary input through a long-lived enricher (state carried across inputs), with and without a host time.
#![no_main]

#[path = "../../tests/hostile_support/mod.rs"]
mod hostile_support;
#[path = "../invariants.rs"]
mod invariants;

use credlineage::Enricher;
use libfuzzer_sys::fuzz_target;
use std::cell::RefCell;

thread_local! {
    static E: RefCell<Enricher> =
        RefCell::new(Enricher::new(invariants::small_config()).expect("valid config"));
}

fuzz_target!(|data: &[u8]| {
    E.with(|e| {
        let mut e = e.borrow_mut();
        invariants::one_record(&mut e, data, None);
        invariants::one_record(&mut e, data, Some(1_700_000_000));
    });
});
