#!/usr/bin/env bash
# S3 delivery files against NDJSON, same records, one run (issue 11).
#
#   scripts/bench-s3.sh [RECORDS [PER_FILE [ROUNDS]]]   # defaults 1000000 2000 3
#
# Generates a trail (`credlineage generate --disorder 600`), writes it as
# CloudTrail's S3 delivery files `{"Records":[...]}` of PER_FILE records in an
# `AWSLogs/<acct>/CloudTrail/<region>/YYYY/MM/DD/` tree (records grouped by
# account and region in delivery order, as CloudTrail delivers them), once
# plain and once gzipped, and the same records in the tree's reading order as
# one NDJSON file. Then, alternating the inputs in each round and keeping each
# one's best wall time: `enrich --order stream` and batch mode (the default
# `--order time`) on the NDJSON file, the plain tree and the gzipped tree.
# Prints a markdown table with the ratios to NDJSON streaming (same run), and
# checks that streaming the tree gives the same bytes as streaming the file.
#
# Needs about 3.5x the NDJSON size free in $TMPDIR (1M records: ~4.5 GB);
# everything is removed at the end (unless KEEP=DIR: kept there and reused). The binary is the release build
# (thin LTO, the user profile): CARGO_TARGET_DIR/release/credlineage.
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-1000000}"
per_file="${2:-2000}"
rounds="${3:-3}"
target="${CARGO_TARGET_DIR:-target}"
cargo build --release --quiet --bin credlineage
bin="$(cd "$target/release" && pwd)/credlineage"
# KEEP=DIR: build the inputs in DIR once and keep them there (re-runs reuse them).
if [ -n "${KEEP:-}" ]; then
  tmp="$KEEP"
  mkdir -p "$tmp"
else
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
fi

if [ ! -s "$tmp/flat.jsonl" ]; then
"$bin" generate -n "$n" --seed 1 --disorder 600 -o "$tmp/trail.jsonl"
python3 - "$tmp" "$per_file" <<'PY'
import gzip, os, re, sys
tmp, per_file = sys.argv[1], int(sys.argv[2])
acct_re = re.compile(rb'"recipientAccountId":"(\d{12})"')
region_re = re.compile(rb'"awsRegion":"([a-z0-9-]+)"')
time_re = re.compile(rb'"eventTime":"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d)')
groups = {}   # (acct, region) -> [current file's lines]
files = []    # (path, lines)
def close(key):
    lines = groups.pop(key)
    acct, region = key
    m = time_re.search(lines[0])
    y, mo, d, hh, mm = (x.decode() for x in m.groups()) if m else ("2024", "01", "01", "00", "00")
    name = f"{acct}_CloudTrail_{region}_{y}{mo}{d}T{hh}{mm}Z_{len(files):06d}.json"
    files.append((f"AWSLogs/{acct}/CloudTrail/{region}/{y}/{mo}/{d}/{name}", lines))
with open(os.path.join(tmp, "trail.jsonl"), "rb") as f:
    for line in f:
        line = line.rstrip(b"\n")
        if not line:
            continue
        a = acct_re.search(line)
        r = region_re.search(line)
        key = (a.group(1).decode() if a else "111122223333", r.group(1).decode() if r else "us-east-1")
        groups.setdefault(key, []).append(line)
        if len(groups[key]) >= per_file:
            close(key)
for key in list(groups):
    close(key)
files.sort(key=lambda x: x[0].split("/"))
with open(os.path.join(tmp, "flat.jsonl"), "wb") as flat:
    for path, lines in files:
        body = b'{"Records":[' + b",".join(lines) + b"]}"
        for kind, data, suffix in (("plain", body, ""), ("gz", None, ".gz")):
            p = os.path.join(tmp, kind, path + suffix)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "wb") as o:
                o.write(data if data is not None else gzip.compress(body, 6))
        flat.write(b"\n".join(lines) + b"\n")
print(f"{sum(len(l) for _, l in files)} records in {len(files)} S3 delivery files of up to {per_file} records", file=sys.stderr)
PY
rm "$tmp/trail.jsonl"
fi
du -sh --apparent-size "$tmp/flat.jsonl" "$tmp/plain" "$tmp/gz" >&2

# Streaming the tree must give the bytes streaming the NDJSON file gives.
a=$("$bin" enrich --order stream -q "$tmp/flat.jsonl" | cksum)
b=$("$bin" enrich --order stream -q "$tmp/plain/AWSLogs" | cksum)
c=$("$bin" enrich --order stream -q "$tmp/gz/AWSLogs" | cksum)
if [ "$a" != "$b" ] || [ "$a" != "$c" ]; then
  echo "streaming the tree differs from streaming the NDJSON file: $a / $b / $c" >&2
  exit 1
fi

declare -A best rss
paths=(
  "ndjson-stream|--order stream $tmp/flat.jsonl"
  "plain-stream|--order stream $tmp/plain/AWSLogs"
  "gz-stream|--order stream $tmp/gz/AWSLogs"
  "ndjson-batch|$tmp/flat.jsonl"
  "plain-batch|$tmp/plain/AWSLogs"
  "gz-batch|$tmp/gz/AWSLogs"
)
for _ in $(seq "$rounds"); do
  for p in "${paths[@]}"; do
    name="${p%%|*}"
    # shellcheck disable=SC2086
    out=$( { /usr/bin/time -f "%e %M" "$bin" enrich -q ${p#*|} -o /dev/null; } 2>&1 | tail -1)
    t="${out% *}"
    if [ -z "${best[$name]:-}" ] || python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) < float(sys.argv[2]) else 1)" "$t" "${best[$name]}"; then
      best[$name]="$t"
      rss[$name]="${out#* }"
    fi
  done
done
python3 - "$n" "${best[ndjson-stream]}" \
  "${best[plain-stream]}" "${rss[plain-stream]}" "${best[gz-stream]}" "${rss[gz-stream]}" \
  "${best[ndjson-batch]}" "${rss[ndjson-batch]}" "${best[plain-batch]}" "${rss[plain-batch]}" \
  "${best[gz-batch]}" "${rss[gz-batch]}" "${rss[ndjson-stream]}" "$rounds" <<'PY'
import sys
a = sys.argv[1:]
n, base = int(a[0]), float(a[1])
rows = [
    ("NDJSON file", "`--order stream`", base, a[12]),
    ("S3 files, plain", "`--order stream`", float(a[2]), a[3]),
    ("S3 files, gzipped", "`--order stream`", float(a[4]), a[5]),
    ("NDJSON file", "batch (default)", float(a[6]), a[7]),
    ("S3 files, plain", "batch (default)", float(a[8]), a[9]),
    ("S3 files, gzipped", "batch (default)", float(a[10]), a[11]),
]
print(f"{n} records, best wall time of {a[13]} rounds (inputs alternated), output to /dev/null")
print()
print("| input | order | wall s | records/s | throughput vs NDJSON streaming | peak RSS MB |")
print("|---|---|---|---|---|---|")
for inp, order, t, r in rows:
    print(f"| {inp} | {order} | {t:.2f} | {n / t:,.0f} | {base / t:.0%} | {int(r) / 1024:.0f} |")
PY
