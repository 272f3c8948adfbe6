"""Gradient norms in normal training, and what clipping does when training blows up.

Part 1: on standardised inputs, fit CLMLEEmbedder and CrossEntropyClassifier
(defaults otherwise) at the default learning rate (``learning_rate="auto"``,
0.1 for SGD) and at three times it, and record the total gradient norm of
every optimiser step before clipping (CLMLE: the warm-up's steps and the
rounds'), and the share of steps that the thresholds in ``CLIPS`` would
clip. The engine computes the norm only when it clips, so these fits use
``max_grad_norm=NO_CLIP``, a threshold so high that nothing is clipped. It
keeps only the largest norm of each epoch (``history_[i]["grad_norm"]``),
so the per-step norms are taken by wrapping the engine's ``sgd_step``
during the fit; their count and maximum are checked against ``history_``.
A fit that diverges (FloatingPointError) is reported with the steps it ran.

Part 2: the same tasks on raw, unscaled inputs (what happens when a user
forgets the scaler), fitted without clipping (the paper; ``max_grad_norm=None``
passed explicitly, as the package default now clips) and with each of
``CLIPS`` (2.0 is the package default), next to the standardised reference
without clipping; balanced accuracy on the test part, or "diverged" when fit
raised FloatingPointError.

Jobs run in two processes of one thread.

Usage::

    python benchmarks/bench_grad_norm.py [--out benchmarks/results/grad_norm.md]
"""

import argparse
import contextlib
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
#: The ``max_grad_norm`` values compared (2.0: the package default).
CLIPS = (2.0, 10.0, 50.0)
#: Learning rates of part 1, as multiples of the default (SGD's "auto").
LR_FACTORS = (1, 3)


def _estimator(kind, task, **params):
    from sklearn_clmle import CLMLEEmbedder, CrossEntropyClassifier

    cls = CLMLEEmbedder if kind == "CLMLE" else CrossEntropyClassifier
    return cls(backbone=task.backbone, n_threads=1, random_state=0, **params)


@contextlib.contextmanager
def recorded_grad_norms():
    """The pre-clipping gradient norm of every step of the fits in the block.

    Wraps ``sklearn_clmle._training.sgd_step``, the step of the warm-up, of
    the CLMLE rounds and of CrossEntropyClassifier; the values it returns to
    the engine are unchanged.
    """
    from sklearn_clmle import _training

    norms = []
    original = _training.sgd_step

    def sgd_step(optimizer, loss, max_grad_norm=None, scaler=None):
        norm = original(optimizer, loss, max_grad_norm, scaler)
        norms.append(float("nan") if norm is None else float(norm))
        return norm

    _training.sgd_step = sgd_step
    try:
        yield norms
    finally:
        _training.sgd_step = original


def _norms(task, kind, lr):
    from sklearn.preprocessing import StandardScaler

    X_train, _, y_train, _ = task.split(0)
    X_train = StandardScaler().fit_transform(X_train)
    est = _estimator(kind, task, learning_rate=lr, max_grad_norm=NO_CLIP)
    diverged = False
    with recorded_grad_norms() as norms:
        try:
            est.fit(X_train, y_train)
        except FloatingPointError:
            diverged = True
    norms = np.asarray(norms)
    if not diverged:
        # The wrapper saw every step of the fit, with the engine's norms.
        assert norms.size == sum(row["steps"] for row in est.history_), norms.size
        assert np.isclose(norms.max(), max(row["grad_norm"] for row in est.history_))
    return task.name, kind, lr, norms, diverged


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
    from sklearn_clmle._settings import resolve_learning_rate

    clmle, ce = CLMLEEmbedder(), CrossEntropyClassifier()
    default = clmle.max_grad_norm
    assert default == ce.max_grad_norm
    base_lr = resolve_learning_rate(clmle.learning_rate, clmle.optimizer)
    assert base_lr == resolve_learning_rate(ce.learning_rate, ce.optimizer)
    rates = tuple(f * base_lr for f in LR_FACTORS)
    configs = (None, *CLIPS)
    kinds = ("CLMLE", "CE")
    t0 = time.perf_counter()
    part1 = Parallel(n_jobs=2)(
        delayed(_norms)(task, kind, lr)
        for task in TASKS for kind in kinds for lr in rates
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
        f"Package default `max_grad_norm={default}`, `learning_rate={clmle.learning_rate!r}` "
        f"({base_lr:g} for {clmle.optimizer}). Seed 0, default settings otherwise "
        f"(CLMLE: {clmle.warmup_epochs} warm-up epochs + {clmle.max_epochs} epochs in "
        f"{clmle.n_rounds} rounds; CE: {ce.max_epochs} epochs; batch 240).",
        "",
        "## 1. Normal training (standardised inputs): total gradient norm per step",
        "",
        "Every optimiser step, before clipping (none happens here); CLMLE's include "
        "its warm-up.",
        "",
        "| task | model | learning rate | median | 99th pct | max | "
        + " | ".join(f"steps above {c:g}" for c in CLIPS) + " |",
        "|---|---|---:|---:|---:|---:|" + "---:|" * len(CLIPS),
    ]
    for name, kind, lr, norms, diverged in part1:
        rate = f"{lr:g}" + (f" (diverged after {norms.size} steps)" if diverged else "")
        finite = norms[np.isfinite(norms)]
        if finite.size == 0:
            lines.append("| " + " | ".join([name, kind, rate] + [""] * (3 + len(CLIPS))) + " |")
            continue
        above = " | ".join(f"{100 * np.mean(finite > c):.2f}%" for c in CLIPS)
        lines.append(
            f"| {name} | {kind} | {rate} | {np.median(finite):.2f} | "
            f"{np.percentile(finite, 99):.2f} | {finite.max():.2f} | {above} |"
        )
    lines += [
        "",
        "## 2. Raw, unscaled inputs: balanced accuracy on the test part",
        "",
        "CLMLE is CLMLEEmbedder + KNearestClusterClassifier (defaults otherwise). "
        "\"no clipping\": `max_grad_norm=None`. "
        "\"diverged\": fit raised FloatingPointError.",
        "",
        "| task | model | standardised, no clipping | raw, no clipping | "
        + " | ".join(f"raw, max_grad_norm={c:g}" + (" (default)" if c == default else "")
                     for c in CLIPS) + " |",
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
