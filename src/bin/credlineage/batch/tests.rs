//! Unit tests of batch mode's flag parsing (`--batch-memory` byte counts).

use super::*;

#[test]
fn byte_counts() {
    assert_eq!(parse_bytes("64K"), Ok(64 << 10));
    assert_eq!(parse_bytes("512M"), Ok(512 << 20));
    assert_eq!(parse_bytes("512MiB"), Ok(512 << 20));
    assert_eq!(parse_bytes("2g"), Ok(2 << 30));
    assert_eq!(parse_bytes("1000"), Ok(1000));
    assert!(parse_bytes("12X").is_err());
    assert!(parse_bytes("M").is_err());
    assert!(parse_bytes("99999999999T").is_err());
}
