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

// The tree (README, "Layout"): `core` holds the rules and their state and
// does no I/O; `io` reads and writes record bytes; `hosts` binds the core to
// one runtime each; `generate` makes test trails. The modules keep their
// flat public paths (`credlineage::engine`, `credlineage::json`, …).
mod core;
pub mod error;
#[cfg(feature = "generate")]
pub mod generate;
mod hosts;
mod io;

pub(crate) use self::core::aws_ranges_data;
pub use self::core::{
    annotation, aws_ranges, config, engine, fingerprint, keyid, record, reorder, state, time,
};
pub(crate) use self::io::splice;
pub use self::io::{input, json};

// Host bindings: each small, each behind its own feature.
#[cfg(all(feature = "fluent-bit", target_arch = "wasm32"))]
pub use self::hosts::fluent_bit;
#[cfg(feature = "js")]
pub use self::hosts::js;

pub use annotation::Annotation;
pub use aws_ranges::AwsRanges;
pub use config::Config;
pub use engine::{Enricher, Lookahead, Outcome, TrackedSet};
pub use error::Error;
pub use splice::to_single_line;
pub use state::Stats;
