#!/usr/bin/env python3
"""Compare two credlineage CLI builds on the same NDJSON trail, on stdin, in
one run: the two alternate over N rounds and each keeps its best CPU time
(user + system of the child), which a shared, noisy machine disturbs less than
wall time. Prints the ratio new/old of throughput.

    scripts/ab-cli.py OLD_BIN NEW_BIN TRAIL.jsonl [ROUNDS] [-- extra args]

Example (the SPEC v1.1 cost in BENCHMARKS.md): build the older commit into
another target directory, generate the trail with either binary
(`credlineage generate -n 200000 --seed 3`), then run this.
"""
import resource
import subprocess
import sys


def main() -> None:
    argv = sys.argv[1:]
    extra = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1:]
    if len(argv) < 3:
        sys.exit(__doc__)
    old, new, trail = argv[:3]
    rounds = int(argv[3]) if len(argv) > 3 else 11
    args = ["enrich", "-q", *extra, "-"]
    best = {"old": float("inf"), "new": float("inf")}

    def cpu() -> float:
        r = resource.getrusage(resource.RUSAGE_CHILDREN)
        return r.ru_utime + r.ru_stime

    for r in range(rounds):
        order = [("old", old), ("new", new)]
        if r % 2:
            order.reverse()
        for name, binary in order:
            with open(trail, "rb") as f:
                c0 = cpu()
                subprocess.run([binary, *args], stdin=f, stdout=subprocess.DEVNULL, check=True)
                best[name] = min(best[name], cpu() - c0)
    print(f"old {best['old']:.3f} s, new {best['new']:.3f} s CPU (best of {rounds}); "
          f"new/old throughput = {best['old'] / best['new']:.3f}")


if __name__ == "__main__":
    main()
