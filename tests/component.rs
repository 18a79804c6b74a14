//! The WIT component in a real host: build it with `scripts/build-component.sh`, run it in wasmtime (WASI p2), and compare every output byte with the native `Enricher`.
//!
//! The build runs every time (cargo makes it a no-op when nothing changed),
//! with its own target directory under this test's, so the component tested
//! is always the current source. No `wasm32-wasip2` target or no cargo is a
//! failure, never a skip.

use credlineage::{Config, Enricher};

#[path = "hosts/component.rs"]
mod component_host;
use component_host::*;

// ---------------------------------------------------------------------------
// Inputs
// ---------------------------------------------------------------------------

fn fixture_lines(name: &str) -> Vec<Vec<u8>> {
    let path = root().join("tests/fixtures").join(name);
    let text = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.split(|&c| c == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

fn generated(n: usize) -> Vec<Vec<u8>> {
    credlineage::generate::trail_lines(1, n)
}

/// Run the native enricher and the component over the same records; every
/// output must be the same bytes, and so must the snapshots and stats.
fn parity(config: &str, records: &[Vec<u8>]) {
    let cfg = if config.is_empty() {
        Config::default()
    } else {
        Config::from_json(config.as_bytes()).unwrap()
    };
    let mut native = Enricher::new(cfg).unwrap();
    let mut wasm = Wasm::new(config);
    for (i, r) in records.iter().enumerate() {
        let n = native.process(r, None);
        let w = wasm.process(r);
        assert!(
            n == w,
            "record {i}: component output differs from native\nnative: {}\n  wasm: {}",
            String::from_utf8_lossy(&n),
            String::from_utf8_lossy(&w)
        );
    }
    assert_eq!(native.snapshot(), wasm.snapshot(), "snapshots differ");
    assert_eq!(
        serde_json::to_string(&native.stats()).unwrap(),
        wasm.stats_json()
    );
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[test]
fn is_a_component() {
    // Component::from_file refuses a core module.
    let (engine, c) = engine_and_component();
    let exports: Vec<String> = c
        .component_type()
        .exports(engine)
        .map(|(n, _)| n.to_string())
        .collect();
    assert_eq!(exports, ["credlineage:enricher/enrich@0.1.0"]);
}

#[test]
fn parity_scenarios() {
    let recs = fixture_lines("scenarios.jsonl");
    assert_eq!(recs.len(), 40);
    parity("", &recs);
}

#[test]
fn parity_stratus() {
    let recs = fixture_lines("stratus.jsonl");
    assert_eq!(recs.len(), 310);
    parity("{}", &recs);
}

#[test]
fn parity_hostile_fixture() {
    parity("", &fixture_lines("hostile.jsonl"));
}

#[test]
fn parity_generated_10k() {
    parity("", &generated(10_000));
}

/// The component's string scan runs sixteen bytes at a time with WebAssembly
/// SIMD (`.cargo/config.toml`), natively with SSE2: every byte value at
/// every offset of a block, in a field the rules read and in one they skip,
/// must come out as the native build has it (annotated, or passed through
/// when the byte is not allowed raw in a JSON string).
#[test]
fn parity_string_scan_every_byte_at_every_offset() {
    let mut records = Vec::new();
    // Single bytes (raw controls, quotes, backslashes and lone high bytes
    // among them), then valid multi-byte characters that straddle blocks.
    let mut inserts: Vec<Vec<u8>> = (0..=255u8).map(|b| vec![b]).collect();
    inserts.extend(["é", "€", "\u{10348}", "\\\"", "\\u00e9"].map(|s| s.as_bytes().to_vec()));
    for offset in 0..34 {
        for insert in &inserts {
            for field in ["userAgent", "sourceIPAddress"] {
                let mut r = br#"{"eventName":"GetObject","eventSource":"s3.amazonaws.com","eventTime":"2024-08-01T12:00:00Z","userIdentity":{"type":"IAMUser","accountId":"111122223333","arn":"arn:aws:iam::111122223333:user/alice","accessKeyId":"AKIAIOSFODNN7EXAMPLE"},""#.to_vec();
                r.extend_from_slice(field.as_bytes());
                r.extend_from_slice(b"\":\"");
                r.extend(std::iter::repeat_n(b'a', offset));
                r.extend_from_slice(insert);
                r.extend(std::iter::repeat_n(b'b', 40 - offset));
                r.extend_from_slice(b"\"}");
                records.push(r);
            }
        }
    }
    parity("", &records);
}

#[test]
fn parity_with_config() {
    let cfg = r#"{"flatten_prefix":"cl_","redact_session_tokens":true,"max_entries":50}"#;
    parity(cfg, &fixture_lines("stratus.jsonl"));
}

/// Under a byte cap the evictions, and so the output, depend on the state
/// size estimate: it must not depend on the pointer width (wasm32 vs native).
#[test]
fn parity_under_byte_cap() {
    let cfg = r#"{"max_bytes":8192}"#;
    let recs = generated(3_000);
    parity(cfg, &recs);
    let mut native = Enricher::new(Config::from_json(cfg.as_bytes()).unwrap()).unwrap();
    for r in &recs {
        native.process(r, None);
    }
    assert!(native.stats().evictions > 0, "the cap was reached");
}

#[test]
fn process_at_uses_host_time() {
    // A record with no eventTime: the host time decides its issue time.
    let rec = br#"{"eventName":"ListBuckets","eventSource":"s3.amazonaws.com","userIdentity":{"type":"IAMUser","accountId":"111122223333","arn":"arn:aws:iam::111122223333:user/alice","accessKeyId":"AKIAIOSFODNN7EXAMPLE"}}"#;
    let mut native = Enricher::new(Config::default()).unwrap();
    let mut wasm = Wasm::new("");
    for t in [1_722_500_000, 0, -5, i64::MAX, i64::MIN] {
        assert_eq!(native.process(rec, Some(t)), wasm.process_at(rec, t));
    }
}

#[test]
fn stats_record_matches_native() {
    let recs = fixture_lines("stratus.jsonl");
    let mut native = Enricher::new(Config::default()).unwrap();
    let mut wasm = Wasm::new("");
    for r in &recs {
        native.process(r, None);
        wasm.process(r);
    }
    let n = native.stats();
    let w = wasm.stats();
    assert_eq!(w.records, 310);
    let as_native = credlineage::Stats {
        records: w.records,
        annotated: w.annotated,
        passed_through: w.passed_through,
        malformed: w.malformed,
        collisions: w.collisions,
        offhost: w.offhost,
        issuances: w.issuances,
        chained_issuances: w.chained_issuances,
        evictions: w.evictions,
        expired_purged: w.expired_purged,
        tracked_sets: w.tracked_sets,
        state_bytes: w.state_bytes,
        bad_time: w.bad_time,
    };
    assert_eq!(as_native, n);
}

#[test]
fn snapshot_crosses_surfaces_both_ways() {
    let recs = generated(2_000);
    let (first, second) = recs.split_at(1_000);

    // Native reference: one enricher over everything.
    let mut reference = Enricher::new(Config::default()).unwrap();
    let want: Vec<Vec<u8>> = recs.iter().map(|r| reference.process(r, None)).collect();

    // Component first half → snapshot → native second half.
    let mut wasm = Wasm::new("");
    for r in first {
        wasm.process(r);
    }
    let snap = wasm.snapshot();
    let mut native = Enricher::new(Config::default()).unwrap();
    native
        .restore(&snap)
        .expect("native restores a component snapshot");
    for (r, w) in second.iter().zip(&want[1_000..]) {
        assert_eq!(&native.process(r, None), w);
    }

    // Native first half → snapshot → component second half.
    let mut native = Enricher::new(Config::default()).unwrap();
    for r in first {
        native.process(r, None);
    }
    let mut wasm = Wasm::new("");
    wasm.restore(&native.snapshot())
        .expect("component restores a native snapshot");
    for (r, w) in second.iter().zip(&want[1_000..]) {
        assert_eq!(&wasm.process(r), w);
    }
    assert_eq!(wasm.snapshot(), reference.snapshot());
}

#[test]
fn corrupt_snapshot_is_an_error_not_a_trap() {
    let mut wasm = Wasm::new("");
    for r in fixture_lines("scenarios.jsonl") {
        wasm.process(&r);
    }
    let good = wasm.snapshot();
    let mut bad_cases: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"not a snapshot".to_vec(),
        good[..good.len() / 2].to_vec(),
        vec![0xff; 4096],
    ];
    let mut flipped = good.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x40;
    bad_cases.push(flipped);
    for bad in &bad_cases {
        let err = wasm.restore(bad).expect_err("corrupt snapshot refused");
        assert!(err.contains("snapshot refused"), "message: {err}");
    }
    // The state is untouched by the refusals.
    assert_eq!(wasm.snapshot(), good);

    // A snapshot from a differently-configured enricher is refused too.
    let mut other = Wasm::new(r#"{"session_ttl_secs":60}"#);
    let err = other.restore(&good).expect_err("foreign config refused");
    assert!(err.contains("snapshot refused"), "message: {err}");
}

#[test]
fn hostile_records_never_trap() {
    let mut deep_obj = Vec::new();
    for _ in 0..100_000 {
        deep_obj.extend_from_slice(br#"{"a":"#);
    }
    let deep_arr = [vec![b'['; 1_000_000], vec![b']'; 1_000_000]].concat();
    let mut big = br#"{"eventName":"GetObject","eventSource":"s3.amazonaws.com","eventTime":"2024-08-01T12:00:00Z","userIdentity":{"type":"IAMUser","accountId":"111122223333","arn":"arn:aws:iam::111122223333:user/alice","accessKeyId":"AKIAIOSFODNN7EXAMPLE"},"pad":""#.to_vec();
    big.extend(std::iter::repeat_n(b'x', 10 * 1024 * 1024));
    big.extend_from_slice(br#""}"#);
    let cases: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"   ".to_vec(),
        b"not json".to_vec(),
        b"{".to_vec(),
        b"[]".to_vec(),
        b"null".to_vec(),
        vec![0xff, 0xfe, 0x00, 0x80],
        b"{\"eventName\":\"\xff\xfe\",\"eventSource\":\"s3.amazonaws.com\"}".to_vec(),
        deep_obj,
        deep_arr,
        vec![b'x'; 10 * 1024 * 1024],
        big,
        vec![0u8; 1 << 20],
    ];
    let mut native = Enricher::new(Config::default()).unwrap();
    let mut wasm = Wasm::new("");
    for (i, c) in cases.iter().enumerate() {
        let w = wasm.process(c);
        assert_eq!(w, native.process(c, None), "hostile case {i}");
    }
    assert_eq!(
        wasm.stats().records,
        cases.len() as u64,
        "every record counted"
    );
    // The instance still works afterwards.
    parity_tail(&mut wasm, &mut native);
}

/// Both keep agreeing after whatever came before.
fn parity_tail(wasm: &mut Wasm, native: &mut Enricher) {
    for r in fixture_lines("scenarios.jsonl") {
        assert_eq!(wasm.process(&r), native.process(&r, None));
    }
}

#[test]
fn bad_config_is_reported() {
    let mut g = Guest::new();
    for bad in [
        "{\"nope\":1}",
        "not json",
        "{\"max_entries\":0}",
        "{\"session_ttl_secs\":-1}",
        "{\"max_bytes\":1}",
        "\"defaults\"",
    ] {
        let err = g.create(bad).expect_err(bad);
        assert!(err.contains("invalid configuration"), "{bad}: {err}");
    }
    let err = g.create("{\"nope\":1}").unwrap_err();
    assert!(err.contains("unknown field `nope`"), "{err}");

    // Defaults: "", whitespace, "{}".
    for ok in ["", "  ", "{}"] {
        let e = g.create(ok).expect(ok);
        e.resource_drop(&mut g.store).unwrap();
    }

    // The constructor cannot fail: it reports through config-error, and the
    // records pass through unchanged, still one out per one in.
    let e = g.construct("{\"nope\":1}");
    let mut w = Wasm { g, e };
    let err = w.config_error().expect("config error reported");
    assert!(err.contains("unknown field `nope`"), "{err}");
    let rec = &fixture_lines("scenarios.jsonl")[0];
    assert_eq!(&w.process(rec), rec);
    assert!(w.snapshot().is_empty());
    let err = w.restore(b"x").unwrap_err();
    assert!(err.contains("unknown field `nope`"), "{err}");

    let mut ok = Guest::new();
    let e = ok.construct("{}");
    let mut ok = Wasm { g: ok, e };
    assert_eq!(ok.config_error(), None);
    assert_ne!(&ok.process(rec), rec);
}
