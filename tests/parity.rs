//! One parity test over every surface: the same record stream (the scenario and Stratus fixtures plus a 10,000-record generated trail with the v1.1 shapes) through the native library, the CLI, `serve` over TCP, the Fluent Bit module, the WIT component and the JavaScript package must give the same bytes.

#[path = "hosts/component.rs"]
mod component_host;
#[path = "hosts/fluent_bit.rs"]
mod fb_host;
#[path = "hosts/js.rs"]
mod js_host;

use credlineage::generate::{TrailConfig, trail};
use credlineage::{Config, Enricher};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

fn fixture_lines(name: &str) -> Vec<Vec<u8>> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .split(|&c| c == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

fn the_stream() -> Vec<Vec<u8>> {
    let mut s = fixture_lines("scenarios.jsonl");
    s.extend(fixture_lines("stratus.jsonl"));
    s.extend(
        // The v1.1 shapes (SPEC v1.1): VPC-endpoint-only instances, NAT
        // gateways, pivots, Elastic IP moves, dual stack, Identity Center,
        // service-linked roles, same-second chains, Lake times, duplicated
        // and late deliveries.
        trail(TrailConfig {
            seed: 11,
            records: 10_000,
            ..TrailConfig::v11()
        })
        .map(|r| r.line.into_bytes()),
    );
    s
}

fn ndjson(records: &[Vec<u8>]) -> Vec<u8> {
    let mut v = Vec::new();
    for r in records {
        v.extend_from_slice(r);
        v.push(b'\n');
    }
    v
}

fn split(b: &[u8]) -> Vec<Vec<u8>> {
    b.split(|&c| c == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

fn assert_same(surface: &str, got: &[Vec<u8>], want: &[Vec<u8>]) {
    assert_eq!(got.len(), want.len(), "{surface}: record count");
    if let Some(i) = (0..want.len()).find(|&i| got[i] != want[i]) {
        panic!(
            "{surface}: record {i} differs from the native library\n got: {}\nwant: {}",
            String::from_utf8_lossy(&got[i]),
            String::from_utf8_lossy(&want[i])
        );
    }
}

fn cli(input: &[u8]) -> Vec<Vec<u8>> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_credlineage"))
        .args(["enrich", "--order", "stream", "-q"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run credlineage");
    let mut stdin = child.stdin.take().expect("stdin");
    let data = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&data));
    let out = child.wait_with_output().expect("wait");
    writer.join().expect("writer").expect("write stdin");
    assert!(out.status.success());
    split(&out.stdout)
}

/// `serve` with output on stdout: one TCP connection sends the stream.
fn serve(input: &[u8], n: usize) -> Vec<Vec<u8>> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_credlineage"))
        .args(["serve", "--listen", "127.0.0.1:0", "-q"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run credlineage serve");
    let mut err = BufReader::new(child.stderr.take().expect("stderr"));
    let mut addr = None;
    let mut line = String::new();
    while err.read_line(&mut line).unwrap_or(0) > 0 {
        if let Some(a) = line
            .rsplit("listening on ")
            .next()
            .filter(|_| line.contains("listening on "))
        {
            addr = Some(a.trim().to_string());
            break;
        }
        line.clear();
    }
    let addr = addr.expect("serve printed its address");
    std::thread::spawn(move || {
        let mut sink = String::new();
        let _ = err.read_to_string(&mut sink);
    });
    let mut conn = std::net::TcpStream::connect(&addr).expect("connect to serve");
    let data = input.to_vec();
    let writer = std::thread::spawn(move || {
        conn.write_all(&data)?;
        conn.shutdown(std::net::Shutdown::Write)
    });
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut got = Vec::new();
        let mut l = Vec::new();
        while got.len() < n {
            l.clear();
            match stdout.read_until(b'\n', &mut l) {
                Ok(0) | Err(_) => break,
                Ok(_) => got.push(l.strip_suffix(b"\n").unwrap_or(&l).to_vec()),
            }
        }
        let _ = tx.send(got);
    });
    let got = rx
        .recv_timeout(Duration::from_secs(120))
        .expect("serve answered in time");
    writer.join().expect("writer").expect("send to serve");
    let _ = child.kill();
    let _ = child.wait();
    got
}

fn javascript(input: &[u8]) -> Vec<Vec<u8>> {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR")).join("parity");
    std::fs::create_dir_all(&tmp).expect("tmp dir");
    let pkg = js_host::build_package(&tmp);
    let (i, o) = (tmp.join("in.jsonl"), tmp.join("out.jsonl"));
    std::fs::write(&i, input).expect("write input");
    js_host::run(
        Command::new("node")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/js/parity-run.mjs"))
            .arg(&pkg)
            .arg(&i)
            .arg(&o),
        "node tests/js/parity-run.mjs",
    );
    split(&std::fs::read(&o).expect("node output"))
}

#[test]
fn every_surface_gives_the_native_bytes() {
    let stream = the_stream();
    assert!(stream.len() > 10_000);
    let input = ndjson(&stream);
    let mut e = Enricher::new(Config::default()).expect("config");
    let native: Vec<Vec<u8>> = stream.iter().map(|r| e.process(r, None)).collect();

    assert_same("CLI enrich --order stream", &cli(&input), &native);
    assert_same("serve (TCP)", &serve(&input, stream.len()), &native);

    let mut fb = fb_host::FluentBit::start(&[]);
    let fluent: Vec<Vec<u8>> = stream.iter().map(|r| fb.call(0, r)).collect();
    assert_same("Fluent Bit module (wasmtime)", &fluent, &native);

    let mut c = component_host::Wasm::new("");
    let component: Vec<Vec<u8>> = stream.iter().map(|r| c.process(r)).collect();
    assert_same("WIT component (wasmtime)", &component, &native);

    assert_same("JavaScript package (Node)", &javascript(&input), &native);
}
