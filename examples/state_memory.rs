//! Measures bytes of resident memory per tracked credential set: feeds N
//! AssumeRole issuances (each a new temporary key) and reads RSS before and after.
//!
//! `cargo run --release --example state_memory -- 1000000`

use credlineage::{Config, Enricher};

fn rss_bytes() -> u64 {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = s
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let mut e = Enricher::new(Config {
        max_entries: n + 16,
        max_bytes: usize::MAX / 2,
        ..Config::default()
    })
    .expect("config");
    let mut out = Vec::with_capacity(4096);
    // Warm up allocator and code paths.
    let rec = |i: usize| {
        format!(
            r#"{{"eventName":"AssumeRole","eventSource":"sts.amazonaws.com","eventTime":"2024-08-01T12:{:02}:{:02}Z","userIdentity":{{"type":"IAMUser","accountId":"111122223333","arn":"arn:aws:iam::111122223333:user/u","accessKeyId":"AKIAQXAMPLEROOTKEY01"}},"requestParameters":{{"roleArn":"arn:aws:iam::111122223333:role/r","roleSessionName":"s{i}"}},"responseElements":{{"credentials":{{"accessKeyId":"ASIAQ{i:015}","expiration":"Aug 1, 2024, 1:00:00 PM"}},"assumedRoleUser":{{"arn":"arn:aws:sts::111122223333:assumed-role/r/s{i}"}}}}}}"#,
            (i / 60) % 60,
            i % 60
        )
    };
    out.clear();
    e.process_into(rec(0).as_bytes(), None, &mut out);
    let before = rss_bytes();
    for i in 1..=n {
        out.clear();
        e.process_into(rec(i).as_bytes(), None, &mut out);
    }
    let after = rss_bytes();
    let s = e.stats();
    println!(
        "sets={} rss_delta={} bytes_per_set={:.1} estimated_state_bytes={} estimated_per_set={:.1}",
        s.tracked_sets,
        after.saturating_sub(before),
        after.saturating_sub(before) as f64 / s.tracked_sets.max(1) as f64,
        s.state_bytes,
        s.state_bytes as f64 / s.tracked_sets.max(1) as f64
    );
}
