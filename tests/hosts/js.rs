//! Test host for the JavaScript package: builds it with `scripts/build-js.sh` under the test's target directory. Shared by `tests/js.rs` and `tests/parity.rs`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

pub fn run(cmd: &mut Command, what: &str) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run it ({e}); is it installed?"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Build `dist/js` under this test's target directory; the package directory.
pub fn build_package(tmp: &Path) -> PathBuf {
    let dist = tmp.join("dist-js");
    run(
        Command::new("bash")
            .arg(root().join("scripts/build-js.sh"))
            .env("CARGO_TARGET_DIR", tmp.join("wasm-js"))
            .env("DIST_DIR", &dist)
            .env("CARGO", env!("CARGO")),
        "scripts/build-js.sh (needs the wasm-bindgen CLI and the wasm32-unknown-unknown target)",
    );
    dist.join("js")
}
