#!/usr/bin/env bash
# SIEM checks (pipelines/): Sigma rules converted with pySigma's Splunk and
# Elasticsearch backends and evaluated on real annotated records, the Elastic
# templates and the Splunk .conf files. Needs python3 (>= 3.10) with pip; no
# Splunk or Elasticsearch. When cargo is installed the credlineage CLI is built
# and run on the fixture trails; without it the checked-in golden outputs are
# used and the live-CLI checks are skipped. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
step() { printf '\n==> %s\n' "$*"; }

py="${PYTHON:-python3}"
command -v "$py" >/dev/null || { echo "python3 not found" >&2; exit 1; }
"$py" -c 'import sys; sys.exit(sys.version_info < (3, 10))' ||
  { echo "$py is $("$py" -V 2>&1); pySigma needs Python >= 3.10 (set PYTHON=python3.11)" >&2; exit 1; }

target="${CARGO_TARGET_DIR:-target}"
mkdir -p "$target"
req=pipelines/sigma/requirements.txt
pytest_pin="pytest==9.2.0"
want="$("$py" -c 'import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],"rb").read()+sys.argv[2].encode()+sys.version.encode()).hexdigest())' "$req" "$pytest_pin")"

# A venv under the cargo target directory (ignored by git), rebuilt when the
# requirements change. Where the venv module is missing (Debian without
# python3-venv), fall back to pip --target.
venv="$target/siem-venv"
deps="$target/siem-pydeps"
if [ -x "$venv/bin/python" ] && [ "$(cat "$venv/.stamp" 2>/dev/null)" = "$want" ]; then
  run=("$venv/bin/python")
elif [ -d "$deps" ] && [ "$(cat "$deps/.stamp" 2>/dev/null)" = "$want" ]; then
  run=(env "PYTHONPATH=$deps" "$py")
else
  step "installing $req and $pytest_pin"
  rm -rf "$venv" "$deps"
  if "$py" -m venv "$venv" 2>/dev/null && "$venv/bin/python" -m pip --version >/dev/null 2>&1; then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req" "$pytest_pin"
    echo "$want" > "$venv/.stamp"
    run=("$venv/bin/python")
  else
    rm -rf "$venv"
    "$py" -m pip install --quiet --disable-pip-version-check --target "$deps" -r "$req" "$pytest_pin"
    echo "$want" > "$deps/.stamp"
    run=(env "PYTHONPATH=$deps" "$py")
  fi
fi

if [ -z "${CREDLINEAGE_BIN:-}" ] && command -v cargo >/dev/null; then
  step "cargo build --release (the CLI the tests run)"
  cargo build --release --quiet --bin credlineage
  export CREDLINEAGE_BIN="$target/release/credlineage"
fi

step "pytest pipelines/"
export PYTHONDONTWRITEBYTECODE=1
exec "${run[@]}" -m pytest pipelines -p no:cacheprovider -q "$@"
