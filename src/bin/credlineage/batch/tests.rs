//! Unit tests of batch mode's flag parsing (`--batch-memory` byte counts) and of its run files written and read past the page cache (`O_DIRECT`) or buffered.

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

/// Records of every size (empty, across read buffers, larger than the
/// buffer) written to a run and read back with read buffers from the
/// smallest batch mode uses up: the same records, in order, then the end.
#[test]
fn runs_read_back_exactly() {
    // Written and read with O_DIRECT (where the system allows) and without,
    // in all four combinations.
    for (wd, rd) in [(true, true), (true, false), (false, true), (false, false)] {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("run");
        let mut recs: Vec<(Meta, Vec<u8>)> = Vec::new();
        let mut w = RunFile::create_with(&p, wd).unwrap();
        for i in 0..3000u64 {
            let len = match i % 7 {
                0 => 0,
                1 => 4096 - HEADER,
                2 => (i as usize * 37) % 20_000,
                3 if i % 50 == 3 => 70_000 + i as usize,
                _ => (i as usize * 13) % 600,
            };
            let bytes: Vec<u8> = (0..len).map(|k| (k as u64 * 7 + i) as u8).collect();
            let meta = Meta {
                time: i as i64 - 5,
                rank: (i % 3) as u8,
                file: (i % 5) as u32,
                seq: i,
                line: i * 2,
            };
            write_rec(&mut w, &meta, &bytes).unwrap();
            recs.push((meta, bytes));
        }
        w.finish().unwrap();
        // Read buffers smaller than, about as large as, and larger than
        // the records (a full buffer, then a record that does not fit).
        for cap in [4 << 10, 8 << 10 | 37, 20_011, 64 << 10] {
            let mut r = RunReader::open_with(&p, cap, rd).unwrap();
            for (i, (meta, bytes)) in recs.iter().enumerate() {
                assert!(r.advance().unwrap(), "({wd}, {rd}, {cap}): run ends at {i}");
                assert_eq!(r.meta.key(), meta.key());
                assert_eq!((r.meta.file, r.meta.line), (meta.file, meta.line));
                assert!(
                    r.bytes() == &bytes[..],
                    "({wd}, {rd}, {cap}): record {i} differs"
                );
            }
            assert!(!r.advance().unwrap());
        }
    }
}
