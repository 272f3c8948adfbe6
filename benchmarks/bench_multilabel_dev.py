"""Development probe for the multi-label defaults, on validation strips only.

For seeds 0 and 1, the 3,000 training strips of ``load_digit_strips`` are
split into 2,000 for training and 1,000 for validation; no test strip is
read. A few settings of the multi-head CLMLE (package defaults otherwise)
and the same ``embedding_dim`` trials for logit-adjusted BCE, scored by mean
per-attribute balanced accuracy on the validation strips.

    python benchmarks/bench_multilabel_dev.py
"""

import os
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one BLAS thread per worker

import numpy as np  # noqa: E402
from joblib import Parallel, delayed  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _report import write_report  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from sklearn_clmle import (  # noqa: E402
    CLMLEEmbedder,
    CrossEntropyClassifier,
    KNearestClusterClassifier,
)
from sklearn_clmle.datasets import load_digit_strips  # noqa: E402
from sklearn_clmle.metrics import mean_balanced_accuracy  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
SEEDS = (0, 1)
N_FIT = 2000
#: ``name: (kind, parameters)``; everything else at the package defaults.
VARIANTS = {
    "multi-head CLMLE (defaults, embedding_dim=64)": ("clmle", {}),
    "multi-head CLMLE, embedding_dim=32": ("clmle", {"embedding_dim": 32}),
    "multi-head CLMLE, embedding_dim=16": ("clmle", {"embedding_dim": 16}),
    "multi-head CLMLE, ce_weight=3": ("clmle", {"ce_weight": 3.0}),
    "multi-head CLMLE, a1=0.5": ("clmle", {"a1": 0.5}),
    "logit-adj. BCE (embedding_dim=64)": ("bce", {}),
    "logit-adj. BCE, embedding_dim=32": ("bce", {"embedding_dim": 32}),
    "logit-adj. BCE, embedding_dim=16": ("bce", {"embedding_dim": 16}),
}


def run(name, seed):
    kind, params = VARIANTS[name]
    X, _, Y, _, _ = load_digit_strips(random_state=seed)  # the test strips are unused
    if kind == "clmle":
        model = make_pipeline(
            StandardScaler(), CLMLEEmbedder(random_state=seed, n_threads=1, **params),
            KNearestClusterClassifier(random_state=seed))
    else:
        model = make_pipeline(StandardScaler(), CrossEntropyClassifier(
            logit_adjustment=1.0, random_state=seed, n_threads=1, **params))
    model.fit(X[:N_FIT], Y[:N_FIT])
    return name, seed, mean_balanced_accuracy(Y[N_FIT:], model.predict(X[N_FIT:]))


def main():
    t0 = time.perf_counter()
    rows = Parallel(n_jobs=2)(delayed(run)(n, s) for n in VARIANTS for s in SEEDS)
    wall = time.perf_counter() - t0
    lines = [
        "# Multi-label development probe (validation strips of the training part)",
        "",
        f"Seeds {SEEDS}: the first {N_FIT} training strips train, the other "
        f"{3000 - N_FIT} validate; no test strip is used. Mean per-attribute "
        "balanced accuracy x100.",
        "",
        "| setting | mean | " + " | ".join(f"seed {s}" for s in SEEDS) + " |",
        "|---|---|" + "---|" * len(SEEDS),
    ]
    for name in VARIANTS:
        v = [100 * r[2] for r in rows if r[0] == name]
        lines.append(f"| {name} | {np.mean(v):.1f} | " + " | ".join(f"{x:.1f}" for x in v)
                     + " |")
    lines += ["", f"Wall time {wall / 60:.1f} min (two worker processes, one thread each)."]
    write_report(lines, os.path.join(RESULTS, "multilabel_dev.md"))


if __name__ == "__main__":
    main()
