"""Peak memory of CLMLEEmbedder.fit and .transform, one fresh process per case.

Each case runs in its own Python process; the table gives the process's peak
resident set size (ru_maxrss) after imports and data creation, and after the
measured call, against the size of the input and output arrays.

Usage::

    python benchmarks/bench_memory.py [--out benchmarks/results/memory.md]
"""

import argparse
import json
import subprocess
import sys

from _report import write_report

CASE = r"""
import json, resource, sys
import numpy as np
sys.path.insert(0, "benchmarks")
from _data import normalised_blobs
from sklearn_clmle import CLMLEEmbedder
kind, n = sys.argv[1], int(sys.argv[2])
def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # MiB
X_fit, y_fit = normalised_blobs(20_000, seed=0)
est = CLMLEEmbedder(n_rounds=1, iterations_per_round=20, warmup_iterations=20,
                    cluster_size=200, random_state=0)
if kind == "transform":
    est.fit(X_fit, y_fit)
    X, _ = normalised_blobs(n, seed=1)
    before = peak()
    Z = est.transform(X)
    out_mb = Z.nbytes / 2**20
else:
    X, y = normalised_blobs(n, seed=1)
    before = peak()
    est.fit(X, y)
    out_mb = 0.0
print(json.dumps({"before": before, "after": peak(), "in": X.nbytes / 2**20, "out": out_mb}))
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results/memory.md")
    args = parser.parse_args()
    lines = [
        "# CLMLEEmbedder memory",
        "",
        "64-d float32 input, default MLP (64 -> 512 -> 64). fit: 1 round of 20",
        "iterations after 20 warm-up iterations, `cluster_size=200`; transform",
        "uses `inference_batch_size=4096`. MiB.",
        "",
        "| call | rows | input | output | peak RSS before | peak RSS after | growth |",
        "|---|---|---|---|---|---|---|",
    ]
    for kind, n in (("fit", 200_000), ("fit", 1_000_000), ("transform", 1_000_000)):
        res = subprocess.run(
            [sys.executable, "-c", CASE, kind, str(n)], capture_output=True, text=True,
            check=True,
        )
        r = json.loads(res.stdout.strip().splitlines()[-1])
        lines.append(
            f"| {kind} | {n:,} | {r['in']:.0f} | {r['out']:.0f} | {r['before']:.0f} "
            f"| {r['after']:.0f} | {r['after'] - r['before']:.0f} |"
        )
        print(lines[-1], flush=True)
    write_report(lines, args.out)


if __name__ == "__main__":
    main()
