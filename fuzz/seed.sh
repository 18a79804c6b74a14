#!/usr/bin/env bash
# Build fuzz/corpus/<target>/ from the repository's fixtures: one record per
# file for `record`, whole fixture files for `stream`, state snapshots made
# by the CLI from the fixtures for `snapshot`. Re-runnable; the corpus is not
# committed (fuzz/regressions/ holds the inputs worth keeping).
set -euo pipefail
cd "$(dirname "$0")/.."
c=fuzz/corpus
mkdir -p "$c/record" "$c/stream" "$c/snapshot" "$c/document"
n=0
for f in tests/fixtures/*.jsonl tests/data/stratus-red-team/*.json*; do
  [ -f "$f" ] || continue
  # stream: the file itself (a leading selector byte 0 = default config)
  { printf '\0'; cat "$f"; } > "$c/stream/$(basename "$f")"
  # document: the file's first lines as a one-line S3 delivery file
  # (`jq` is not assumed: the lines are compact records already)
  case "$f" in *.jsonl)
    { printf '{"Records":['; head -n 8 "$f" | paste -sd, -; printf ']}'; } > "$c/document/$(basename "$f" .jsonl).json"
  esac
  while IFS= read -r line; do
    n=$((n + 1))
    printf '%s' "$line" > "$c/record/r$n"
  done < "$f"
done
cargo build --release --quiet --bin credlineage
bin="${CARGO_TARGET_DIR:-target}/release/credlineage"
for f in tests/fixtures/*.jsonl; do
  "$bin" enrich -q --order stream --state "$c/snapshot/$(basename "$f" .jsonl).state" "$f" > /dev/null || true
done
echo "seeds: $(ls "$c/record" | wc -l) records, $(ls "$c/stream" | wc -l) streams, $(ls "$c/snapshot" | wc -l) snapshots, $(ls "$c/document" | wc -l) documents"
