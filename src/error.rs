//! The one error type of credlineage: every failure names the record (or file and line) it came from.

/// Everything that can go wrong in credlineage.
///
/// Record-level variants carry the zero-based index of the record in the
/// stream (`Enricher::stats().records` at the time it arrived), so a message
/// always says which record was bad. None of these errors stop a stream: the
/// record is passed through unchanged and counted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The record is not valid JSON (or not UTF-8).
    #[error("record {index}: invalid JSON: {reason}")]
    InvalidJson {
        /// Zero-based record index in the stream.
        index: u64,
        /// What the JSON parser said.
        reason: String,
    },
    /// The record is valid JSON but not an object.
    #[error("record {index}: not a JSON object")]
    NotObject {
        /// Zero-based record index in the stream.
        index: u64,
    },
    /// The record is a JSON object but not a CloudTrail record in any accepted wrapper.
    #[error("record {index}: not a CloudTrail record (no eventName/eventSource)")]
    NotCloudTrail {
        /// Zero-based record index in the stream.
        index: u64,
    },
    /// The configuration is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A state snapshot was refused; the current state is left untouched.
    #[error("snapshot refused: {0}")]
    Snapshot(String),
    /// An input file (or one line of it) could not be read.
    #[error("{source_name}{}: {reason}", line.map(|l| format!(":{l}")).unwrap_or_default())]
    Input {
        /// The file name (or `<stdin>`).
        source_name: String,
        /// One-based line number, when the problem is in one line.
        line: Option<u64>,
        /// What went wrong.
        reason: String,
    },
    /// An input that is one JSON document (an S3 delivery file, an array, a
    /// CloudWatch Logs envelope) is damaged: the records complete before
    /// `line`:`column` were read, nothing after it.
    #[error(
        "{source_name}:{line}:{column}: damaged JSON document: {reason}; the records before it were read, nothing after it"
    )]
    Damaged {
        /// The file name (or `<stdin>`).
        source_name: String,
        /// One-based line of the damage.
        line: u64,
        /// One-based column (in bytes) of the damage.
        column: u64,
        /// What the JSON scanner expected or found.
        reason: String,
    },
    /// One record (an element of an S3 delivery file's `Records`, or of a
    /// JSON array) is damaged at `line`:`column`, but its brackets balance:
    /// it was passed through as its bytes, not annotated, and the records
    /// around it were read.
    #[error(
        "{source_name}:{line}:{column}: record {index} of this file is damaged: {reason}; passed through as its bytes, not annotated; the records around it were read"
    )]
    DamagedRecord {
        /// The file name (or `<stdin>`).
        source_name: String,
        /// One-based line of the damage.
        line: u64,
        /// One-based column (in bytes) of the damage.
        column: u64,
        /// One-based index of the record within its file.
        index: u64,
        /// What the JSON scanner expected or found.
        reason: String,
    },
}

impl Error {
    /// The record index this error is about, if it is about one record.
    pub fn record_index(&self) -> Option<u64> {
        match self {
            Error::InvalidJson { index, .. }
            | Error::NotObject { index }
            | Error::NotCloudTrail { index } => Some(*index),
            _ => None,
        }
    }

    /// The same error about record `new_index` (for a caller that processed
    /// records in another order than it read them, such as batch mode).
    pub fn with_index(self, new_index: u64) -> Error {
        match self {
            Error::InvalidJson { reason, .. } => Error::InvalidJson {
                index: new_index,
                reason,
            },
            Error::NotObject { .. } => Error::NotObject { index: new_index },
            Error::NotCloudTrail { .. } => Error::NotCloudTrail { index: new_index },
            e => e,
        }
    }
}
