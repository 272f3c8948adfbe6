"""Multi-label attribute prediction: the CLMLE paper's CelebA protocol, on digit strips.

Data: :func:`sklearn_clmle.datasets.load_digit_strips` (three 8x8 digits side
by side, digit frequencies long-tailed; attribute ``has_k`` = "the strip
shows a k", positive rates from about 0.8 down to about 0.01). Every method
gets the same standardised pixels, the same train/test strips per seed, and
no tuning (package defaults, the same for every deep method: MLP backbone,
batches of 240 rows, 180 epochs in total: the embedders' 30 warm-up + 150
main epochs, CrossEntropyClassifier's 180).

Methods:

- SMOTE + {LR, kNN, MLP}, one pipeline per attribute (``MultiOutputClassifier``);
- binary cross-entropy (``CrossEntropyClassifier`` on the indicator matrix),
  with positive weights (``class_weight="balanced"``) and logit-adjusted;
- one separate CLMLE + k-NC pipeline per attribute (``MultiOutputClassifier``);
- the multi-head CLMLE + k-NC (one backbone, one head and Eq. 9 per
  attribute, all trained together) with each of its three batch rules
  (``multilabel_batches``: "shared", the default, "joint", "alternate"), and
  without cost-sensitivity for the first two.

Score: mean per-attribute balanced accuracy on the test strips, with the
per-attribute true-positive and true-negative rates next to it.

    python benchmarks/bench_multilabel.py            # 3 seeds, the full table
    python benchmarks/bench_multilabel.py --quick    # 1 seed, tiny budgets
"""

import argparse
import json
import os
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one BLAS thread per worker

import numpy as np  # noqa: E402
from joblib import Parallel, delayed  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _report import write_report  # noqa: E402
from _resampling import SmallClassSMOTE  # noqa: E402
from imblearn.pipeline import Pipeline  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.multioutput import MultiOutputClassifier  # noqa: E402
from sklearn.neighbors import KNeighborsClassifier  # noqa: E402
from sklearn.neural_network import MLPClassifier  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from sklearn_clmle import (  # noqa: E402
    CLMLEEmbedder,
    CrossEntropyClassifier,
    KNearestClusterClassifier,
)
from sklearn_clmle.datasets import load_digit_strips  # noqa: E402
from sklearn_clmle.metrics import mean_balanced_accuracy, per_label_rates  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
FIRST_SEED = 0


def _budget(quick):
    if quick:
        return {"warmup_epochs": 2, "max_epochs": 6}, {"max_epochs": 8}
    return {}, {}  # the package defaults: 30 + 150 epochs, and 180


def methods(seed, quick):
    """``{name: estimator}``; every estimator takes the standardised pixels."""
    emb_budget, ce_budget = _budget(quick)
    deep = dict(random_state=seed, n_threads=1)

    def smote(clf):
        return MultiOutputClassifier(
            Pipeline([("resample", SmallClassSMOTE(random_state=seed)), ("clf", clf)])
        )

    def clmle(**kw):
        return make_pipeline(CLMLEEmbedder(**deep, **emb_budget, **kw),
                             KNearestClusterClassifier(random_state=seed))

    return {
        "SMOTE + LR": smote(LogisticRegression(max_iter=2000)),
        "SMOTE + kNN": smote(KNeighborsClassifier()),
        "SMOTE + MLP": smote(MLPClassifier((512,), max_iter=300 if not quick else 20,
                                           random_state=seed)),
        "BCE": CrossEntropyClassifier(**deep, **ce_budget),
        "BCE, pos. weights": CrossEntropyClassifier(class_weight="balanced", **deep,
                                                    **ce_budget),
        "logit-adj. BCE": CrossEntropyClassifier(logit_adjustment=1.0, **deep, **ce_budget),
        "CLMLE per attribute": MultiOutputClassifier(clmle()),
        "multi-head CLMLE": clmle(multilabel_batches="shared"),
        "multi-head CLMLE, no cost-sens.": clmle(multilabel_batches="shared",
                                                 cost_sensitive=False),
        "multi-head CLMLE, joint batches": clmle(multilabel_batches="joint"),
        "multi-head CLMLE, joint batches, no cost-sens.": clmle(
            multilabel_batches="joint", cost_sensitive=False),
        "multi-head CLMLE, alternate batches": clmle(multilabel_batches="alternate"),
    }


def run_one(name, seed, quick):
    X_tr, X_te, Y_tr, Y_te, names = load_digit_strips(random_state=seed)
    scaler = StandardScaler().fit(X_tr)
    X_tr, X_te = scaler.transform(X_tr), scaler.transform(X_te)
    est = methods(seed, quick)[name]
    t0 = time.perf_counter()
    est.fit(X_tr, Y_tr)
    seconds = time.perf_counter() - t0
    P = np.asarray(est.predict(X_te)).astype(int)
    rates = per_label_rates(Y_te, P)
    return {
        "method": name, "seed": seed, "seconds": seconds,
        "mean_ba": mean_balanced_accuracy(Y_te, P),
        "tpr": rates["tpr"].tolist(), "tnr": rates["tnr"].tolist(),
        "ba": rates["balanced_accuracy"].tolist(),
        "train_rate": Y_tr.mean(axis=0).tolist(), "test_rate": Y_te.mean(axis=0).tolist(),
        "names": list(names),
    }


def report(rows, seeds, wall, quick):
    by = {}
    for r in rows:
        by.setdefault(r["method"], []).append(r)
    names = rows[0]["names"]
    train_rate = np.mean([r["train_rate"] for r in rows if r["seed"] == seeds[0]], axis=0)
    order = sorted(by, key=lambda m: -np.mean([r["mean_ba"] for r in by[m]]))
    lines = [
        "# Multi-label attributes on digit strips (CLMLE Sec. 5 protocol)",
        "",
        f"Seeds {seeds[0]}..{seeds[-1]} (data and models); each seed draws its own "
        "3,000 training and 1,500 test strips of three 8x8 digits "
        "(`load_digit_strips`, imbalance ratio 100 over the digit frequencies), "
        "ten attributes `has_k`. Inputs standardised on the training strips. No "
        "tuning: every method at its defaults (deep methods: MLP backbone, 240-row "
        "batches, 180 epochs in total)."
        + (" QUICK RUN: tiny budgets, not a result." if quick else ""),
        "",
        "Positive rate of each attribute in training (first seed): "
        + ", ".join(f"{n} {p:.3f}" for n, p in zip(names, train_rate)) + ".",
        "",
        "## Mean per-attribute balanced accuracy (test, mean ± std over seeds)",
        "",
        "| method | mean BA | mean TPR | mean TNR | TPR of the 3 rarest | fit seconds |",
        "|---|---|---|---|---|---|",
    ]
    for m in order:
        ba = np.array([r["mean_ba"] for r in by[m]])
        tpr = np.mean([r["tpr"] for r in by[m]], axis=0)
        tnr = np.mean([r["tnr"] for r in by[m]], axis=0)
        secs = np.mean([r["seconds"] for r in by[m]])
        lines.append(
            f"| {m} | {100 * ba.mean():.1f} ± {100 * ba.std():.1f} | {100 * tpr.mean():.1f} "
            f"| {100 * tnr.mean():.1f} | {100 * tpr[-3:].mean():.1f} | {secs:.0f} |"
        )
    lines += ["", "## Per attribute: TPR / TNR (%, mean over seeds)", "",
              "| method | " + " | ".join(names) + " |",
              "|---|" + "---|" * len(names)]
    for m in order:
        tpr = np.mean([r["tpr"] for r in by[m]], axis=0)
        tnr = np.mean([r["tnr"] for r in by[m]], axis=0)
        lines.append(f"| {m} | " + " | ".join(
            f"{100 * a:.0f} / {100 * b:.0f}" for a, b in zip(tpr, tnr)) + " |")

    def mean_of(m):
        return 100 * np.mean([r["mean_ba"] for r in by[m]])

    best = order[0]
    joint = mean_of("multi-head CLMLE")
    lines += [
        "",
        "## Reading",
        "",
        f"- Best mean balanced accuracy: {best} ({mean_of(best):.1f}). Multi-head CLMLE "
        f"(defaults): {joint:.1f}, "
        + ("the best." if best == "multi-head CLMLE" else
           f"{mean_of(best) - joint:.1f} points behind {best}."),
        "- Cost-sensitivity (paper: it helps more with many attributes): with shared "
        f"batches {joint:.1f} with, {mean_of('multi-head CLMLE, no cost-sens.'):.1f} "
        f"without ({joint - mean_of('multi-head CLMLE, no cost-sens.'):+.1f}); with "
        f"joint batches {mean_of('multi-head CLMLE, joint batches'):.1f} with, "
        f"{mean_of('multi-head CLMLE, joint batches, no cost-sens.'):.1f} without.",
        f"- Batch rules: shared {joint:.1f}, joint "
        f"{mean_of('multi-head CLMLE, joint batches'):.1f}, alternate "
        f"{mean_of('multi-head CLMLE, alternate batches'):.1f}.",
        f"- One shared network against one CLMLE per attribute: {joint:.1f} vs "
        f"{mean_of('CLMLE per attribute'):.1f}.",
        "",
        f"Wall time {wall / 60:.1f} min (two worker processes, one torch thread each; "
        "summed over resumed runs).",
    ]
    return lines


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    seeds = list(range(FIRST_SEED, FIRST_SEED + (1 if args.quick else args.seeds)))
    names = list(methods(0, args.quick))
    stem = "multilabel_quick" if args.quick else "multilabel"
    out = args.out or os.path.join(RESULTS, f"{stem}.md")
    raw = out.replace(".md", ".json")
    # Rows of an earlier run are kept: only missing (method, seed) pairs run.
    done, wall = [], 0.0
    if os.path.exists(raw):
        with open(raw) as fh:
            saved = json.load(fh)
        done, wall = saved["rows"], saved["wall_seconds"]
    have = {(r["method"], r["seed"]) for r in done}
    # Longest jobs first, so the two workers finish together.
    jobs = sorted(((m, s) for s in seeds for m in names if (m, s) not in have),
                  key=lambda job: ("CLMLE" not in job[0], job[1]))
    t0 = time.perf_counter()
    rows = done + Parallel(n_jobs=args.n_jobs, verbose=5)(
        delayed(run_one)(m, s, args.quick) for m, s in jobs
    )
    wall += time.perf_counter() - t0
    rows = [r for r in rows if r["method"] in names and r["seed"] in seeds]
    with open(raw, "w") as fh:
        json.dump({"rows": rows, "wall_seconds": wall}, fh)
    write_report(report(rows, seeds, wall, args.quick), out)


if __name__ == "__main__":
    main()
