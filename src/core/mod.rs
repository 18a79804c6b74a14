//! The pure core: the rules (the engine), the state they keep, the record view they read, the annotation they write, fingerprints, key IDs, time, configuration, the AWS address space and the reorder window — bytes in, bytes out, no I/O, the clock and limits passed in.

pub mod annotation;
pub mod aws_ranges;
pub(crate) mod aws_ranges_data;
pub mod config;
pub mod engine;
pub mod fingerprint;
pub mod keyid;
pub mod record;
pub mod reorder;
pub mod state;
pub mod time;
