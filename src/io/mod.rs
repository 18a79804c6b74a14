//! Record bytes in and out: the one-pass JSON scanner, splicing the annotation into a record, and cutting the input shapes (NDJSON, S3 delivery files, arrays, CloudWatch Logs and Firehose envelopes) into records.

pub mod input;
pub mod json;
pub(crate) mod splice;
