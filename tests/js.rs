//! The JavaScript package in Node: build it with `scripts/build-js.sh`, pack it with `npm pack`, write the native `Enricher`'s outputs, and run `node --test tests/js/` against them.
//!
//! The build runs every time (cargo makes it a no-op when nothing changed),
//! with its own target directory under this test's, so the package tested is
//! always the current source. No node, npm, wasm-bindgen CLI or
//! `wasm32-unknown-unknown` target is a failure, never a skip.

use credlineage::generate::{TrailConfig, trail};
use credlineage::{Config, Enricher};
use std::path::Path;
use std::process::Command;

#[path = "hosts/js.rs"]
mod js_host;
use js_host::{build_package, run};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `npm pack` the package and unpack the tarball as
/// `<dir>/node_modules/credlineage`, the way `npm install` lays it out.
fn pack_and_install(pkg: &Path, dir: &Path) {
    let packed = dir.join("packed");
    std::fs::create_dir_all(&packed).unwrap();
    let name = run(
        Command::new("npm")
            .args(["pack", "--silent", "--pack-destination"])
            .arg(&packed)
            .current_dir(pkg),
        "npm pack",
    );
    let tarball = packed.join(name.trim());
    let dest = dir.join("node_modules/credlineage");
    std::fs::create_dir_all(&dest).unwrap();
    run(
        Command::new("tar")
            .arg("-xzf")
            .arg(&tarball)
            .arg("--strip-components=1")
            .arg("-C")
            .arg(&dest),
        "tar",
    );
}

fn lines(bytes: &[u8]) -> Vec<&[u8]> {
    bytes
        .split(|&c| c == b'\n')
        .filter(|l| !l.is_empty())
        .collect()
}

/// Input and native output of one stream, one record a line.
fn write_stream(data: &Path, name: &str, records: &[&[u8]]) {
    let mut e = Enricher::new(Config::default()).unwrap();
    let mut input = Vec::new();
    let mut output = Vec::new();
    for r in records {
        input.extend_from_slice(r);
        input.push(b'\n');
        output.extend(e.process(r, None));
        output.push(b'\n');
    }
    std::fs::write(data.join(format!("{name}.in.jsonl")), input).unwrap();
    std::fs::write(data.join(format!("{name}.native.jsonl")), output).unwrap();
    std::fs::write(data.join(format!("{name}.native.snapshot")), e.snapshot()).unwrap();
}

#[test]
fn node_tests_pass_against_native_output() {
    let node = run(Command::new("node").arg("--version"), "node --version");
    let major: u32 = node
        .trim()
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    assert!(major >= 18, "node {node} is too old for `node --test`");

    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let pkg = build_package(tmp);
    for f in [
        "package.json",
        "README.md",
        "pkg/node/credlineage.js",
        "pkg/node/credlineage_bg.wasm",
        "pkg/web/credlineage.js",
        "pkg/web/credlineage_bg.wasm",
        "pkg/web/credlineage.d.ts",
    ] {
        assert!(pkg.join(f).is_file(), "{f} missing from the package");
    }

    let data = tempfile::tempdir().unwrap();
    let data = data.path();
    pack_and_install(&pkg, data);

    // Native outputs: the fixtures, and a 10k generated trail (whole, and
    // the snapshot after its first half for the cross-surface restore).
    for name in ["scenarios", "stratus"] {
        let text = std::fs::read(root().join(format!("tests/fixtures/{name}.jsonl"))).unwrap();
        write_stream(data, name, &lines(&text));
    }
    let trail: Vec<String> = trail(TrailConfig {
        seed: 1,
        records: 10_000,
        ..Default::default()
    })
    .map(|r| r.line)
    .collect();
    let trail: Vec<&[u8]> = trail.iter().map(|l| l.as_bytes()).collect();
    write_stream(data, "trail10k", &trail);
    let mut half = Enricher::new(Config::default()).unwrap();
    for r in &trail[..5_000] {
        half.process(r, None);
    }
    std::fs::write(data.join("trail10k.half.snapshot"), half.snapshot()).unwrap();

    let out = Command::new("node")
        .arg("--test")
        .arg(root().join("tests/js/"))
        .env("CREDLINEAGE_JS_PKG", &pkg)
        .env("CREDLINEAGE_JS_DATA", data)
        .output()
        .expect("run node --test");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "node --test failed:\n{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(report.contains("# fail 0"), "{report}");
    for l in report.lines().filter(|l| {
        l.starts_with("ok ")
            || l.starts_with("not ok ")
            || l.starts_with("# tests")
            || l.starts_with("# pass")
    }) {
        eprintln!("node: {l}");
    }

    // The snapshot the JS enricher wrote after the whole trail: the same
    // bytes as the native one, and the native enricher restores it.
    let js_snap =
        std::fs::read(data.join("trail10k.js.snapshot")).expect("node wrote its snapshot");
    let native_snap = std::fs::read(data.join("trail10k.native.snapshot")).unwrap();
    assert!(js_snap == native_snap, "JS and native snapshots differ");
    let mut e = Enricher::new(Config::default()).unwrap();
    e.restore(&js_snap)
        .expect("native restores the JS snapshot");
}
