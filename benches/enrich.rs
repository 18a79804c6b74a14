//! Criterion benchmarks: enrichment against the JSON-reading floor, and the borrowed-parse-and-splice path against a full parse-modify-serialize.
//!
//! `cargo bench --bench enrich` (results in `target/criterion/`); the
//! side-by-side table with jq and the scale series is `scripts/bench.sh`.

use credlineage::{Config, Enricher};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

fn records(n: usize) -> Vec<Vec<u8>> {
    credlineage::generate::trail_lines(1, n)
}

fn benches(c: &mut Criterion) {
    let recs = records(10_000);
    let bytes: u64 = recs.iter().map(|r| r.len() as u64).sum();
    let mut g = c.benchmark_group("10k_records");
    g.throughput(Throughput::Bytes(bytes));
    g.sample_size(20);
    g.noise_threshold(0.05);

    g.bench_function("credlineage_enrich", |b| {
        b.iter_batched(
            || Enricher::new(Config::default()).expect("config"),
            |mut e| {
                let mut out = Vec::with_capacity(8192);
                for r in &recs {
                    out.clear();
                    e.process_into(r, None, &mut out);
                    black_box(&out);
                }
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function("floor_serde_json_ignored_any", |b| {
        b.iter(|| {
            for r in &recs {
                black_box(serde_json::from_slice::<serde::de::IgnoredAny>(r).ok());
            }
        })
    });
    g.bench_function("floor_sonic_rs_ignored_any", |b| {
        b.iter(|| {
            for r in &recs {
                black_box(sonic_rs::from_slice::<serde::de::IgnoredAny>(r).ok());
            }
        })
    });
    // Owned: what a naive transform does: parse everything into a tree, add
    // the annotation, serialize it all again. Borrowed: credlineage's path.
    g.bench_function("owned_full_parse_modify_serialize", |b| {
        b.iter_batched(
            || Enricher::new(Config::default()).expect("config"),
            |mut e| {
                for r in &recs {
                    let Ok((ann, _)) = e.annotate(r, None) else {
                        continue;
                    };
                    let mut v: serde_json::Map<String, serde_json::Value> =
                        serde_json::from_slice(r).unwrap_or_default();
                    let a: serde_json::Value =
                        serde_json::from_slice(&ann.to_json()).unwrap_or_default();
                    v.insert("credlineage".into(), a);
                    black_box(serde_json::to_vec(&v).ok());
                }
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(enrich, benches);
criterion_main!(enrich);
