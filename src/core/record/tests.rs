//! Unit tests of the lenient view: wrong types read as absent, duplicate keys, non-objects, key matching, the top-level key filter, and capped arrays.

use super::*;

fn outer(b: &[u8]) -> Outer<'_> {
    parse_outer(
        b,
        &TopKeys::new(
            &["message".to_string()],
            OwnKeys::Nested("credlineage".into()),
        ),
    )
    .unwrap()
    .unwrap()
}

#[test]
fn wrong_types_read_as_absent() {
    let o = outer(
        br#"{"eventName":1,"eventSource":null,"userIdentity":"x","eventTime":["a"],
            "responseElements":{"credentials":[1,2]},"requestParameters":{"roleArn":{"a":1}}}"#,
    );
    assert!(o.event.event_name.get().is_none());
    assert!(o.event.user_identity.arn.get().is_none());
    assert!(
        o.event
            .response_elements()
            .credentials
            .access_key_id
            .get()
            .is_none()
    );
}

#[test]
fn duplicates_last_wins_and_escapes_decode() {
    let o = outer(br#"{"eventName":"A","eventName":"B\u0041","credlineage":1,"credlineage":{}}"#);
    assert_eq!(o.event.event_name.get(), Some("BA"));
    assert_eq!(o.own_keys, 2);
    assert_eq!(o.members, 4);
}

#[test]
fn not_objects() {
    let k = TopKeys::new(&[], OwnKeys::Nested("credlineage".into()));
    assert!(parse_outer(b"[1]", &k).unwrap().is_none());
    assert!(parse_outer(b"\"s\"", &k).unwrap().is_none());
    assert!(parse_outer(b"{", &k).is_err());
    assert!(parse_outer(b"{} x", &k).is_err());
}

/// The word-wise key test agrees with `==` at every length, whichever
/// byte differs (first, last, in an overlap, in the middle).
#[test]
fn same_key_is_byte_equality() {
    for n in 0..40usize {
        let lit: Vec<u8> = (0..n).map(|i| b'a' + (i % 26) as u8).collect();
        assert!(same_key(&lit, &lit), "{n}");
        for at in 0..n {
            let mut k = lit.clone();
            k[at] ^= 0x20;
            assert!(!same_key(&k, &lit), "{n} at {at}");
        }
        assert!(!same_key(&lit[..n.saturating_sub(1)], &lit) || n == 0);
        let mut longer = lit.clone();
        longer.push(b'x');
        assert!(!same_key(&longer, &lit), "{n}+1");
    }
}

#[test]
fn special_keys_by_first_byte_and_length() {
    let flat = TopKeys::new(
        &["message".to_string(), "".to_string()],
        OwnKeys::Flat {
            prefix: "cl_".into(),
            fields: &["session_fingerprint"],
        },
    );
    for k in ["message", "", "cl_", "cl_session_fingerprint", "cl_x"] {
        assert!(flat.may_be_special(k.as_bytes()), "{k}");
    }
    let nested = TopKeys::new(
        &["message".to_string(), "log".to_string()],
        OwnKeys::Nested("credlineage".into()),
    );
    for k in ["message", "log", "credlineage", "mXXXXXX", "lXX"] {
        assert!(nested.may_be_special(k.as_bytes()), "{k}");
    }
    for k in [
        "managementEvent",
        "",
        "me",
        "logs",
        "credlineage_",
        "eventName",
    ] {
        assert!(!nested.may_be_special(k.as_bytes()), "{k}");
    }
}

#[test]
fn string_wrapped() {
    let o = outer(br#"{"message":"{\"eventName\":\"X\",\"eventSource\":\"s\"}"}"#);
    let inner = parse_inner(&o.strings[0]).unwrap();
    assert_eq!(inner.event_name.get(), Some("X"));
}

#[test]
fn items_capped() {
    let mut s = String::from(r#"{"responseElements":{"instancesSet":{"items":["#);
    for i in 0..1000 {
        if i > 0 {
            s.push(',');
        }
        s.push_str(r#"{"instanceId":"i-1"}"#);
    }
    s.push_str("]}}}");
    let o = outer(s.as_bytes());
    assert_eq!(
        o.event.response_elements().instances_set.items.0.len(),
        MAX_ITEMS
    );
}
