"""Brute-force top-k: numpy's partial sort against torch.topk, by centroid count.

One block of 1,024 unit-norm 64-d queries, k=20, median of 20 calls each;
sets ``TORCH_TOPK_MIN_CENTROIDS`` in ``sklearn_clmle/_search.py``.

Usage::

    python benchmarks/bench_topk.py [--out benchmarks/results/topk.md]
"""

import argparse
import time

import numpy as np
from _data import normalised_blobs
from _report import write_report

from sklearn_clmle._search import _brute_top_k, _top_k


def median_ms(fn, repeats=20):
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(times))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results/topk.md")
    args = parser.parse_args()
    Q, _ = normalised_blobs(1_024, seed=1)
    lines = [
        "# Brute-force top-20 per block of 1,024 queries (ms, median of 20)",
        "",
        "| centroids | numpy matmul + partial sort | torch matmul + topk |",
        "|---|---|---|",
    ]
    for n in (50, 200, 500, 1_000, 2_000, 5_000, 20_000):
        C, _ = normalised_blobs(n, seed=n)
        t_np = median_ms(lambda: _top_k(Q @ C.T, 20))
        t_torch = median_ms(lambda: _brute_top_k(Q, C, 20))
        lines.append(f"| {n:,} | {t_np:.2f} | {t_torch:.2f} |")
        print(lines[-1], flush=True)
    write_report(lines, args.out)


if __name__ == "__main__":
    main()
