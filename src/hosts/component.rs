//! The WIT component `credlineage:enricher` (`wit/credlineage.wit`): the resource `enricher` over [`crate::Enricher`]; it only moves bytes.
//!
//! Build with `cargo build --release --lib --target wasm32-wasip2
//! --no-default-features --features component` (or
//! `scripts/build-component.sh`). No `unsafe` is written here; the
//! `#[unsafe(no_mangle)]` export shims and the canonical-ABI lifting and
//! lowering come from `wit_bindgen::generate!` and `export!`, and stay inside
//! this private module.
//!
//! Nothing here can panic on input: the state sits in a `RefCell`, but the
//! component model never re-enters an instance while one of its calls runs,
//! and every borrow is a `try_borrow*` with a non-panicking fallback anyway.

use crate::{Config, Enricher, Stats};
use std::cell::RefCell;

wit_bindgen::generate!({
    path: "wit",
    world: "credlineage",
});

use exports::credlineage::enricher::enrich::{self as wit, Guest, GuestEnricher};

struct Component;

impl Guest for Component {
    type Enricher = Resource;
}

/// The resource's state: an enricher, or why its configuration was refused
/// (then records pass through unchanged; see `config-error` in the WIT).
struct Resource(RefCell<Result<Enricher, String>>);

fn build(config: &str) -> Result<Enricher, String> {
    let cfg = if config.trim().is_empty() {
        Config::default()
    } else {
        Config::from_json(config.as_bytes()).map_err(|e| e.to_string())?
    };
    Enricher::new(cfg).map_err(|e| e.to_string())
}

impl Resource {
    fn run(&self, record: &[u8], host_time: Option<i64>) -> Vec<u8> {
        match self.0.try_borrow_mut().as_deref_mut() {
            Ok(Ok(e)) => e.process(record, host_time),
            _ => record.to_vec(),
        }
    }

    fn stats_native(&self) -> Stats {
        match self.0.try_borrow().as_deref() {
            Ok(Ok(e)) => e.stats(),
            _ => Stats::default(),
        }
    }
}

impl GuestEnricher for Resource {
    fn new(config: String) -> Self {
        Resource(RefCell::new(build(&config)))
    }

    fn create(config: String) -> Result<wit::Enricher, String> {
        let e = build(&config)?;
        Ok(wit::Enricher::new(Resource(RefCell::new(Ok(e)))))
    }

    fn config_error(&self) -> Option<String> {
        match self.0.try_borrow().as_deref() {
            Ok(Ok(_)) => None,
            Ok(Err(msg)) => Some(msg.clone()),
            Err(_) => Some("enricher is busy".into()),
        }
    }

    fn process(&self, record: Vec<u8>) -> Vec<u8> {
        self.run(&record, None)
    }

    fn process_at(&self, record: Vec<u8>, host_time_secs: i64) -> Vec<u8> {
        self.run(&record, Some(host_time_secs))
    }

    fn snapshot(&self) -> Vec<u8> {
        match self.0.try_borrow().as_deref() {
            Ok(Ok(e)) => e.snapshot(),
            _ => Vec::new(),
        }
    }

    fn restore(&self, bytes: Vec<u8>) -> Result<(), String> {
        match self.0.try_borrow_mut().as_deref_mut() {
            Ok(Ok(e)) => e.restore(&bytes).map_err(|e| e.to_string()),
            Ok(Err(msg)) => Err(format!("enricher has no state: {msg}")),
            Err(_) => Err("enricher is busy".into()),
        }
    }

    fn stats(&self) -> wit::Stats {
        // Destructured in full so a new counter fails to compile until the
        // WIT record has it too.
        let Stats {
            records,
            annotated,
            passed_through,
            malformed,
            collisions,
            offhost,
            issuances,
            chained_issuances,
            evictions,
            expired_purged,
            tracked_sets,
            state_bytes,
            bad_time,
        } = self.stats_native();
        wit::Stats {
            records,
            annotated,
            passed_through,
            malformed,
            collisions,
            offhost,
            issuances,
            chained_issuances,
            evictions,
            expired_purged,
            tracked_sets,
            state_bytes,
            bad_time,
        }
    }

    fn stats_json(&self) -> String {
        serde_json::to_string(&self.stats_native()).unwrap_or_default()
    }
}

export!(Component);
