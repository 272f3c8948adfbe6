"""The k-nearest-cluster rule with prior adjustment, on CLMLE embeddings.

``KNearestClusterClassifier(prior_adjustment=tau)`` adds ``-tau * log(prior_c)``
to every retrieved class's Eq. 10 score. This measures tau (and N) on the
embeddings of ``CLMLEEmbedder`` with the package defaults, on the development
rows of ``bench_engine.py`` (training-part rows the long-tail subsampling
left out; never the test parts), seeds 10 and 11. One embedder fit per
(data set, seed); every classifier setting is fitted on the same embedding.

Usage::

    python benchmarks/bench_knc_prior.py
"""

import os
import sys

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _report import write_report  # noqa: E402
from bench_engine import FIRST_SEED, development_split, markdown_table  # noqa: E402
from joblib import Parallel, delayed  # noqa: E402

TAUS = (0.0, 0.5, 1.0, 2.0)
NEIGHBORS = (1, 5, 10)


def _run(task, seed):
    import warnings

    import torch
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.preprocessing import StandardScaler

    from sklearn_clmle import CLMLEEmbedder, KNearestClusterClassifier

    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    X, y, X_dev, y_dev = development_split(task, seed)
    scaler = StandardScaler().fit(X)
    emb = CLMLEEmbedder(backbone=task.backbone, random_state=seed, n_threads=1)
    Z = emb.fit_transform(scaler.transform(X), y)
    Z_dev = emb.transform(scaler.transform(X_dev))
    rows = []
    for n in NEIGHBORS:
        for tau in TAUS:
            knc = KNearestClusterClassifier(n, prior_adjustment=tau, random_state=seed)
            pred = knc.fit(Z, y).predict(Z_dev)
            rows.append({"dataset": task.name, "seed": seed, "setting": f"N={n}, tau={tau:g}",
                         "score": balanced_accuracy_score(y_dev, pred)})
    return rows


def main():
    import pandas as pd
    from _suite_data import long_tailed_tasks

    tasks = [t for t in long_tailed_tasks() if t.name != "digits IR1"]
    jobs = [(t, s) for t in tasks for s in (FIRST_SEED, FIRST_SEED + 1)]
    rows = Parallel(n_jobs=2)(delayed(_run)(*j) for j in jobs)
    frame = pd.DataFrame([r for rs in rows for r in rs])
    table = frame.pivot_table(index="setting", columns="dataset", values="score",
                              aggfunc="mean", sort=False) * 100
    table["mean"] = table.mean(axis=1)
    write_report([
        "# k-NC prior adjustment on CLMLE embeddings",
        "",
        __doc__.split("\n\n")[1].replace("\n", " "),
        "",
        "Development balanced accuracy x100, mean of 2 seeds.",
        "",
        *markdown_table(table),
    ], os.path.join(os.path.dirname(__file__), "results", "knc_prior.md"))


if __name__ == "__main__":
    main()
