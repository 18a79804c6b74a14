//! In-process throughput, one run, side by side: credlineage's enrichment against reading the same JSON with serde_json (`IgnoredAny`), sonic-rs, and a full parse-modify-serialize; plus the scale series.
//!
//! `cargo run --release --example throughput -- compare 100000`
//! `cargo run --release --example throughput -- scale 10000 100000 1000000 10000000`
//!
//! Records come from the synthetic trail generator (realistic mix, ~1.2 KB
//! each). Generation is not timed: the scale series generates in chunks of
//! 100,000 and times only the enrichment of each chunk, so 10M records need
//! no 12 GB buffer.

use credlineage::generate::{TrailConfig, trail};
use credlineage::{Config, Enricher};
use std::hint::black_box;
use std::time::{Duration, Instant};

fn make(seed: u64, n: usize) -> Vec<Vec<u8>> {
    credlineage::generate::trail_lines(seed, n)
}

fn time(f: impl FnOnce()) -> Duration {
    let s = Instant::now();
    f();
    s.elapsed()
}

fn row(name: &str, n: usize, bytes: u64, d: Duration, base: Option<Duration>) {
    let secs = d.as_secs_f64();
    let ratio = base.map_or(String::from("-"), |b| {
        format!("{:.2}", b.as_secs_f64() / secs)
    });
    println!(
        "| {name} | {:.0} | {:.1} | {ratio} |",
        n as f64 / secs,
        bytes as f64 / secs / 1e6
    );
}

/// The top-level keys of the default configuration (what the engine reads with).
fn top_keys() -> credlineage::record::TopKeys {
    credlineage::record::TopKeys::new(
        &Config::default().string_fields,
        credlineage::record::OwnKeys::Nested("credlineage".into()),
    )
}

/// The paths compared, each over every record once: the enrichment
/// (appending to `out`, cleared per record), and the floors below.
fn enrich_all(e: &mut Enricher, recs: &[Vec<u8>], out: &mut Vec<u8>) {
    for r in recs {
        out.clear();
        e.process_into(r, None, out);
        black_box(&out);
    }
}

fn serde_all(recs: &[Vec<u8>]) {
    for r in recs {
        black_box(serde_json::from_slice::<serde::de::IgnoredAny>(r).ok());
    }
}

fn scan_all(recs: &[Vec<u8>]) {
    for r in recs {
        black_box(
            std::str::from_utf8(r)
                .ok()
                .map(|t| credlineage::json::validate(t).is_ok()),
        );
    }
}

fn read_all(recs: &[Vec<u8>], keys: &credlineage::record::TopKeys) {
    for r in recs {
        black_box(credlineage::record::parse_outer(r, keys).is_ok());
    }
}

fn compare(n: usize) {
    let recs = make(1, n);
    let bytes: u64 = recs.iter().map(|r| r.len() as u64).sum();
    println!(
        "{n} records, {:.1} MB, avg {} B/record\n",
        bytes as f64 / 1e6,
        bytes / n.max(1) as u64
    );
    println!("| path | records/s | MB/s | credlineage ÷ this (time) |");
    println!("|---|---|---|---|");
    // Alternate the paths for ROUNDS rounds and keep each one's best time:
    // on a shared machine that is the figure least disturbed by other work.
    const ROUNDS: usize = 5;
    let (mut ours, mut serde, mut sonic) = (Duration::MAX, Duration::MAX, Duration::MAX);
    let mut scan = Duration::MAX;
    let mut read = Duration::MAX;
    let keys = top_keys();
    let mut out = Vec::with_capacity(16384);
    for _ in 0..ROUNDS {
        // A fresh enricher each round: every round sees the stream from the start.
        let mut e = Enricher::new(Config::default()).expect("config");
        ours = ours.min(time(|| enrich_all(&mut e, &recs, &mut out)));
        serde = serde.min(time(|| serde_all(&recs)));
        scan = scan.min(time(|| scan_all(&recs)));
        read = read.min(time(|| read_all(&recs, &keys)));
        sonic = sonic.min(time(|| {
            for r in &recs {
                black_box(sonic_rs::from_slice::<serde::de::IgnoredAny>(r).ok());
            }
        }));
    }
    let mut e2 = Enricher::new(Config::default()).expect("config");
    let owned = time(|| {
        for r in &recs {
            let Ok((ann, _)) = e2.annotate(r, None) else {
                continue;
            };
            let mut v: serde_json::Map<String, serde_json::Value> =
                serde_json::from_slice(r).unwrap_or_default();
            v.insert(
                "credlineage".into(),
                serde_json::from_slice(&ann.to_json()).unwrap_or_default(),
            );
            black_box(serde_json::to_vec(&v).ok());
        }
    });
    row(
        "credlineage enrich (borrowed parse + splice)",
        n,
        bytes,
        ours,
        None,
    );
    row(
        "serde_json validate (IgnoredAny)",
        n,
        bytes,
        serde,
        Some(ours),
    );
    row(
        "credlineage's own scanner, validation alone",
        n,
        bytes,
        scan,
        Some(ours),
    );
    row(
        "credlineage's reading alone (UTF-8 check + fields read)",
        n,
        bytes,
        read,
        Some(ours),
    );
    row(
        "sonic-rs validate (IgnoredAny)",
        n,
        bytes,
        sonic,
        Some(ours),
    );
    row(
        "full parse-modify-serialize (serde_json::Value)",
        n,
        bytes,
        owned,
        Some(ours),
    );
    println!(
        "\ncredlineage throughput = {:.0}% of serde_json validation, {:.0}% of sonic-rs validation",
        100.0 * serde.as_secs_f64() / ours.as_secs_f64(),
        100.0 * sonic.as_secs_f64() / ours.as_secs_f64()
    );
}

fn scale(ns: &[usize]) {
    println!("| records | records/s | MB/s | ns/record | tracked sets | evictions |");
    println!("|---|---|---|---|---|---|");
    for &n in ns {
        let mut e = Enricher::new(Config::default()).expect("config");
        let mut out = Vec::with_capacity(16384);
        let (mut spent, mut bytes, mut done) = (Duration::ZERO, 0u64, 0usize);
        let mut it = trail(TrailConfig {
            seed: 2,
            records: n,
            ..Default::default()
        });
        while done < n {
            let chunk: Vec<Vec<u8>> = it
                .by_ref()
                .take(100_000)
                .map(|r| r.line.into_bytes())
                .collect();
            if chunk.is_empty() {
                break;
            }
            bytes += chunk.iter().map(|r| r.len() as u64).sum::<u64>();
            done += chunk.len();
            spent += time(|| enrich_all(&mut e, &chunk, &mut out));
        }
        let s = e.stats();
        let secs = spent.as_secs_f64();
        println!(
            "| {done} | {:.0} | {:.1} | {:.0} | {} | {} |",
            done as f64 / secs,
            bytes as f64 / secs / 1e6,
            secs * 1e9 / done as f64,
            s.tracked_sets,
            s.evictions
        );
    }
}

/// Where the time of one record goes: the first touch of its bytes (the
/// UTF-8 pass), reading, reading + rules and state (`annotate`), and the
/// whole enrichment with writing; nanoseconds per record, best of 5 rounds.
fn phases(n: usize) {
    let recs = make(1, n);
    let keys = top_keys();
    let mut best = [Duration::MAX; 5];
    let mut out = Vec::with_capacity(16384);
    for _ in 0..5 {
        best[0] = best[0].min(time(|| {
            for r in &recs {
                black_box(simdutf8::basic::from_utf8(r).is_ok());
            }
        }));
        best[1] = best[1].min(time(|| read_all(&recs, &keys)));
        let mut e = Enricher::new(Config::default()).expect("config");
        best[2] = best[2].min(time(|| {
            for r in &recs {
                black_box(e.annotate(r, None).is_ok());
            }
        }));
        let mut e = Enricher::new(Config::default()).expect("config");
        best[3] = best[3].min(time(|| enrich_all(&mut e, &recs, &mut out)));
        best[4] = best[4].min(time(|| serde_all(&recs)));
    }
    let ns = |d: Duration| d.as_secs_f64() * 1e9 / n.max(1) as f64;
    println!("| phase (cumulative) | ns/record |");
    println!("|---|---|");
    for (name, d) in [
        "UTF-8 check alone (the first touch of the bytes)",
        "UTF-8 check + reading the fields",
        "+ rules and state (`annotate`)",
        "+ writing: the whole enrichment (`process_into`)",
        "serde_json validation (`IgnoredAny`), for scale",
    ]
    .iter()
    .zip(best)
    {
        println!("| {name} | {:.0} |", ns(d));
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let nums: Vec<usize> = args.iter().skip(1).filter_map(|a| a.parse().ok()).collect();
    match args.first().map(String::as_str) {
        // Only the enrichment loop, for profilers (`perf record`).
        Some("profile") => {
            let recs = make(1, nums.first().copied().unwrap_or(100_000));
            let mut e = Enricher::new(Config::default()).expect("config");
            let mut out = Vec::with_capacity(16384);
            for _ in 0..5 {
                enrich_all(&mut e, &recs, &mut out);
            }
        }
        // The floor alone, for instruction counts (`valgrind --tool=callgrind`).
        Some("validate") => {
            let recs = make(1, nums.first().copied().unwrap_or(100_000));
            for _ in 0..5 {
                serde_all(&recs);
            }
        }
        Some("scan") => {
            let recs = make(1, nums.first().copied().unwrap_or(100_000));
            for _ in 0..5 {
                scan_all(&recs);
            }
        }
        Some("phases") => phases(nums.first().copied().unwrap_or(100_000)),
        Some("scale") => scale(if nums.is_empty() {
            &[10_000, 100_000]
        } else {
            &nums
        }),
        _ => compare(nums.first().copied().unwrap_or(100_000)),
    }
}
