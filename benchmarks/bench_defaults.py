"""Choose CLMLEEmbedder defaults by measurement on long-tailed data.

For each imbalance ratio and seed: split (digits: stratified, 30% test;
MNIST-1D: the package's split), make the training part long-tailed, fit
``CLMLEEmbedder`` variants on the standardised training data, and score a
1-NN classifier on the embedding by balanced accuracy on the untouched test
part. The raw standardised inputs are the reference. Runs the (variant,
seed) jobs in two processes of one thread. MNIST-1D uses the ``cnn1d``
backbone and the variants in ``MNIST1D_VARIANTS``.

Usage::

    python benchmarks/bench_defaults.py [--data digits|mnist1d] [--seeds 5] [--out ...]
"""

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from _report import write_report  # noqa: E402
from joblib import Parallel, delayed  # noqa: E402

VARIANTS = {
    "default (warm-up init, scale 10, ce_weight 1)": {},
    "scale=1 (the paper's)": {"scale": 1.0},
    "scale=1, ce_weight=0 (the paper's loss alone)": {"scale": 1.0, "ce_weight": 0.0},
    "ce_weight=0": {"ce_weight": 0.0},
    "ce_weight=0.3": {"ce_weight": 0.3},
    "init='input'": {"init": "input"},
    "query_sampling='uniform'": {"query_sampling": "uniform"},
    "cost_sensitive=False": {"cost_sensitive": False},
    "cluster_size=5": {"cluster_size": 5},
    "cluster_size=50": {"cluster_size": 50},
    "backbone (256,) d=32, no dropout": {
        "embedding_dim": 32,
        "backbone_kwargs": {"hidden_layer_sizes": (256,), "dropout": 0.0},
    },
}
MNIST1D_VARIANTS = {
    name: VARIANTS[name]
    for name in list(VARIANTS)[:5] + ["query_sampling='uniform'", "cost_sensitive=False"]
}


def run_one(name, params, ir, seed, data):
    import torch
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.preprocessing import StandardScaler

    from sklearn_clmle import CLMLEEmbedder
    from sklearn_clmle.datasets import load_long_tailed_digits, load_long_tailed_mnist1d

    torch.set_num_threads(1)
    if data == "digits":
        X_tr, X_te, y_tr, y_te = load_long_tailed_digits(ir, test_size=0.3, random_state=seed)
    else:
        X_tr, X_te, y_tr, y_te = load_long_tailed_mnist1d(ir, random_state=seed)
        params = None if params is None else {"backbone": "cnn1d", **params}
    scaler = StandardScaler().fit(X_tr)
    A, B = scaler.transform(X_tr), scaler.transform(X_te)
    t0 = time.perf_counter()
    if params is None:
        Za, Zb = A, B
    else:
        emb = CLMLEEmbedder(random_state=seed, n_threads=1, **params).fit(A, y_tr)
        Za, Zb = emb.transform(A), emb.transform(B)
    fit_time = time.perf_counter() - t0
    pred = KNeighborsClassifier(1).fit(Za, y_tr).predict(Zb)
    return name, ir, seed, balanced_accuracy_score(y_te, pred), fit_time


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--ratios", type=float, nargs="+", default=[10, 100])
    parser.add_argument("--data", choices=["digits", "mnist1d"], default="digits")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    out = args.out or (
        "benchmarks/results/defaults.md" if args.data == "digits"
        else "benchmarks/results/defaults_mnist1d.md"
    )
    variants = VARIANTS if args.data == "digits" else MNIST1D_VARIANTS
    jobs = [("1-NN on standardised inputs", None)] + list(variants.items())
    results = Parallel(n_jobs=2)(
        delayed(run_one)(name, params, ir, seed, args.data)
        for name, params in jobs
        for ir in args.ratios
        for seed in range(args.seeds)
    )
    lines = [
        "# CLMLEEmbedder defaults: 1-NN balanced accuracy on the embedding",
        "",
        (
            "Long-tailed digits (30% stratified test split, training part long-tailed), "
            if args.data == "digits" else
            "Long-tailed MNIST-1D (4000/1000 split, training part long-tailed), cnn1d "
            "backbone, "
        ) + f"{args.seeds} seeds, mean ± std. Fit time is per fit, 1 torch thread.",
        "",
        "| variant | " + " | ".join(f"IR {ir:g}" for ir in args.ratios) + " | fit time (s) |",
        "|---|" + "---|" * (len(args.ratios) + 1),
    ]
    for name, _ in jobs:
        cells, times = [], []
        for ir in args.ratios:
            r = [(b, t) for n, i, _, b, t in results if n == name and i == ir]
            acc = np.array([b for b, _ in r])
            times += [t for _, t in r]
            cells.append(f"{acc.mean():.3f} ± {acc.std():.3f}")
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {np.mean(times):.2f} |")
    write_report(lines, out)

if __name__ == "__main__":
    main()
