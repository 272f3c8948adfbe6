"""Choose the registered backbones' default sizes by measurement.

Long-tailed digits (MLP vs 2-D CNNs on the 8x8 images) and long-tailed
MNIST-1D (MLP vs 1-D CNNs on the 40-sample signals), at imbalance ratios 10
and 100. For each backbone: the cross-entropy classifier and CLMLE + k-NC
(N=1), both with their defaults otherwise; balanced accuracy on the untouched
test part, mean ± std over seeds. Two processes of one thread.

Usage::

    python benchmarks/bench_backbones.py [--seeds 3] [--out benchmarks/results/backbones.md]
"""

import argparse
import os
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
from _report import write_report  # noqa: E402
from joblib import Parallel, delayed  # noqa: E402

VARIANTS = {
    "digits": {
        "mlp (512,)": ("mlp", None),
        "cnn2d (16, 32)": ("cnn2d", {"channels": (16, 32)}),
        "cnn2d (32, 64)": ("cnn2d", {"channels": (32, 64)}),
        "cnn2d (64, 128)": ("cnn2d", {"channels": (64, 128)}),
    },
    "mnist1d": {
        "mlp (512,)": ("mlp", None),
        "cnn1d (16, 16, 16)": ("cnn1d", {"channels": (16, 16, 16)}),
        "cnn1d (32, 32, 32)": ("cnn1d", {"channels": (32, 32, 32)}),
        "cnn1d (64, 64, 64)": ("cnn1d", {"channels": (64, 64, 64)}),
        "cnn1d (32, 32, 32), kernel 3": ("cnn1d", {"channels": (32, 32, 32), "kernel_size": 3}),
    },
}


def run_one(group, name, ir, seed):
    import torch
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.preprocessing import StandardScaler

    from sklearn_clmle import (
        CLMLEEmbedder,
        CrossEntropyClassifier,
        KNearestClusterClassifier,
    )
    from sklearn_clmle.datasets import load_long_tailed_digits, load_long_tailed_mnist1d

    torch.set_num_threads(1)
    if group == "digits":
        X_tr, X_te, y_tr, y_te = load_long_tailed_digits(ir, test_size=0.3, random_state=seed)
    else:
        X_tr, X_te, y_tr, y_te = load_long_tailed_mnist1d(ir, random_state=seed)
    scaler = StandardScaler().fit(X_tr)
    A, B = scaler.transform(X_tr), scaler.transform(X_te)
    backbone, kwargs = VARIANTS[group][name]
    common = dict(backbone=backbone, backbone_kwargs=kwargs, random_state=seed, n_threads=1)
    t0 = time.perf_counter()
    ce = CrossEntropyClassifier(**common).fit(A, y_tr)
    ce_time = time.perf_counter() - t0
    t0 = time.perf_counter()
    emb = CLMLEEmbedder(**common).fit(A, y_tr)
    clmle_time = time.perf_counter() - t0
    knc = KNearestClusterClassifier(1).fit(emb.transform(A), y_tr)
    return (group, name, ir, seed,
            balanced_accuracy_score(y_te, ce.predict(B)),
            balanced_accuracy_score(y_te, knc.predict(emb.transform(B))),
            ce_time, clmle_time)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", default=os.path.join(
        os.path.dirname(__file__), "results", "backbones.md"))
    args = parser.parse_args()
    jobs = [(g, n, ir, s) for g in VARIANTS for n in VARIANTS[g]
            for ir in (10, 100) for s in range(args.seeds)]
    rows = Parallel(n_jobs=2)(delayed(run_one)(*job) for job in jobs)
    lines = [
        "# Backbone sizes (balanced accuracy x100 on test, mean ± std over "
        f"{args.seeds} seeds)", "",
        "| data | backbone | CE, IR 10 | CLMLE + k-NC, IR 10 | CE, IR 100 | "
        "CLMLE + k-NC, IR 100 | fit s (CE / CLMLE) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for g in VARIANTS:
        for name in VARIANTS[g]:
            cells = []
            for ir in (10, 100):
                sub = np.array([r[4:6] for r in rows if r[:3] == (g, name, ir)])
                for j in range(2):
                    cells.append(f"{100 * sub[:, j].mean():.1f} ± {100 * sub[:, j].std():.1f}")
            times = np.array([r[6:8] for r in rows if r[:2] == (g, name)]).mean(axis=0)
            lines.append(f"| {g} | {name} | " + " | ".join(cells)
                         + f" | {times[0]:.1f} / {times[1]:.1f} |")
    write_report(lines, args.out)


if __name__ == "__main__":
    main()
