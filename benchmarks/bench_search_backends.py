"""Which centroid search is fastest, by number of centroids (for algorithm="auto").

Unit-norm 64-d centroids, 10,000 queries, N=20. Brute: the whole query time.
KD-tree and NN-descent: index build time and query time separately (the
index is built once per fit; queries repeat). numba's first compilation of
pynndescent is excluded (warmed on a small index first). Above 10,000
centroids the KD-tree is timed on 1,000 queries and scaled by 10.

Usage::

    python benchmarks/bench_search_backends.py [--sizes 1000 10000 50000 200000]
        [--out benchmarks/results/search_backends.md]
"""

import argparse
import time

from _data import normalised_blobs
from _report import write_report

from sklearn_clmle._search import CentroidIndex

N_QUERIES = 10_000


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 50_000, 200_000])
    parser.add_argument("--out", default="benchmarks/results/search_backends.md")
    args = parser.parse_args()
    Q, _ = normalised_blobs(N_QUERIES, seed=1)
    warm, _ = normalised_blobs(2_000, seed=2)
    CentroidIndex(warm, "nndescent", 1024, 0).query(warm[:10], 20)
    lines = [
        "# Centroid search backends",
        "",
        f"64-d unit-norm centroids, {N_QUERIES:,} queries, N=20; seconds. "
        "Recall: share of the exact top-20 that the backend returns.",
        "",
        "| centroids | brute query | kd_tree build | kd_tree query | nndescent build "
        "| nndescent query | nndescent recall |",
        "|---|---|---|---|---|---|---|",
    ]
    for n in args.sizes:
        C, _ = normalised_blobs(n, seed=n)
        row = {}
        exact = None
        for alg in ("brute", "kd_tree", "nndescent"):
            index = CentroidIndex(C, alg, 1024, 0)
            t0 = time.perf_counter()
            if alg != "brute":
                index._index = index._build()
            row[alg, "build"] = time.perf_counter() - t0
            sub = Q[:1_000] if alg == "kd_tree" and n > 10_000 else Q
            t0 = time.perf_counter()
            _, idx = index.query(sub, 20)
            row[alg, "query"] = (time.perf_counter() - t0) * len(Q) / len(sub)
            if exact is None:
                exact = idx
            else:
                hits = sum(len(set(a) & set(b)) for a, b in zip(idx, exact))
                row[alg, "recall"] = hits / idx.size
        lines.append(
            f"| {n:,} | {row['brute', 'query']:.3f} | {row['kd_tree', 'build']:.3f} "
            f"| {row['kd_tree', 'query']:.3f} | {row['nndescent', 'build']:.3f} "
            f"| {row['nndescent', 'query']:.3f} | {row['nndescent', 'recall']:.3f} |"
        )
        print(lines[-1], flush=True)
    write_report(lines, args.out)


if __name__ == "__main__":
    main()
