//! The WASM builds against native, in one run: the Fluent Bit module and the WIT component in wasmtime (Cranelift), each called per record the way its host calls it, and the Fluent Bit module's linear memory over a long stream.
//!
//! `cargo bench --bench wasm` (100,000 records; `-- --records N`;
//! `-- --memory N` also streams N records through one Fluent Bit instance and
//! prints linear memory every N/10). Under `cargo test` it runs a 300-record
//! smoke pass, so CI keeps it working.
//!
//! Each path runs over the same generated records, three rounds alternating,
//! best round kept (a shared machine). The Fluent Bit figure includes what
//! Fluent Bit's `flb_wasm.c` does per record around the filter (copy tag and
//! record into the module with its `malloc`, call, copy the NUL-terminated
//! result out, `free`), not Fluent Bit's own msgpack<->JSON conversion. WAMR,
//! the runtime Fluent Bit embeds, is not available here (docs/fluent-bit.md).

#[path = "../tests/hosts/component.rs"]
mod component;
#[path = "../tests/hosts/fluent_bit.rs"]
mod fluent_bit;

use credlineage::generate::{TrailConfig, trail};
use credlineage::{Config, Enricher};
use std::hint::black_box;
use std::time::{Duration, Instant};

fn records(n: usize) -> Vec<Vec<u8>> {
    credlineage::generate::trail_lines(1, n)
}

fn time(f: impl FnOnce()) -> Duration {
    let s = Instant::now();
    f();
    s.elapsed()
}

fn arg(args: &[String], name: &str) -> Option<usize> {
    let i = args.iter().position(|a| a == name)?;
    args.get(i + 1)?.parse().ok()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // `cargo bench` passes --bench; `cargo test` does not: a smoke run then.
    let bench = args.iter().any(|a| a == "--bench");
    let n = arg(&args, "--records").unwrap_or(if bench { 100_000 } else { 300 });
    let recs = records(n);
    let bytes: u64 = recs.iter().map(|r| r.len() as u64).sum();
    let t = 1_722_587_400u32;

    let started = Instant::now();
    let mut fb = fluent_bit::FluentBit::start(&[]);
    let fb_start = started.elapsed();
    let started = Instant::now();
    let mut comp = component::Wasm::new("{}");
    let comp_start = started.elapsed();

    // Same output from all three, once, before timing.
    {
        let mut e = Enricher::new(Config::default()).expect("config");
        let mut f = fluent_bit::FluentBit::start(&[]);
        let mut c = component::Wasm::new("{}");
        for r in recs.iter().take(200) {
            let native = e.process(r, None);
            assert_eq!(c.process(r), native, "component differs from native");
            assert_eq!(
                f.call(t, r),
                native,
                "Fluent Bit module differs from native"
            );
        }
    }

    let rounds = if bench { 3 } else { 1 };
    let (mut native, mut fbt, mut compt) = (Duration::MAX, Duration::MAX, Duration::MAX);
    let mut out = Vec::with_capacity(16384);
    for round in 0..rounds {
        let mut e = Enricher::new(Config::default()).expect("config");
        native = native.min(time(|| {
            for r in &recs {
                out.clear();
                e.process_into(r, None, &mut out);
                black_box(&out);
            }
        }));
        if round > 0 {
            // Fresh instances: every round sees the stream from the start.
            fb = fluent_bit::FluentBit::start(&[]);
            comp = component::Wasm::new("{}");
        }
        fbt = fbt.min(time(|| {
            for r in &recs {
                black_box(fb.call(t, r));
            }
        }));
        compt = compt.min(time(|| {
            for r in &recs {
                black_box(comp.process(r));
            }
        }));
    }
    println!(
        "{n} generated records, {:.1} MB; best of {rounds} alternating rounds\n",
        bytes as f64 / 1e6
    );
    println!("| surface | runtime | records/s | MB/s | throughput vs native |");
    println!("|---|---|---|---|---|");
    let row = |name: &str, rt: &str, d: Duration| {
        let s = d.as_secs_f64();
        println!(
            "| {name} | {rt} | {:.0} | {:.1} | {:.0}% |",
            n as f64 / s,
            bytes as f64 / s / 1e6,
            100.0 * native.as_secs_f64() / s
        );
    };
    row("library (`process_into`)", "native", native);
    row(
        "Fluent Bit filter module (wasm32-wasip1)",
        "wasmtime 48, Cranelift",
        fbt,
    );
    row(
        "WIT component (wasm32-wasip2)",
        "wasmtime 48, Cranelift",
        compt,
    );
    println!(
        "\nStart-up (compile + instantiate, first instance): Fluent Bit module {fb_start:.2?}, component {comp_start:.2?}"
    );

    if let Some(m) = arg(&args, "--memory") {
        memory(m, t);
    } else if !bench {
        memory(2_000, t);
    }
}

/// Linear memory of one Fluent Bit instance as the stream goes on: it never
/// shrinks inside Fluent Bit, so it must plateau.
fn memory(n: usize, t: u32) {
    println!("\nFluent Bit module linear memory over {n} records (one instance):\n");
    println!("| records | linear memory (MiB) | tracked sets (native, same stream) |");
    println!("|---|---|---|");
    let mut fb = fluent_bit::FluentBit::start(&[]);
    let mut e = Enricher::new(Config::default()).expect("config");
    let step = (n / 10).max(1);
    let mut it = trail(TrailConfig {
        seed: 5,
        records: n,
        ..Default::default()
    });
    let mut sizes = Vec::new();
    for i in 1..=n {
        let Some(r) = it.next() else { break };
        black_box(fb.call(t, r.line.as_bytes()));
        e.process(r.line.as_bytes(), None);
        if i % step == 0 {
            let mib = fb.memory_bytes() as f64 / (1 << 20) as f64;
            sizes.push(fb.memory_bytes());
            println!("| {i} | {mib:.1} | {} |", e.stats().tracked_sets);
        }
    }
    // The second half of the stream must not need more memory than the
    // first half ended with, beyond a few pages of allocator slack.
    let half = sizes.len() / 2;
    if let (Some(mid), Some(last)) = (sizes.get(half.saturating_sub(1)), sizes.last()) {
        assert!(
            *last <= mid + mid / 4 + (4 << 20),
            "linear memory kept growing: {sizes:?}"
        );
    }
}
