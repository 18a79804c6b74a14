//! Pins the bytes of `credlineage generate`: the benchmarks, golden runs and BENCHMARKS.md figures all assume the same seed gives the same trail, release after release, so a refactor of the generator must not change one byte.
//!
//! The SHA-256 of the built command's output for four configurations (the v1
//! mix, many accounts out of order, the v1.1 shapes, CloudWatch envelopes).
//! After an intended change of the trail, update the digests here and say why
//! in the commit (and re-measure what BENCHMARKS.md quotes).

use sha2::{Digest, Sha256};
use std::process::Command;

fn digest_of_generate(args: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_credlineage"))
        .arg("generate")
        .args(args.split_whitespace())
        .output()
        .expect("run credlineage generate");
    assert!(out.status.success(), "generate {args}: {out:?}");
    assert!(!out.stdout.is_empty());
    hex::encode(Sha256::digest(&out.stdout))
}

#[test]
fn generated_trails_are_byte_for_byte_as_pinned() {
    let pinned = [
        (
            "-n 30000 --seed 1",
            "9b2eb3acf4f283839cda2776198cb7a9dff161741c56905fcfb8b2efed9eb545",
        ),
        (
            "-n 30000 --seed 7 --accounts 20 --disorder 600",
            "f7169ecee25c87cc561aaf4cd8e58bc60d58eb2495c7443d99d49364985b7848",
        ),
        (
            "-n 30000 --seed 3 --shapes v1.1 --disorder 300",
            "c700c2aa2c96751061c79d29eca10ea639fcc7ef3714be24ed7a9b85e2ffd10f",
        ),
        (
            "-n 20000 --seed 5 --shapes v1.1 --cloudwatch-per-mille 200 --accounts 7",
            "40905ff760d70351ffd0aa987cd65d14e2aa8681a0a5c09a57f2760a2f71af55",
        ),
    ];
    for (args, want) in pinned {
        assert_eq!(digest_of_generate(args), want, "generate {args}");
    }
}
