//! credlineage: stateful streaming enrichment of AWS CloudTrail records.
//!
//! Every CloudTrail record passes through an [`Enricher`] once, in arrival
//! order, and comes back as the same bytes with one added key holding an
//! [`Annotation`]: which credential set made the call (`session_fingerprint`),
//! where its chain of temporary credentials started (`lineage_root`), whether
//! its key ID is shared by live credential sets right now
//! (`is_key_collision`), and whether EC2 instance credentials are used away
//! from their instance (`ec2_cred_offhost`). The behaviour contract is
//! `docs/SPEC.md`.
//!
//! The core does no I/O: bytes in, bytes out, the clock taken from the
//! records (or passed in by the host), memory bounded by [`Config`]. The
//! command-line tool (feature `cli`) and the pipeline bindings only move bytes.
//!
//! ```
//! use credlineage::{Config, Enricher};
//!
//! let mut e = Enricher::new(Config::default()).unwrap();
//! let issue = br#"{"eventName":"GetFederationToken","eventSource":"sts.amazonaws.com","eventTime":"2024-11-30T08:43:17Z",
//!   "userIdentity":{"type":"IAMUser","accountId":"742491224508","arn":"arn:aws:iam::742491224508:user/u","accessKeyId":"AKIA6V1GNZTT65XQH36M"},
//!   "requestParameters":{"name":"fed"},
//!   "responseElements":{"credentials":{"accessKeyId":"ASIASTJKC5GCM7ZE6LUP","expiration":"Nov 30, 2024, 8:43:17 PM"},
//!                       "federatedUser":{"arn":"arn:aws:sts::742491224508:federated-user/fed"}}}"#;
//! let call = br#"{"eventName":"GetCallerIdentity","eventSource":"sts.amazonaws.com","eventTime":"2024-11-30T08:43:18Z",
//!   "userIdentity":{"type":"FederatedUser","accountId":"742491224508","arn":"arn:aws:sts::742491224508:federated-user/fed",
//!   "accessKeyId":"ASIASTJKC5GCM7ZE6LUP","sessionContext":{"attributes":{"creationDate":"2024-11-30T08:43:17Z"}}}}"#;
//! e.process(issue, None);
//! let out: serde_json::Value = serde_json::from_slice(&e.process(call, None)).unwrap();
//! assert_eq!(out["credlineage"]["lineage_root"], "AKIA6V1GNZTT65XQH36M");
//! assert_eq!(out["credlineage"]["lineage_depth"], 1);
//! ```

pub mod annotation;
pub mod aws_ranges;
mod aws_ranges_data;
pub mod config;
pub mod engine;
pub mod error;
pub mod fingerprint;
#[cfg(feature = "generate")]
pub mod generate;
pub mod input;
pub mod json;
pub mod keyid;
pub mod record;
pub mod reorder;
mod splice;
pub mod state;
pub mod time;

// Host bindings: each small, each behind its own feature.
#[cfg(feature = "component")]
mod component;
#[cfg(all(feature = "fluent-bit", target_arch = "wasm32"))]
pub mod fluent_bit;
#[cfg(feature = "js")]
pub mod js;

pub use annotation::Annotation;
pub use aws_ranges::AwsRanges;
pub use config::Config;
pub use engine::{Enricher, Lookahead, Outcome, TrackedSet};
pub use error::Error;
pub use splice::to_single_line;
pub use state::Stats;
