//! The WASM builds against native, in one run: the Fluent Bit module and the WIT component in wasmtime (Cranelift, and Pulley, wasmtime's interpreter), the JS package in Node, each called per record the way its host calls it, and the Fluent Bit module's linear memory over a long stream.
//!
//! `cargo bench --bench wasm` (100,000 records). Options after `--`:
//!
//! * `--records N`: records timed (0: no throughput table, e.g. with `--memory`);
//! * `--pulley-records N`: the first N records are also timed under Pulley
//!   (default 20,000; 0 leaves Pulley out), against native over the same N;
//! * `--memory N`: also streams N records through one Fluent Bit instance and
//!   prints its linear memory every N/10, once with the default configuration
//!   and once with capped state (where it must be flat); 0: no memory run;
//! * `--no-js`: leaves the Node row out.
//!
//! Under `cargo test` it runs a 300-record smoke pass of every row, so CI
//! keeps it working.
//!
//! Every path runs over the same generated records, three rounds alternating,
//! best round kept (a shared machine); every round starts a fresh instance
//! and enricher, so each sees the stream from the start. Compiling and
//! instantiating are reported apart and are not in the throughput. The
//! artifacts are built by the commands the scripts use (through the test
//! hosts in `tests/hosts/`). The Fluent Bit figure includes what Fluent
//! Bit's `flb_wasm.c` does per record around the filter (copy tag and record
//! into the module with its `malloc`, call, copy the NUL-terminated result
//! out, `free`), not Fluent Bit's own msgpack<->JSON conversion. WAMR, the
//! runtime Fluent Bit embeds, is not available here (docs/fluent-bit.md);
//! Pulley is wasmtime's own interpreter, not WAMR's. The Node figures
//! (`benches/js_throughput.mjs`) are timed inside Node, over the same
//! records written to a file, after a warm-up.

#[path = "../tests/hosts/component.rs"]
mod component;
#[path = "../tests/hosts/fluent_bit.rs"]
mod fluent_bit;
#[path = "../tests/hosts/js.rs"]
mod js;

use credlineage::generate::{TrailConfig, trail};
use credlineage::{Config, Enricher};
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use wasmtime::Engine;

/// The record time Fluent Bit passes (every generated record has its own
/// `eventTime`, so it does not change the output).
const TIME: u32 = 1_722_587_400;

/// Records timed under Pulley by default: per-record cost is flat along the
/// stream (BENCHMARKS.md, scale), and the interpreter is ~60x slower.
const PULLEY_RECORDS: usize = 20_000;

fn records(n: usize) -> Vec<Vec<u8>> {
    credlineage::generate::trail_lines(1, n)
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let s = Instant::now();
    let v = f();
    (v, s.elapsed())
}

fn arg(args: &[String], name: &str) -> Option<usize> {
    let i = args.iter().position(|a| a == name)?;
    args.get(i + 1)?.parse().ok()
}

/// One runtime's compiled artifacts.
struct Runtime {
    name: &'static str,
    engine: Engine,
    module: wasmtime::Module,
    component: wasmtime::component::Component,
    compile: (Duration, Duration),
    instantiate: (Duration, Duration),
}

impl Runtime {
    fn new(name: &'static str, engine: Engine) -> Runtime {
        let (module, m) = timed(|| fluent_bit::compile(&engine));
        let (component, c) = timed(|| component::compile(&engine));
        let (_, mi) = timed(|| fluent_bit::FluentBit::start_in(&engine, &module, &[]));
        let (_, ci) = timed(|| component::Wasm::new_in(&engine, &component, "{}"));
        Runtime {
            name,
            engine,
            module,
            component,
            compile: (m, c),
            instantiate: (mi, ci),
        }
    }

    fn fluent_bit(&self) -> fluent_bit::FluentBit {
        fluent_bit::FluentBit::start_in(&self.engine, &self.module, &[])
    }

    fn component(&self) -> component::Wasm {
        component::Wasm::new_in(&self.engine, &self.component, "{}")
    }

    /// The same output as native on the first records.
    fn check(&self, recs: &[Vec<u8>]) {
        let mut e = Enricher::new(Config::default()).expect("config");
        let mut f = self.fluent_bit();
        let mut c = self.component();
        for r in recs.iter().take(200) {
            let native = e.process(r, None);
            let name = self.name;
            assert_eq!(c.process(r), native, "component ({name}) differs");
            assert_eq!(f.call(TIME, r), native, "Fluent Bit ({name}) differs");
        }
    }

    /// One pass of each surface over `recs`: times and output bytes.
    fn round(&self, recs: &[Vec<u8>]) -> [(Duration, usize); 2] {
        let mut fb = self.fluent_bit();
        let fb = timed(|| recs.iter().map(|r| fb.call(TIME, r).len()).sum());
        let mut comp = self.component();
        let comp = timed(|| recs.iter().map(|r| comp.process(r).len()).sum());
        [(fb.1, fb.0), (comp.1, comp.0)]
    }
}

fn pulley_engine() -> Engine {
    let mut config = wasmtime::Config::new();
    config
        .target("pulley64")
        .expect("wasmtime built with its `pulley` feature");
    Engine::new(&config).expect("a Pulley engine")
}

/// The JS package and a file with the records, when Node and the
/// wasm-bindgen CLI are here.
struct Node {
    pkg: PathBuf,
    input: PathBuf,
    version: String,
}

impl Node {
    fn prepare(recs: &[Vec<u8>]) -> Result<Node, String> {
        let version = Command::new("node")
            .arg("--version")
            .output()
            .map_err(|e| format!("node: {e}"))?;
        let version = String::from_utf8_lossy(&version.stdout).trim().to_owned();
        // scripts/build-js.sh needs the CLI of the crate's exact version.
        let have = Command::new("wasm-bindgen")
            .arg("--version")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        let lock = include_str!("../Cargo.lock");
        let want = lock
            .split("[[package]]")
            .find(|p| p.contains("name = \"wasm-bindgen\"\n"))
            .and_then(|p| p.split("version = \"").nth(1)?.split('"').next())
            .unwrap_or("?");
        if have.split_whitespace().nth(1) != Some(want) {
            return Err(format!(
                "needs the wasm-bindgen CLI {want}, found {:?}: `cargo install wasm-bindgen-cli --version {want}`",
                have.trim()
            ));
        }
        let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let pkg = js::build_package(tmp);
        let input = tmp.join("wasm-bench-records.jsonl");
        let mut text = Vec::with_capacity(recs.iter().map(|r| r.len() + 1).sum());
        for r in recs {
            text.extend_from_slice(r);
            text.push(b'\n');
        }
        std::fs::write(&input, text).map_err(|e| format!("{}: {e}", input.display()))?;
        Ok(Node {
            pkg,
            input,
            version,
        })
    }

    /// One run of `benches/js_throughput.mjs`: a warm-up, then three rounds
    /// of `process` and of `processString`, alternating, best kept (the
    /// first round in a fresh Node is slower than the next ones even after
    /// the warm-up).
    fn round(&self) -> JsRound {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/js_throughput.mjs");
        let out = js::run(
            Command::new("node")
                .arg(script)
                .arg(&self.pkg)
                .arg(&self.input)
                .arg("3"),
            "node benches/js_throughput.mjs",
        );
        let v: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON line");
        let get = |k: &str| v[k].as_u64().unwrap_or_else(|| panic!("{k} in {out}"));
        let ns = |k: &str| Duration::from_nanos(get(k));
        JsRound {
            out_bytes: get("out_bytes") as usize,
            load: ns("load_ns"),
            process: ns("process_ns"),
            process_string: ns("process_string_ns"),
        }
    }
}

struct JsRound {
    out_bytes: usize,
    load: Duration,
    process: Duration,
    process_string: Duration,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // `cargo bench` passes --bench; `cargo test` does not: a smoke run then.
    let bench = args.iter().any(|a| a == "--bench");
    let n = arg(&args, "--records").unwrap_or(if bench { 100_000 } else { 300 });
    let cranelift = (n > 0).then(|| throughput(&args, bench, n));
    // `--memory 0` (like `--records 0`) skips that part.
    let m = arg(&args, "--memory").or((!bench).then_some(2_000));
    if let Some(m) = m.filter(|&m| m > 0) {
        memory(m, cranelift.as_ref());
    }
}

/// The throughput and start-up tables; the Cranelift runtime, for reuse.
fn throughput(args: &[String], bench: bool, n: usize) -> Runtime {
    let recs = records(n);
    let bytes: usize = recs.iter().map(Vec::len).sum();
    let np = arg(args, "--pulley-records")
        .unwrap_or(PULLEY_RECORDS)
        .min(n);
    let precs = &recs[..np];
    let pbytes: usize = precs.iter().map(Vec::len).sum();

    // Build first (cargo, the scripts' commands): not part of start-up.
    fluent_bit::wasm_bytes();
    component::component_path();
    let node = if args.iter().any(|a| a == "--no-js") {
        Err("--no-js".to_owned())
    } else {
        Node::prepare(&recs)
    };

    let cranelift = Runtime::new("Cranelift", Engine::default());
    let pulley = (np > 0).then(|| Runtime::new("Pulley", pulley_engine()));
    for rt in std::iter::once(&cranelift).chain(&pulley) {
        rt.check(&recs);
    }

    // Native output bytes: every surface must produce the same amount.
    let (native_out, native_out_p) = {
        let mut e = Enricher::new(Config::default()).expect("config");
        let lens: Vec<usize> = recs.iter().map(|r| e.process(r, None).len()).collect();
        (lens.iter().sum::<usize>(), lens[..np].iter().sum::<usize>())
    };

    let rounds = if bench { 3 } else { 1 };
    let mut native = Duration::MAX;
    let mut native_p = Duration::MAX;
    let mut cl = [Duration::MAX; 2];
    let mut pl = [Duration::MAX; 2];
    let mut js: Option<JsRound> = None;
    let mut out = Vec::with_capacity(16384);
    for _ in 0..rounds {
        let mut e = Enricher::new(Config::default()).expect("config");
        let start = Instant::now();
        let mut at_np = start;
        for (i, r) in recs.iter().enumerate() {
            if i == np {
                at_np = Instant::now();
            }
            out.clear();
            e.process_into(r, None, &mut out);
            black_box(&out);
        }
        let end = Instant::now();
        native = native.min(end - start);
        native_p = native_p.min(if np == n { end } else { at_np } - start);

        for (best, (d, o)) in cl.iter_mut().zip(cranelift.round(&recs)) {
            assert_eq!(o, native_out, "output bytes differ from native");
            *best = (*best).min(d);
        }
        if let Ok(node) = &node {
            let r = node.round();
            assert_eq!(
                r.out_bytes, native_out,
                "JS output bytes differ from native"
            );
            js = Some(match js {
                None => r,
                Some(b) => JsRound {
                    out_bytes: r.out_bytes,
                    load: b.load.min(r.load),
                    process: b.process.min(r.process),
                    process_string: b.process_string.min(r.process_string),
                },
            });
        }
        if let Some(p) = &pulley {
            for (best, (d, o)) in pl.iter_mut().zip(p.round(precs)) {
                assert_eq!(o, native_out_p, "output bytes differ from native");
                *best = (*best).min(d);
            }
        }
    }

    println!(
        "{n} generated records, {:.1} MB, avg {} B/record; {rounds} round(s), alternating, best kept\n",
        bytes as f64 / 1e6,
        bytes / n
    );
    println!("| surface | runtime | records/s | MB/s | time ÷ native | throughput vs native |");
    println!("|---|---|---|---|---|---|");
    let row = |name: &str, rt: &str, d: Duration, (n, bytes, native): (usize, usize, Duration)| {
        let s = d.as_secs_f64();
        println!(
            "| {name} | {rt} | {:.0} | {:.1} | {:.2} | {:.0}% |",
            n as f64 / s,
            bytes as f64 / s / 1e6,
            s / native.as_secs_f64(),
            100.0 * native.as_secs_f64() / s
        );
    };
    let all = (n, bytes, native);
    let fb = "Fluent Bit filter module (wasm32-wasip1)";
    let comp = "WIT component (wasm32-wasip2), `process`";
    row("library (`process_into`)", "native", native, all);
    row(fb, "wasmtime 48, Cranelift", cl[0], all);
    row(comp, "wasmtime 48, Cranelift", cl[1], all);
    let node_rt = node.as_ref().map(|n| format!("Node {}", n.version));
    if let (Some(r), Ok(rt)) = (&js, &node_rt) {
        row("JS package (wasm-bindgen), `process`", rt, r.process, all);
        let name = "JS package (wasm-bindgen), `processString`";
        row(name, rt, r.process_string, all);
    }
    if pulley.is_some() {
        let sub = (np, pbytes, native_p);
        let rt = "wasmtime 48, Pulley interpreter";
        let note = if np < n {
            format!(" (first {np} records)")
        } else {
            String::new()
        };
        row(&format!("{fb}{note}"), rt, pl[0], sub);
        row(&format!("{comp}{note}"), rt, pl[1], sub);
    }
    if let Err(why) = &node {
        println!("\nJS package in Node: skipped ({why})");
    }

    println!("\nStart-up, once per instance (not in the figures above):\n");
    println!("| surface | runtime | compile | instantiate |");
    println!("|---|---|---|---|");
    for rt in std::iter::once(&cranelift).chain(&pulley) {
        let name = format!("wasmtime 48, {}", rt.name);
        let (c, i) = (rt.compile, rt.instantiate);
        println!("| Fluent Bit module | {name} | {:.2?} | {:.2?} |", c.0, i.0);
        println!("| WIT component | {name} | {:.2?} | {:.2?} |", c.1, i.1);
    }
    if let (Some(r), Ok(rt)) = (&js, &node_rt) {
        println!(
            "| JS package | {rt} | {:.2?} (`require`, compile and instantiate) | - |",
            r.load
        );
    }
    cranelift
}

/// The capped configuration of the second memory run (the one of the 50k
/// plateau test in tests/fluent_bit.rs): the byte cap binds from ~20,000
/// records on, so the state stops growing early in the stream (default caps:
/// 1,000,000 sets, 512 MiB). Under an entry cap alone the state's bytes still
/// rise for ~600,000 records, as sets get bigger.
const CAPPED: &str = r#"{"max_entries":500,"max_bytes":262144}"#;

/// Linear memory of one Fluent Bit instance as the stream goes on, with the
/// default configuration and with [`CAPPED`]. WebAssembly memory never
/// shrinks, so it follows the state's high-water mark: with the defaults it
/// must stay within a bound of the native state's peak (the generated stream
/// keeps adding principals, so that peak still rises at 1M records), and
/// once the caps bind it must be flat.
fn memory(n: usize, cranelift: Option<&Runtime>) {
    let engine_module = cranelift.map(|rt| (&rt.engine, &rt.module));
    let (engine, module) = engine_module.unwrap_or_else(|| {
        let (e, m) = fluent_bit::compiled();
        (e, m)
    });
    for config in [None, Some(CAPPED)] {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut dirs = Vec::new();
        if let Some(json) = config {
            std::fs::write(dir.path().join("config.json"), json).expect("config.json");
            dirs.push((dir.path(), fluent_bit::CONFIG_DIR));
        }
        let mut fb = fluent_bit::FluentBit::start_in(engine, module, &dirs);
        let cfg = config.map_or_else(Config::default, |j| {
            Config::from_json(j.as_bytes()).expect("config")
        });
        let mut e = Enricher::new(cfg).expect("config");
        println!(
            "\nFluent Bit module linear memory over {n} records (one instance, wasmtime), config {}:\n",
            config.unwrap_or("default")
        );
        println!(
            "| records | pages (64 KiB) | bytes | MiB | tracked sets now / peak so far (native, same stream) | state bytes, peak so far (native) |"
        );
        println!("|---|---|---|---|---|---|");
        let step = (n / 10).max(1);
        let mut it = trail(TrailConfig {
            seed: 5,
            records: n,
            ..Default::default()
        });
        let mut sizes = Vec::new();
        let (mut peak_sets, mut peak_bytes) = (0, 0);
        for i in 1..=n {
            let Some(r) = it.next() else { break };
            black_box(fb.call(TIME, r.line.as_bytes()));
            e.process(r.line.as_bytes(), None);
            let st = e.stats();
            peak_sets = peak_sets.max(st.tracked_sets);
            peak_bytes = peak_bytes.max(st.state_bytes);
            if i % step == 0 {
                let b = fb.memory_bytes();
                sizes.push(b);
                println!(
                    "| {i} | {} | {b} | {:.1} | {} / {peak_sets} | {peak_bytes} |",
                    b >> 16,
                    b as f64 / (1 << 20) as f64,
                    st.tracked_sets
                );
                // Never more than twice the native estimate (which counts
                // 64-bit pointers) plus the module's fixed few MiB.
                assert!(
                    b as u64 <= 2 * peak_bytes + (4 << 20),
                    "linear memory {b} B outgrew the state (peak {peak_bytes} B): {sizes:?}"
                );
            }
        }
        if config.is_some() {
            // Capped: the second half of the stream adds nothing beyond a
            // few pages of allocator slack.
            let mid = sizes[(sizes.len() / 2).saturating_sub(1)];
            let last = *sizes.last().expect("samples");
            assert!(
                last <= mid + (256 << 10),
                "linear memory kept growing under the caps: {sizes:?}"
            );
        }
    }
}
