//! credlineage: stateful streaming enrichment of AWS CloudTrail records.
pub mod generate;
