"""Predict time of KNearestClusterClassifier against scikit-learn's kNN.

Same L2-normalised 64-d data (10 classes), ``cluster_size=200``, N=20
retrieved centroids, 10,000 queries, n_train in {10k, 100k, 1M}. kNN is
``KNeighborsClassifier(n_neighbors=20)`` with ``algorithm="brute"`` and with
its tree algorithms (``kd_tree``, ``ball_tree``); the tree algorithms are
timed on 1,000 of the queries and scaled by 10 (they take minutes in 64-d).
k-NC predict times are the best of 3 calls (each takes well under a second);
kNN's are single calls.
Fit time of k-NC (the equal-size clustering) is its own column.

Usage::

    python benchmarks/bench_knc_speed.py [--sizes 10000 100000 1000000]
        [--out benchmarks/results/knc_speed.md]
"""

import argparse
import time

from _data import normalised_blobs
from _report import write_report
from sklearn.neighbors import KNeighborsClassifier

from sklearn_clmle import KNearestClusterClassifier

N_QUERIES = 10_000
TREE_QUERIES = 1_000


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--out", default="benchmarks/results/knc_speed.md")
    args = parser.parse_args()
    lines = [
        "# k-nearest-cluster vs instance kNN: predict time",
        "",
        f"64-d unit-norm data, 10 classes, {N_QUERIES:,} queries, N = k = 20, "
        "`cluster_size=200`. Ratios are kNN predict time over k-NC predict time "
        f"(higher is better). Tree kNN timed on {TREE_QUERIES:,} queries x 10; "
        "k-NC times are the best of 3 calls, kNN times single calls.",
        "",
        "| n_train | centroids | k-NC fit (s) | k-NC brute (s) | k-NC kd_tree (s) "
        "| k-NC nndescent (s) | kNN brute (s) | kNN best tree (s) | ratio vs kNN brute "
        "(brute / kd_tree / nndescent) | ratio vs best kNN | nndescent = brute |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    # Warm pynndescent's numba compilation so it is not timed.
    warm_X, warm_y = normalised_blobs(5_000, seed=99)
    KNearestClusterClassifier(20, cluster_size=20, algorithm="nndescent").fit(
        warm_X, warm_y
    ).predict(warm_X[:10])
    for n in args.sizes:
        X, y = normalised_blobs(n + N_QUERIES, seed=n)
        Xq, X, y = X[:N_QUERIES], X[N_QUERIES:], y[N_QUERIES:]
        knc_t = {}
        fit_t, clf = timed(lambda: KNearestClusterClassifier(
            20, cluster_size=200, algorithm="brute", random_state=0).fit(X, y))
        preds = {}
        for alg in ("brute", "kd_tree", "nndescent"):
            clf.set_params(algorithm=alg)
            clf._index = type(clf._index)(clf.cluster_centers_, alg, clf.chunk_size, 0)
            clf._index.query(Xq[:10], 20)  # build the index outside the timing
            runs = [timed(lambda: clf.predict(Xq)) for _ in range(3)]
            knc_t[alg] = min(t for t, _ in runs)
            preds[alg] = runs[0][1]
        agree = (preds["nndescent"] == preds["brute"]).mean()
        knn = KNeighborsClassifier(20, algorithm="brute").fit(X, y)
        knn_brute, _ = timed(lambda: knn.predict(Xq))
        trees = []
        for alg in ("kd_tree", "ball_tree"):
            tree = KNeighborsClassifier(20, algorithm=alg).fit(X, y)
            t, _ = timed(lambda: tree.predict(Xq[:TREE_QUERIES]))
            trees.append(t * N_QUERIES / TREE_QUERIES)
        best_knn = min([knn_brute] + trees)
        ratios = " / ".join(f"{knn_brute / knc_t[a]:.0f}x" for a in ("brute", "kd_tree", "nndescent"))
        best_knc = min(knc_t.values())
        lines.append(
            f"| {n:,} | {clf.cluster_centers_.shape[0]:,} | {fit_t:.2f} | {knc_t['brute']:.3f} "
            f"| {knc_t['kd_tree']:.3f} | {knc_t['nndescent']:.3f} | {knn_brute:.2f} "
            f"| {min(trees):.2f} | {ratios} | {best_knn / best_knc:.0f}x | {agree:.1%} |"
        )
        print(lines[-1], flush=True)
    write_report(lines, args.out)


if __name__ == "__main__":
    main()
