"""Shared fixtures for the SIEM tests under pipelines/ (Sigma, Elastic, Splunk).

The tests run on *real annotated output*: the credlineage CLI run on the
project's fixture trails. Where the CLI comes from, in order:

1. `CREDLINEAGE_BIN` (path to a built `credlineage` binary), as
   scripts/test-siem.sh sets it;
2. `cargo`, when it is on PATH: `cargo build --release` once (honours
   CARGO_TARGET_DIR), then the binary it built;
3. neither: the checked-in golden outputs (`tests/fixtures/*.expected.jsonl`,
   which the Rust golden tests keep byte-equal to the CLI's output, and
   `pipelines/tests/fixtures/siem-extra.expected.jsonl`). The tests that need a
   live CLI are then skipped, and the header of the run says so.

The datasets in `siem_testlib.HANDWRITTEN` (SPEC v1.1 records written by hand
before the engine implemented v1.1) always come from their golden file.
"""
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from siem_testlib import DATASETS, HANDWRITTEN, REPO, cargo_binary


@pytest.fixture(scope="session")
def credlineage_bin():
    """Path of a built CLI, or None when neither CREDLINEAGE_BIN nor cargo is available."""
    env = os.environ.get("CREDLINEAGE_BIN")
    if env:
        p = Path(env)
        assert p.is_file(), f"CREDLINEAGE_BIN={env} is not a file"
        return p.resolve()
    return cargo_binary()


def _parse(text, name):
    records = []
    for i, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as e:
            raise AssertionError(f"{name}: line {i} of the CLI output is not JSON: {e}") from None
    return records


@pytest.fixture(scope="session")
def cli_output(credlineage_bin):
    """{dataset: (raw NDJSON text, source description)} for every dataset."""
    out = {}
    for name, (cwd, arg, golden) in DATASETS.items():
        if credlineage_bin is not None and name not in HANDWRITTEN:
            r = subprocess.run([str(credlineage_bin), "enrich", arg], cwd=cwd, capture_output=True, text=True)
            assert r.returncode == 0, f"credlineage enrich {arg} failed ({r.returncode}): {r.stderr}"
            out[name] = (r.stdout, f"{credlineage_bin} enrich {arg}")
        else:
            out[name] = (golden.read_text(), f"golden {golden.relative_to(REPO)}")
    return out


@pytest.fixture(scope="session")
def annotated(cli_output):
    """{dataset: [record, ...]} — real annotated CloudTrail records."""
    return {name: _parse(text, name) for name, (text, _) in cli_output.items()}


@pytest.fixture(scope="session")
def all_records(annotated):
    return [r for recs in annotated.values() for r in recs]


def pytest_report_header(config):
    if os.environ.get("CREDLINEAGE_BIN"):
        src = f"CREDLINEAGE_BIN={os.environ['CREDLINEAGE_BIN']}"
    elif shutil.which("cargo") and not os.environ.get("CREDLINEAGE_NO_CARGO"):
        src = "cargo build --release (binary from the cargo target directory)"
    else:
        src = "no CLI available: checked-in golden outputs; live-CLI tests are skipped"
    hand = ", ".join(sorted(HANDWRITTEN))
    return f"credlineage annotated records from: {src}" + (f"; hand-written (not CLI output): {hand}" if hand else "")
