//! credlineage: stateful streaming enrichment of AWS CloudTrail records.

pub mod annotation;
pub mod config;
pub mod engine;
pub mod error;
pub mod fingerprint;
pub mod input;
pub mod keyid;
pub mod record;
mod splice;
pub mod state;
pub mod time;

pub use config::Config;
pub use error::Error;

pub use annotation::Annotation;
pub use engine::{Enricher, Lookahead, Outcome};
pub use splice::to_single_line;
pub use state::Stats;
