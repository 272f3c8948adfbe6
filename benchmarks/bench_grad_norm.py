"""Gradient norms in normal training, and what clipping does when training blows up.

Part 1: on standardised inputs, fit CLMLEEmbedder (defaults) and
CrossEntropyClassifier at learning rates 0.01 and 0.03 and record the total
gradient norm of every SGD step (``history_["grad_norm"]``; the threshold
is set so high that nothing is clipped), and the share of steps that the
thresholds in ``CLIPS`` would clip.

Part 2: the same tasks on raw, unscaled inputs (what happens when a user
forgets the scaler), fitted without clipping (the default and the paper) and
with each of ``CLIPS``, next to the standardised reference; balanced
accuracy on the test part, or "diverged" when fit raised FloatingPointError.

Jobs run in two processes of one thread.

Usage::

    python benchmarks/bench_grad_norm.py [--out benchmarks/results/grad_norm.md]
"""

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from _report import write_report  # noqa: E402
from _suite_data import Task  # noqa: E402
from joblib import Parallel, delayed  # noqa: E402

TASKS = [
    Task("digits IR10", "digits", 10, "mlp"),
    Task("digits IR100", "digits", 100, "mlp"),
    Task("mnist1d IR10", "mnist1d", 10, "cnn1d"),
    Task("page-blocks", "keel", 0, "mlp"),
    Task("yeast", "keel", 0, "mlp"),
]
#: Recorded but never reached: the norms of unclipped training.
NO_CLIP = 1e12
#: The ``max_grad_norm`` values compared.
CLIPS = (10.0, 50.0)


def _estimator(kind, task, **params):
    from sklearn_clmle import CLMLEEmbedder, CrossEntropyClassifier

    cls = CLMLEEmbedder if kind == "CLMLE" else CrossEntropyClassifier
    return cls(backbone=task.backbone, n_threads=1, random_state=0, **params)


def _norms(task, kind, lr):
    from sklearn.preprocessing import StandardScaler

    X_train, _, y_train, _ = task.split(0)
    X_train = StandardScaler().fit_transform(X_train)
    est = _estimator(kind, task, learning_rate=lr, max_grad_norm=NO_CLIP).fit(X_train, y_train)
    if kind == "CLMLE":
        norms = np.concatenate([est.history_["warmup_grad_norm"], est.history_["grad_norm"]])
    else:
        norms = est.grad_norm_curve_
    return task.name, kind, lr, norms


def _unscaled(task, kind, clip, scaled=False):
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from sklearn_clmle import KNearestClusterClassifier

    X_train, X_test, y_train, y_test = task.split(0)
    est = _estimator(kind, task, max_grad_norm=clip)
    if kind == "CLMLE":
        est = make_pipeline(est, KNearestClusterClassifier(random_state=0))
    if scaled:
        est = make_pipeline(StandardScaler(), est)
    t0 = time.perf_counter()
    try:
        est.fit(X_train, y_train)
    except FloatingPointError:
        return task.name, kind, "scaled" if scaled else clip, None, time.perf_counter() - t0
    score = balanced_accuracy_score(y_test, est.predict(X_test))
    return task.name, kind, "scaled" if scaled else clip, score, time.perf_counter() - t0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results/grad_norm.md")
    args = parser.parse_args()

    from sklearn_clmle import CLMLEEmbedder, CrossEntropyClassifier

    default = CLMLEEmbedder().max_grad_norm
    assert default == CrossEntropyClassifier().max_grad_norm
    configs = (None, *CLIPS)
    kinds = ("CLMLE", "CE")
    t0 = time.perf_counter()
    part1 = Parallel(n_jobs=2)(
        delayed(_norms)(task, kind, lr)
        for task in TASKS for kind in kinds for lr in (0.01, 0.03)
    )
    part2 = Parallel(n_jobs=2)(
        [delayed(_unscaled)(task, kind, None, scaled=True) for task in TASKS for kind in kinds]
        + [delayed(_unscaled)(task, kind, clip)
           for task in TASKS for kind in kinds for clip in configs]
    )
    wall = time.perf_counter() - t0

    lines = [
        "# Gradient norms and `max_grad_norm`",
        "",
        f"Package default `max_grad_norm={default}`. Seed 0, default settings "
        "otherwise (CLMLE: warm-up + 5 x 200 iterations; CE: 1,200 iterations).",
        "",
        "## 1. Normal training (standardised inputs): total gradient norm per step",
        "",
        "| task | model | learning rate | median | 99th pct | max | "
        + " | ".join(f"steps above {c:g}" for c in CLIPS) + " |",
        "|---|---|---:|---:|---:|---:|" + "---:|" * len(CLIPS),
    ]
    for name, kind, lr, norms in part1:
        above = " | ".join(f"{100 * np.mean(norms > c):.2f}%" for c in CLIPS)
        lines.append(
            f"| {name} | {kind} | {lr} | {np.median(norms):.2f} | "
            f"{np.percentile(norms, 99):.2f} | {norms.max():.2f} | {above} |"
        )
    lines += [
        "",
        "## 2. Raw, unscaled inputs: balanced accuracy on the test part",
        "",
        "CLMLE is CLMLEEmbedder + KNearestClusterClassifier (defaults). "
        "\"diverged\": fit raised FloatingPointError.",
        "",
        "| task | model | standardised, no clipping | raw, no clipping | "
        + " | ".join(f"raw, max_grad_norm={c:g}" for c in CLIPS) + " |",
        "|---|---|---:|---:|" + "---:|" * len(CLIPS),
    ]
    results = {(n, k, c): (s, t) for n, k, c, s, t in part2}
    for task in TASKS:
        for kind in kinds:
            cells = []
            for clip in ("scaled", *configs):
                score, secs = results[(task.name, kind, clip)]
                cells.append("diverged" if score is None else f"{score:.3f}")
            lines.append(f"| {task.name} | {kind} | " + " | ".join(cells) + " |")
    lines += ["", f"Wall time: {wall:.0f} s."]
    write_report(lines, args.out)


if __name__ == "__main__":
    main()
