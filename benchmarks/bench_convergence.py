"""Convergence: validation balanced accuracy against epoch and wall time.

The CLMLE paper's Fig. 3 question (does CLMLE converge faster than LMLE?),
asked of the four deep methods of this package on the one training engine:
cross-entropy, logit-adjusted cross-entropy, CLMLE and LMLE, each with the
package defaults (and LMLE with its paper loss alone, ``ce_weight=0``), on long-tailed digits (MLP) and long-tailed MNIST-1D
(cnn1d) at imbalance ratio 10 and 100. Every fit holds out the engine's
validation part (``early_stopping=True``, 10% of each class) and scores it
after every epoch (CLMLE and LMLE by their nearest-cluster rule, Eq. 10 and
LMLE Eq. 3; the classifiers by their prediction), with stopping disabled
(``n_iter_no_change`` larger than the budget) so every curve runs its whole
budget. The embedders' first 30 epochs are the cross-entropy warm-up, which
is not scored. Wall time is cumulative ``fit`` seconds on one thread.

Usage::

    python benchmarks/bench_convergence.py [--seeds 2]
"""

import argparse
import os
import sys

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
from _report import write_report  # noqa: E402
from _suite_data import Task  # noqa: E402
from _suite_report import _pyplot  # noqa: E402
from joblib import Parallel, delayed  # noqa: E402

METHODS = ("CE", "logit-adj. CE", "CLMLE", "LMLE", "LMLE, paper loss")
DATASETS = (("digits", 10, "mlp"), ("digits", 100, "mlp"),
            ("mnist1d", 10, "cnn1d"), ("mnist1d", 100, "cnn1d"))
#: Epochs at which the table reports the curves.
MARKS = (10, 30, 60, 100, 150, 180)


def _run(group, ir, backbone, method, seed):
    import warnings

    from sklearn.preprocessing import StandardScaler

    from sklearn_clmle import CLMLEEmbedder, CrossEntropyClassifier, LMLEEmbedder

    warnings.filterwarnings("ignore")
    X, _, y, _ = Task(f"{group} IR{ir}", group, ir, backbone).split(seed)
    X = StandardScaler().fit_transform(X)
    common = dict(backbone=backbone, early_stopping=True, n_iter_no_change=10_000,
                  random_state=seed, n_threads=1)
    est = {
        "CE": lambda: CrossEntropyClassifier(**common),
        "logit-adj. CE": lambda: CrossEntropyClassifier(logit_adjustment=1.0, **common),
        "CLMLE": lambda: CLMLEEmbedder(**common),
        "LMLE": lambda: LMLEEmbedder(**common),
        "LMLE, paper loss": lambda: LMLEEmbedder(ce_weight=0.0, **common),
    }[method]().fit(X, y)
    seconds = np.cumsum([row["seconds"] for row in est.history_])
    return [{"dataset": f"{group} IR{ir}", "method": method, "seed": seed,
             "epoch": row["epoch"], "seconds": float(t), "val": row["val_score"]}
            for row, t in zip(est.history_, seconds)]


def main():
    import pandas as pd

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__),
                                                      "results", "convergence.md"))
    args = parser.parse_args()
    jobs = [(g, ir, b, m, s) for g, ir, b in DATASETS for m in METHODS
            for s in range(args.seeds)]
    rows = Parallel(n_jobs=2, verbose=2)(delayed(_run)(*j) for j in jobs)
    frame = pd.DataFrame([r for rs in rows for r in rs])
    frame.to_csv(args.out.replace(".md", ".csv"), index=False)
    mean = frame.groupby(["dataset", "method", "epoch"], sort=False)[["val", "seconds"]].mean()
    lines = [
        "# Convergence: validation balanced accuracy against epoch and wall time",
        "",
        __doc__.split("\n\n")[1].replace("\n", " "),
        "",
        f"Mean of {args.seeds} seed(s); x100. `best` is the best epoch's score, "
        "`epoch 95%` the first epoch within 95% of it, `s 95%` its cumulative "
        "fit seconds, `fit s` the seconds of the whole budget.",
        "",
        "| dataset | method | " + " | ".join(f"epoch {m}" for m in MARKS)
        + " | best | epoch 95% | s 95% | fit s |",
        "|---|---|" + "---:|" * (len(MARKS) + 4),
    ]
    for (dataset, method), part in mean.groupby(level=[0, 1], sort=False):
        curve = part.droplevel([0, 1])
        val = curve["val"]
        at = [val.get(m, np.nan) for m in MARKS]
        best = val.max()
        first = val.index[(val >= 0.95 * best).to_numpy()][0]
        lines.append(
            f"| {dataset} | {method} | " + " | ".join(
                "" if np.isnan(v) else f"{100 * v:.1f}" for v in at)
            + f" | {100 * best:.1f} | {first} | {curve['seconds'][first]:.1f} | "
            f"{curve['seconds'].iloc[-1]:.1f} |"
        )
    plt = _pyplot()
    datasets = list(dict.fromkeys(frame.dataset))
    fig, axes = plt.subplots(2, len(datasets), figsize=(4 * len(datasets), 6.5))
    for j, dataset in enumerate(datasets):
        for method in METHODS:
            curve = mean.loc[(dataset, method)]
            for i, x in enumerate((curve.index, curve["seconds"])):
                axes[i, j].plot(x, 100 * curve["val"], label=method)
        axes[0, j].set_title(dataset)
        axes[0, j].set_xlabel("epoch")
        axes[1, j].set_xlabel("fit seconds (one thread)")
        for i in range(2):
            axes[i, j].set_ylabel("validation balanced accuracy")
            axes[i, j].grid(alpha=0.3)
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    png = args.out.replace(".md", ".png")
    fig.savefig(png, dpi=110)
    lines += ["", f"![convergence]({os.path.basename(png)})"]
    write_report(lines, args.out)


if __name__ == "__main__":
    main()
