//! Unit tests of the annotation's JSON encoding.

use super::*;

#[test]
fn escapes() {
    let mut o = Vec::new();
    push_json_str(&mut o, "a\"b\\c\nd\u{1}é");
    let s = String::from_utf8(o).unwrap();
    assert_eq!(s, r#""a\"b\\c\nd\u0001é""#);
    let back: String = serde_json::from_str(&s).unwrap();
    assert_eq!(back, "a\"b\\c\nd\u{1}é");
}
