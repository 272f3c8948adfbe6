"""k-nearest-cluster rule (Eq. 10) against instance-wise kNN and the LMLE rule.

For long-tailed digits and long-tailed MNIST-1D (IR 10 and 100) and several
seeds: fit ``CLMLEEmbedder`` (defaults) on the standardised training part,
embed both parts, and score classifiers on the embedding by balanced accuracy
on the untouched test part: instance-wise kNN (k = 1, 5, 20),
``KNearestClusterClassifier`` with Eq. 10 for N in 1..200 and scale in
{1, 10, 30}, and with the LMLE rule (Eq. 3). One process per (data, seed),
two at a time, one torch thread each.

Usage::

    python benchmarks/bench_knc_accuracy.py [--seeds 3] [--out benchmarks/results/knc_accuracy.md]
"""

import argparse
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from _report import write_report  # noqa: E402
from joblib import Parallel, delayed  # noqa: E402

NS = (1, 5, 10, 20, 50, 100, 200)
SCALES = (1.0, 10.0, 30.0)


def methods():
    from sklearn.neighbors import KNeighborsClassifier

    from sklearn_clmle import KNearestClusterClassifier

    out = {f"instance kNN, k={k}": KNeighborsClassifier(k) for k in (1, 5, 20)}
    for scale in SCALES:
        for n in NS:
            out[f"k-NC Eq. 10, scale={scale:g}, N={n}"] = KNearestClusterClassifier(
                n, scale=scale, random_state=0
            )
    for n in NS:
        out[f"k-NC LMLE Eq. 3, N={n}"] = KNearestClusterClassifier(n, rule="lmle", random_state=0)
    out["k-NC Eq. 10, N=20, cluster_size=1 (every sample)"] = KNearestClusterClassifier(
        20, cluster_size=1
    )
    return out


def run_one(data, ir, seed):
    import torch
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.preprocessing import StandardScaler

    from sklearn_clmle import CLMLEEmbedder
    from sklearn_clmle.datasets import load_long_tailed_digits, load_long_tailed_mnist1d

    torch.set_num_threads(1)
    if data == "digits":
        X_tr, X_te, y_tr, y_te = load_long_tailed_digits(ir, test_size=0.3, random_state=seed)
    else:
        X_tr, X_te, y_tr, y_te = load_long_tailed_mnist1d(ir, random_state=seed)
    scaler = StandardScaler().fit(X_tr)
    emb = CLMLEEmbedder(random_state=seed, n_threads=1).fit(scaler.transform(X_tr), y_tr)
    Za, Zb = emb.transform(scaler.transform(X_tr)), emb.transform(scaler.transform(X_te))
    rows = []
    for name, clf in methods().items():
        pred = clf.fit(Za, y_tr).predict(Zb)
        rows.append((name, data, ir, seed, balanced_accuracy_score(y_te, pred)))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", default="benchmarks/results/knc_accuracy.md")
    args = parser.parse_args()
    cases = [(d, ir) for d in ("digits", "mnist1d") for ir in (10, 100)]
    results = Parallel(n_jobs=2)(
        delayed(run_one)(d, ir, s) for d, ir in cases for s in range(args.seeds)
    )
    results = [r for rows in results for r in rows]
    names = list(dict.fromkeys(r[0] for r in results))
    table = {
        (name, d, ir): np.array([r[4] for r in results if r[:3] == (name, d, ir)])
        for name in names for d, ir in cases
    }
    best = {c: max(table[(n,) + c].mean() for n in names) for c in cases}
    lines = [
        "# k-nearest-cluster classification on CLMLE embeddings",
        "",
        "Balanced accuracy on the untouched test part (mean ± std over "
        f"{args.seeds} seeds); embeddings from `CLMLEEmbedder()` (defaults) fitted on "
        "the long-tailed training part. k-NC uses `cluster_size='auto'`. "
        "Best per column in bold.",
        "",
        "| method | " + " | ".join(f"{d} IR {ir}" for d, ir in cases) + " | mean |",
        "|---|" + "---|" * (len(cases) + 1),
    ]
    for name in names:
        cells = []
        for c in cases:
            v = table[(name,) + c]
            cell = f"{v.mean():.3f} ± {v.std():.3f}"
            cells.append(f"**{cell}**" if v.mean() == best[c] else cell)
        overall = np.mean([table[(name,) + c].mean() for c in cases])
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {overall:.3f} |")
    write_report(lines, args.out)


if __name__ == "__main__":
    main()
