#!/usr/bin/env python3
"""Run ../shared/tools/fluent-bit/perf.py several times and summarize each filter.

One perf.py run measures each pipeline once (about 2 s of CPU for 100,000
records); on a shared machine one run's share of the empty filter's
throughput moves by up to ten points from run to run. This runs it ROUNDS
times over the same variants and prints, per variant, every share, the median
share and the median own cost (µs per record). Read the medians.

usage: scripts/fluent-bit-rounds.py ROUNDS PERF_PY FLUENT_BIT TRAIL EMPTY.wasm:fn VARIANT.wasm|.aot:fn ...
"""
import re
import statistics
import subprocess
import sys


def main() -> None:
    if len(sys.argv) < 6:
        sys.exit(__doc__)
    rounds, perf, fb, trail, *variants = sys.argv[1:]
    shares: dict[str, list[int]] = {}
    costs: dict[str, list[float]] = {}
    line = re.compile(r"(\S+): (\d+)% of the empty filter's throughput; filter's own cost (-?[\d.]+) us/record")
    for i in range(int(rounds)):
        run = subprocess.run([sys.executable, perf, fb, trail, *variants], capture_output=True, text=True)
        if run.returncode != 0:
            sys.exit(f"perf.py failed in round {i + 1}:\n{run.stdout}{run.stderr}")
        for out in run.stdout.splitlines():
            if " out " in out and "annotated" in out:
                print(f"round {i + 1}: {out}", flush=True)
            m = line.match(out)
            if m:
                shares.setdefault(m.group(1), []).append(int(m.group(2)))
                costs.setdefault(m.group(1), []).append(float(m.group(3)))
    print(f"\n{'variant':32} {'median share':>12} {'median own µs':>14}  shares, round by round")
    for name, s in shares.items():
        print(f"{name:32} {statistics.median(s):>11}% {statistics.median(costs[name]):>14.1f}  {s}")


if __name__ == "__main__":
    main()
