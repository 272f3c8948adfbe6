"""Open-set verification: do the features generalise to classes never seen in training?

The CLMLE paper's face protocol (LFW/YTF pair verification, MegaFace rank-1
identification, Table 2 against SphereFace/CosFace/ArcFace-like losses) on
small data: every method trains on the TRAINING rows of classes 0-6 only;
pairs are drawn only from the TEST rows of classes 7, 8 and 9, which no
method ever saw, and scored by the cosine similarity of their features.

Data sets: scikit-learn's digits (split 50/50 stratified, a new split per
seed), with the ``cnn2d`` backbone (8x8 images) and with the ``mlp``; the
package's balanced MNIST-1D (``load_long_tailed_mnist1d(imbalance_ratio=1)``,
its fixed 4000/1000 split) with ``cnn1d``; and long-tailed variants of
digits (cnn2d) and MNIST-1D where the 7 training classes are subsampled by
``long_tail_indices`` to an imbalance ratio of 10 (class 0 the largest,
class 6 the smallest; a new subsample per seed). Inputs are standardised by
a StandardScaler fitted on the training rows. One backbone per task, the
same for every method.

Methods, all on the package's engine (SGD, its learning rate, schedule,
clipping, augmentation, seeding) with 180 epochs in total: the embedders'
30 warm-up + 150 main, the classifiers' 180:

* CLMLE: ``CLMLEEmbedder`` defaults, ``transform``;
* LMLE: ``LMLEEmbedder`` defaults (quintuplet loss), ``transform``;
* triplet: ``LMLEEmbedder(loss="triplet")``, ``transform``;
* CE: ``CrossEntropyClassifier`` defaults; features are ``module_`` (the
  backbone output before the linear head), L2-normalised; LA-CE is
  ``logit_adjustment=1.0`` (long-tailed tasks only: on balanced data its
  offset is a constant and the fit is exactly CE's);
* CosFace / ArcFace / SphereFace: ``pytorch_metric_learning.losses``
  trained by the same engine (``_metric_losses.MetricLossClassifier``),
  pml 2.9.0 defaults (CosFace m=0.35, s=64; ArcFace m=28.6 deg, s=64;
  SphereFace m=4, scale = feature norm); features are ``module_`` as for CE.

Note the three embedders' package defaults include a cross-entropy term
(``ce_weight=1``) and a cross-entropy warm-up; ``ce_weight`` is one of the
tuned knobs below.

Metrics per fit (``sklearn_clmle.metrics``): 6000 pairs (3000 genuine +
3000 impostor, drawn by ``make_pairs`` with the seed) of the unseen test
rows: ROC AUC, TAR at FAR 1e-2 and 1e-3, 10-fold verification accuracy
(LFW protocol); rank-1 identification with half of the unseen test rows
(stratified, by the seed) as gallery and the other half as probes. On the
cnn2d tasks also the AUC with flip test-time augmentation
(``sklearn_clmle.tta.flip_concatenate``). Mean +- std over seeds.

Tuning (second table): every method gets the same number of trials (6, the
default among them; ``TRIALS``) of its main parameter (CLMLE: ``ce_weight``
and ``scale``; LMLE: ``ce_weight``; triplet: the margin ``g3``; CE:
``weight_decay``; CosFace/ArcFace: the margin), chosen by the mean dev ROC
AUC over ``DEV_SEEDS`` on a development split of the SEEN classes only:
train on the training rows of classes 0-4, verify pairs of the training rows
of classes 5 and 6. The unseen classes 7-9 are never used to choose.
Long-tailed tasks reuse the choice of their balanced task; the mlp task is
reported with defaults only (to fit the time budget).

Usage::

    python benchmarks/bench_verification.py            # results/verification.md
    python benchmarks/bench_verification.py --quick    # 1 seed, tiny budget, 3 trials, < 2 min
"""

import argparse
import os
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
from joblib import Parallel, delayed  # noqa: E402

SEEN = (0, 1, 2, 3, 4, 5, 6)
UNSEEN = (7, 8, 9)
#: Development split of the seen classes: train on DEV_TRAIN, verify DEV_HELD.
DEV_TRAIN = (0, 1, 2, 3, 4)
DEV_HELD = (5, 6)
N_PAIRS = 6000
FARS = (1e-2, 1e-3)
DEV_SEEDS = (100, 101)
#: ``name: (data set, imbalance ratio, backbone, the balanced task whose
#: tuning it takes, None: not tuned)``
TASKS = {
    "digits cnn2d": ("digits", 1, "cnn2d", "digits cnn2d"),
    "digits mlp": ("digits", 1, "mlp", None),
    "MNIST-1D cnn1d": ("mnist1d", 1, "cnn1d", "MNIST-1D cnn1d"),
    "digits cnn2d IR10": ("digits", 10, "cnn2d", "digits cnn2d"),
    "MNIST-1D cnn1d IR10": ("mnist1d", 10, "cnn1d", "MNIST-1D cnn1d"),
}
METHODS = ("CLMLE", "LMLE", "triplet", "CE", "LA-CE", "CosFace", "ArcFace", "SphereFace")
#: The tuning trials of each method (``{}`` is the package default): the
#: same number for every method, of its main parameter. CLMLE's are spread
#: over two documented knobs (the auxiliary term's weight and the scale).
#: CE's are also LA-CE's (on balanced data the two fits are identical).
TRIALS = {
    "CLMLE": [{}, {"ce_weight": 0.0}, {"ce_weight": 0.3}, {"ce_weight": 3.0},
              {"scale": 3.0}, {"scale": 30.0}],
    "LMLE": [{}, {"ce_weight": 0.0}, {"ce_weight": 0.1}, {"ce_weight": 0.3},
             {"ce_weight": 3.0}, {"ce_weight": 10.0}],
    "triplet": [{}, {"g3": 0.05}, {"g3": 0.1}, {"g3": 0.2}, {"g3": 0.65}, {"g3": 0.85}],
    "CE": [{}, {"weight_decay": 5e-5}, {"weight_decay": 1.5e-4}, {"weight_decay": 1.5e-3},
           {"weight_decay": 5e-3}, {"weight_decay": 1.5e-2}],
    "CosFace": [{}, {"margin": 0.05}, {"margin": 0.1}, {"margin": 0.2}, {"margin": 0.5},
                {"margin": 0.7}],
    "ArcFace": [{}, {"margin": 5.0}, {"margin": 10.0}, {"margin": 20.0}, {"margin": 40.0},
                {"margin": 50.0}],
}
#: Dense log grid of FARs on which mean ROC curves are drawn.
FAR_GRID = np.logspace(-3, 0, 61)


def load_raw(group):
    """The whole data set: ``(X, y)`` of digits, MNIST-1D's ``(X_tr, X_te, y_tr, y_te)``."""
    from sklearn.datasets import load_digits

    from sklearn_clmle.datasets import load_long_tailed_mnist1d

    if group == "digits":
        return load_digits(return_X_y=True)
    return load_long_tailed_mnist1d(imbalance_ratio=1)


def load_task(group, ratio, seed, stage, raw):
    """``X_fit, y_fit, X_eval, y_eval`` (standardised) of one task and seed.

    ``stage="test"``: training rows of the seen classes (long-tailed when
    ``ratio > 1``) and the test rows of the unseen ones. ``stage="dev"``:
    training rows of DEV_TRAIN and training rows of DEV_HELD.
    """
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    from sklearn_clmle.datasets import long_tail_indices

    if group == "digits":
        X, y = raw
        X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.5, stratify=y,
                                                  random_state=seed)
    else:
        X_tr, X_te, y_tr, y_te = raw
    seen = np.isin(y_tr, SEEN)
    X_tr, y_tr = X_tr[seen], y_tr[seen]
    if ratio > 1:
        keep = long_tail_indices(y_tr, ratio, random_state=seed)
        X_tr, y_tr = X_tr[keep], y_tr[keep]
    if stage == "dev":
        fit, held = np.isin(y_tr, DEV_TRAIN), np.isin(y_tr, DEV_HELD)
        X_fit, y_fit, X_ev, y_ev = X_tr[fit], y_tr[fit], X_tr[held], y_tr[held]
    else:
        unseen = np.isin(y_te, UNSEEN)
        X_fit, y_fit, X_ev, y_ev = X_tr, y_tr, X_te[unseen], y_te[unseen]
    scaler = StandardScaler().fit(X_fit)
    return (scaler.transform(X_fit).astype(np.float32), y_fit,
            scaler.transform(X_ev).astype(np.float32), y_ev)


class _BackboneFeatures:
    """``transform``: the L2-normalised backbone output of a fitted classifier."""

    def __init__(self, module):
        self.module = module

    def transform(self, X):
        import torch

        from sklearn_clmle._rows import Rows, embed

        X = np.ascontiguousarray(X, dtype=np.float32)
        return embed(self.module, Rows(X, torch.device("cpu")), 4096)


def trial_label(trial):
    """``"default"`` or ``"name=value"`` of one trial."""
    return ", ".join(f"{k}={v}" for k, v in trial.items()) or "default"


def make_estimator(method, backbone, seed, trial=None, quick=False):
    """The method's estimator, with the parameters of ``trial`` changed."""
    from _metric_losses import MetricLossClassifier

    from sklearn_clmle import CLMLEEmbedder, CrossEntropyClassifier, LMLEEmbedder

    common = dict(backbone=backbone, random_state=seed, n_threads=1)
    if backbone == "cnn2d":
        common["backbone_kwargs"] = {"image_shape": (8, 8)}
    embed_budget = dict(warmup_epochs=2, max_epochs=10) if quick else {}
    clf_budget = dict(max_epochs=12) if quick else {}
    extra = dict(trial or {})
    if method == "CLMLE":
        return CLMLEEmbedder(**common, **embed_budget, **extra)
    if method == "LMLE":
        return LMLEEmbedder(**common, **embed_budget, **extra)
    if method == "triplet":
        return LMLEEmbedder(loss="triplet", **common, **embed_budget, **extra)
    if method == "CE":
        return CrossEntropyClassifier(**common, **clf_budget, **extra)
    if method == "LA-CE":
        return CrossEntropyClassifier(logit_adjustment=1.0, **common, **clf_budget, **extra)
    loss = {"CosFace": "cosface", "ArcFace": "arcface", "SphereFace": "sphereface"}[method]
    return MetricLossClassifier(loss, **common, **clf_budget, **extra)


def evaluate(features, X_ev, y_ev, seed, image_shape=None):
    """The verification and identification metrics of ``features`` on ``X_ev``."""
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split

    from sklearn_clmle.metrics import (
        make_pairs,
        pair_similarity,
        rank1_identification,
        true_accept_rate,
        verification_accuracy,
        verification_roc_curve,
    )
    from sklearn_clmle.tta import flip_concatenate

    Z = features.transform(X_ev)
    pairs, is_same = make_pairs(y_ev, N_PAIRS, random_state=seed)
    scores = pair_similarity(Z, pairs)
    far, tar, _ = verification_roc_curve(is_same, scores)
    gal, probe = train_test_split(np.arange(y_ev.size), test_size=0.5, stratify=y_ev,
                                  random_state=seed)
    row = {
        "auc": float(roc_auc_score(is_same, scores)),
        "tar@1e-2": float(true_accept_rate(is_same, scores, far=FARS[0])),
        "tar@1e-3": float(true_accept_rate(is_same, scores, far=FARS[1])),
        "acc10": verification_accuracy(is_same, scores, n_folds=10, random_state=seed)[0],
        "rank1": rank1_identification(Z[gal], y_ev[gal], Z[probe], y_ev[probe]),
        # TAR at the FAR grid (the ROC is a step function: the best TAR with FAR <= f).
        "roc": np.maximum.accumulate(tar)[np.searchsorted(far, FAR_GRID, side="right") - 1],
        "n_genuine": int(is_same.sum()), "n_impostor": int((~is_same).sum()),
        "n_rows": int(y_ev.size),
    }
    if image_shape is not None:
        Zf = flip_concatenate(features, X_ev, image_shape=image_shape)
        row["auc_flip"] = float(roc_auc_score(is_same, pair_similarity(Zf, pairs)))
    return row


def run_one(task, method, seed, stage, trial, quick, raw):
    """Fit one method on one task and seed; score it (``raw``: :func:`load_raw`)."""
    import warnings

    import torch

    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    group, ratio, backbone, _ = TASKS[task]
    X_fit, y_fit, X_ev, y_ev = load_task(group, ratio, seed, stage, raw)
    est = make_estimator(method, backbone, seed, trial, quick)
    base = {"task": task, "method": method, "seed": seed, "stage": stage,
            "trial": trial_label(trial or {}), "n_fit": int(y_fit.size),
            "fit_counts": " ".join(str(c) for c in np.bincount(y_fit))}
    t0 = time.perf_counter()
    try:
        est.fit(X_fit, y_fit)
    except FloatingPointError as exc:
        return {**base, "seconds": time.perf_counter() - t0, "error": str(exc)[:80]}
    seconds = time.perf_counter() - t0
    features = est if hasattr(est, "transform") else _BackboneFeatures(est.module_)
    shape = (8, 8) if backbone == "cnn2d" and stage != "dev" else None
    return {**base, "seconds": seconds, "error": "",
            **evaluate(features, X_ev, y_ev, seed, shape)}


def _methods_for(task):
    """LA-CE only where the training classes are imbalanced."""
    return [m for m in METHODS if m != "LA-CE" or TASKS[task][1] > 1]


def _grid_key(method):
    return "CE" if method == "LA-CE" else method


def _fmt(values, digits=3):
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return "n/a"
    if values.size == 1:
        return f"{values[0]:.{digits}f}"
    return f"{values.mean():.{digits}f} ± {values.std(ddof=1):.{digits}f}"


def results_table(frame, tasks, label):
    """Markdown lines: one table per task, one row per method."""
    lines = []
    cols = [("auc", "ROC AUC"), ("tar@1e-2", "TAR@FAR1e-2"), ("tar@1e-3", "TAR@FAR1e-3"),
            ("acc10", "10-fold acc."), ("rank1", "rank-1")]
    for task in tasks:
        sub = frame[frame.task == task]
        if sub.empty:
            continue
        flip = "auc_flip" in sub and sub["auc_flip"].notna().any()
        header = [c[1] for c in cols] + (["AUC flip-TTA"] if flip else []) + ["trial", "fit s"]
        first = sub.iloc[0]
        lines += [f"### {task} ({label})", "",
                  f"Training rows per seen class 0-6 (seed {int(first.seed)}): "
                  f"{first.fit_counts}; unseen test rows (7, 8, 9): {int(first.n_rows)}; "
                  f"pairs per seed: {int(first.n_genuine)} genuine + "
                  f"{int(first.n_impostor)} impostor.", "",
                  "| method | " + " | ".join(header) + " |",
                  "|---|" + "---:|" * len(header)]
        for method in METHODS:
            rows = sub[sub.method == method]
            if rows.empty:
                continue
            ok = rows[rows.error == ""]
            if ok.empty:
                lines.append(f"| {method} | diverged ({rows.iloc[0].error}) |")
                continue
            cells = [_fmt(ok[c]) for c, _ in cols]
            if flip:
                cells.append(_fmt(ok["auc_flip"]))
            cells.append(rows.iloc[0].trial)
            cells.append(f"{ok.seconds.mean():.1f}")
            failed = len(rows) - len(ok)
            name = method + (f" ({failed} diverged)" if failed else "")
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def verdicts(frame, tasks, metric="auc"):
    """Per task: CLMLE against the best other method, paired over seeds.

    Returns the Markdown lines and, per task, ``"better"``, ``"worse"`` or
    ``"tie"`` (a mean paired difference within 2 standard errors).
    """
    lines, words = [], []
    for task in tasks:
        sub = frame[(frame.task == task) & (frame.error == "")]
        if sub.empty or "CLMLE" not in set(sub.method):
            continue
        means = sub.groupby("method")[metric].mean().drop("CLMLE")
        rival = means.idxmax()
        a = sub[sub.method == "CLMLE"].set_index("seed")[metric]
        b = sub[sub.method == rival].set_index("seed")[metric]
        diff = (a - b).dropna()
        se = diff.std(ddof=1) / np.sqrt(diff.size) if diff.size > 1 else np.nan
        wins = int((diff > 0).sum())
        if np.isfinite(se) and diff.mean() > 2 * se:
            word, text = "better", "CLMLE better"
        elif np.isfinite(se) and diff.mean() < -2 * se:
            word, text = "worse", f"{rival} better"
        else:
            word, text = "tie", "no significant difference"
        words.append(word)
        rank = int((sub.groupby("method")[metric].mean() > a.mean()).sum()) + 1
        lines.append(
            f"- {task}: CLMLE {metric.upper()} {a.mean():.3f} (rank {rank} of "
            f"{sub.method.nunique()}); best other: {rival} {b.mean():.3f}; paired "
            f"difference {diff.mean():+.3f} ± {se:.3f} (s.e.), CLMLE ahead in "
            f"{wins}/{diff.size} seeds: **{text}**."
        )
    return lines, words


def pairwise(frame, tasks, metric="auc"):
    """CLMLE minus each other method, paired by seed, per task.

    Returns the Markdown lines of the table (``*``: beyond 2 standard errors)
    and the counts of significant wins and losses over the (task, method)
    cells of the methods that trained (SphereFace excluded).
    """
    ok = frame[frame.task.isin(tasks) & (frame.error == "")]
    lines = ["| CLMLE minus | " + " | ".join(tasks) + " |",
             "|---|" + "---:|" * len(tasks)]
    wins = losses = cells = 0
    for method in METHODS[1:]:
        row = []
        for task in tasks:
            sub = ok[ok.task == task]
            a = sub[sub.method == "CLMLE"].set_index("seed")[metric]
            b = sub[sub.method == method].set_index("seed")[metric]
            diff = (a - b).dropna()
            if diff.size == 0:
                row.append("")
                continue
            se = diff.std(ddof=1) / np.sqrt(diff.size) if diff.size > 1 else np.nan
            sig = bool(np.isfinite(se) and abs(diff.mean()) > 2 * se)
            row.append(f"{diff.mean():+.3f}{'*' if sig else ''}")
            if method != "SphereFace":
                cells += 1
                wins += sig and diff.mean() > 0
                losses += sig and diff.mean() < 0
        if any(row):
            lines.append(f"| {method} | " + " | ".join(row) + " |")
    return lines, (int(wins), int(losses), cells)


def conclusion(words, counts, label, n_seeds):
    """One sentence on the paper's claim from the per-task verdicts."""
    if n_seeds < 2:
        return (f"**Conclusion ({label}):** one seed, so no difference can be called "
                "significant (a smoke test, not a result).")
    n, better, worse = len(words), words.count("better"), words.count("worse")
    ties = n - better - worse
    wins, losses, cells = counts
    head = (f"**Conclusion ({label}):** CLMLE's ROC AUC on the unseen classes is "
            f"significantly higher than the best other method's on {better} of {n} "
            f"tasks, significantly lower on {worse}, within seed noise on {ties}; "
            f"against each baseline separately (SphereFace excluded) it is "
            f"significantly higher in {wins} and lower in {losses} of {cells} "
            "(task, baseline) comparisons. ")
    if better == n:
        return head + "The paper's claim holds here."
    if better > worse and better * 2 >= n:
        return head + "The paper's claim holds on part of the tasks."
    if worse > better and worse * 2 >= n:
        return head + ("The paper's claim does not hold here: other losses "
                       "generalise better.")
    if better == 0 and losses == 0 and wins > 0:
        return head + ("The paper's claim holds only weakly here: CLMLE is never "
                       "significantly worse than a baseline and beats some of them, "
                       "but it is not better than the strongest baseline of each task "
                       "(which one that is changes from task to task).")
    return head + ("The paper's claim (better generalisation to unseen classes) is "
                   "not confirmed here: CLMLE's features generalise about as well as "
                   "the best baselines' on the same engine, not measurably better.")


RANKED = [("auc", "ROC AUC"), ("tar@1e-2", "TAR@1e-2"), ("tar@1e-3", "TAR@1e-3"),
          ("acc10", "10-fold acc."), ("rank1", "rank-1")]


def rank_table(frame, tasks):
    """Markdown lines: each method's rank by mean metric, averaged over tasks."""
    ok = frame[frame.task.isin(tasks) & (frame.error == "")]
    means = ok.groupby(["task", "method"])[[c for c, _ in RANKED]].mean()
    ranks = means.groupby(level="task").rank(ascending=False, method="average")
    mean_rank = ranks.groupby(level="method").mean()
    n_tasks = ranks.groupby(level="method").size()
    lines = ["| method | tasks | " + " | ".join(name for _, name in RANKED) + " |",
             "|---|---:|" + "---:|" * len(RANKED)]
    for method in METHODS:
        if method not in mean_rank.index:
            continue
        row = mean_rank.loc[method]
        lines.append(f"| {method} | {int(n_tasks[method])} | "
                     + " | ".join(f"{row[c]:.1f}" for c, _ in RANKED) + " |")
    return lines


#: One colour per method in every panel.
COLOURS = {"CLMLE": "k", "LMLE": "tab:blue", "triplet": "tab:orange", "CE": "tab:green",
           "LA-CE": "tab:olive", "CosFace": "tab:purple", "ArcFace": "tab:red",
           "SphereFace": "tab:gray"}


def plot_roc(frame, tasks, out):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_cols = 3
    n_rows = -(-(len(tasks) + 1) // n_cols)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(4.3 * n_cols, 3.8 * n_rows),
                             squeeze=False)
    axes = axes.ravel()
    for ax, task in zip(axes, tasks):
        sub = frame[(frame.task == task) & (frame.error == "")]
        for method in METHODS:
            rows = sub[sub.method == method]
            if rows.empty:
                continue
            tar = np.mean(np.stack(rows.roc.to_list()), axis=0)
            ax.plot(FAR_GRID, tar, label=method, color=COLOURS[method],
                    lw=2.4 if method == "CLMLE" else 1.2,
                    ls=":" if method == "SphereFace" else "-")
        ax.set_xscale("log")
        ax.set_xlim(FAR_GRID[0], 1)
        ax.set_ylim(0, 1)
        ax.set_title(task, fontsize=10)
        ax.set_xlabel("false accept rate")
        ax.set_ylabel("true accept rate")
        ax.grid(alpha=0.3, which="both")
    handles = [plt.Line2D([], [], color=COLOURS[m], lw=2.4 if m == "CLMLE" else 1.2,
                          ls=":" if m == "SphereFace" else "-") for m in METHODS]
    for ax in axes[len(tasks):]:
        ax.axis("off")
    axes[len(tasks)].legend(handles, METHODS, loc="center", fontsize=10,
                            title="mean TAR over seeds (defaults)")
    fig.suptitle("Verification of pairs of the unseen classes 7-9 (trained on 0-6)")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def _doc_paragraphs(start, stop):
    """The module docstring's paragraphs as Markdown (bullets kept)."""
    import re

    paragraphs = [re.sub(r"\n(?!\* )\s*", " ", p) for p in __doc__.split("\n\n")]
    return "\n\n".join(paragraphs[start:stop]).split("\n")


def main():
    import pandas as pd
    from _report import write_report

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--quick", action="store_true",
                        help="1 seed, 12 epochs, smoke test (< 2 min)")
    parser.add_argument("--no-tuning", action="store_true", help="defaults only")
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
    out = args.out or os.path.join(here, "verification_quick" if args.quick else "verification")
    seeds = range(1 if args.quick else args.seeds)
    dev_seeds = DEV_SEEDS[:1] if args.quick else DEV_SEEDS
    tasks = list(TASKS)
    t_start = time.perf_counter()
    parallel = Parallel(n_jobs=args.n_jobs, verbose=2)
    raw = {g: load_raw(g) for g in {spec[0] for spec in TASKS.values()}}

    def run(jobs):
        return parallel(delayed(run_one)(*j, raw[TASKS[j[0]][0]]) for j in jobs)

    def sort_slow_first(jobs):
        return sorted(jobs, key=lambda j: TASKS[j[0]][0] != "mnist1d")

    # 1. The development trials (seen classes only).
    tuned_tasks = [] if args.no_tuning else [t for t in tasks if TASKS[t][3] is not None]
    balanced = sorted({TASKS[t][3] for t in tuned_tasks}, key=tasks.index)
    trials = {m: (ts[:2] + ts[-1:] if args.quick else ts) for m, ts in TRIALS.items()}
    dev_jobs = [(t, m, s, "dev", trial, args.quick) for t in balanced
                for m, ts in trials.items() for trial in ts for s in dev_seeds]
    dev = pd.DataFrame(run(sort_slow_first(dev_jobs)))
    # 2. The dev-best trial per (balanced task, method).
    choice, choice_lines = {}, []
    if len(dev):
        dev_auc = dev[dev.error == ""].groupby(["task", "method", "trial"])["auc"].mean()
        for t in balanced:
            cells = []
            for m, ts in trials.items():
                labels = [trial_label(trial) for trial in ts]
                scores = dev_auc.loc[(t, m)].reindex(labels)
                best = int(np.nanargmax(scores.to_numpy()))
                choice[(t, m)] = ts[best]
                cells.append(f"{m}: " + ", ".join(
                    f"{lab}{' (chosen)' if i == best else ''} {scores.iloc[i]:.3f}"
                    for i, lab in enumerate(labels)))
            choice_lines += [f"- {t}:", *[f"  - {c}" for c in cells]]
    # 3. Defaults on the unseen classes, and the tuned refits (where the
    # choice is not the default), in one parallel batch.
    jobs = [(t, m, s, "test", None, args.quick) for t in tasks for m in _methods_for(t)
            for s in seeds]
    for t in tuned_tasks:
        for m in _methods_for(t):
            best = choice.get((TASKS[t][3], _grid_key(m)), {})
            if best:
                jobs += [(t, m, s, "tuned", best, args.quick) for s in seeds]
    frame = pd.DataFrame(run(sort_slow_first(jobs)))
    test = frame[frame.stage == "test"]
    tuned = None
    if tuned_tasks:
        # A method whose choice is its default keeps its default fits.
        default_kept = [test[(test.task == t) & (test.method == m)] for t in tuned_tasks
                        for m in _methods_for(t) if m != "SphereFace"
                        and not choice[(TASKS[t][3], _grid_key(m))]]
        tuned = pd.concat(default_kept + [frame[frame.stage == "tuned"]], ignore_index=True)
    wall = time.perf_counter() - t_start
    pd.concat([dev, frame], ignore_index=True).drop(columns=["roc"]).to_csv(
        out + ".csv", index=False)
    png = out + "_roc.png" if args.quick else os.path.join(here, "verification_roc.png")
    plot_roc(test, tasks, png)
    default_lines, default_words = verdicts(test, tasks)
    default_pairs, default_counts = pairwise(test, tasks)
    if tuned is not None:
        tuned_lines, tuned_words = verdicts(tuned, tuned_tasks)
        tuned_pairs, tuned_counts = pairwise(tuned, tuned_tasks)
    budget = ("quick budget: embedders 2 warm-up + 10 main epochs, classifiers 12"
              if args.quick else "embedders 30 warm-up + 150 main epochs, classifiers 180")
    lines = [
        "# Open-set verification: pairs of classes never seen in training",
        "",
        f"Trained on the training rows of classes {SEEN[0]}-{SEEN[-1]}; verified on pairs "
        f"of the test rows of the unseen classes {', '.join(map(str, UNSEEN))} "
        f"({N_PAIRS // 2} genuine + {N_PAIRS - N_PAIRS // 2} impostor pairs per seed, "
        "cosine similarity of the L2-normalised features). "
        f"Seeds {', '.join(map(str, seeds))}; {budget}; {args.n_jobs} processes of one "
        f"thread; wall time {wall / 60:.1f} min.",
        "",
        *_doc_paragraphs(1, 7),
        "",
        "Values: mean ± std over seeds (10-fold acc.: the mean of the 10 fold "
        "accuracies per seed, then mean ± std over seeds). `fit s`: mean seconds "
        "per fit on one shared thread.",
        "",
        "## Package defaults",
        "",
        *results_table(test, tasks, "defaults"),
        "CLMLE against the best other method (ROC AUC, paired by seed; 'better' "
        "means a mean paired difference beyond 2 standard errors):",
        "",
        *default_lines,
        "",
        "Mean rank of each method over the tasks (1 = best mean over seeds; LA-CE "
        "runs on the long-tailed tasks only):",
        "",
        *rank_table(test, tasks),
        "",
        "CLMLE's ROC AUC minus each method's, mean of the per-seed differences "
        "(`*`: beyond 2 standard errors, a lenient test with this few seeds):",
        "",
        *default_pairs,
        "",
        conclusion(default_words, default_counts, "package defaults", len(seeds)),
        "",
    ]
    if tuned is not None:
        lines += [
            "## Tuned on a development split of the seen classes",
            "",
            f"Each method: {len(next(iter(trials.values())))} trials of its main "
            "parameter (the package default among them); trained on the training "
            f"rows of classes {DEV_TRAIN[0]}-{DEV_TRAIN[-1]}, scored by the ROC AUC of "
            "pairs of the training rows of classes "
            f"{', '.join(map(str, DEV_HELD))}, mean over seeds "
            f"{', '.join(map(str, dev_seeds))}. Long-tailed tasks "
            "use the choice of their balanced task; LA-CE uses CE's. SphereFace and "
            f"the {', '.join(t for t in tasks if t not in tuned_tasks)} task are not tuned.",
            "",
            *choice_lines,
            "",
            *results_table(tuned, tuned_tasks, "tuned"),
            "CLMLE (tuned) against the best other tuned method:",
            "",
            *tuned_lines,
            "",
            "Mean rank over the tuned tasks:",
            "",
            *rank_table(tuned, tuned_tasks),
            "",
            "CLMLE's ROC AUC minus each method's (tuned):",
            "",
            *tuned_pairs,
            "",
            conclusion(tuned_words, tuned_counts, "tuned", len(seeds)),
            "",
        ]
    lines += [f"ROC curves (defaults, mean TAR over seeds): `{os.path.basename(png)}`", "",
              f"![verification ROC]({os.path.basename(png)})"]
    fails = pd.concat([dev, frame], ignore_index=True)
    fails = fails[fails.error != ""]
    if len(fails):
        lines += ["", "Diverged fits (FloatingPointError): " + "; ".join(
            f"{r.task}/{r.method}/{r.stage}/{r.trial}/seed {r.seed}"
            for r in fails.itertuples())]
    write_report(lines, out + ".md")


if __name__ == "__main__":
    main()
