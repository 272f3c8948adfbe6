"""CLMLE training cost: step time against cross-entropy, clustering share, fit time.

1. Step time: one CLMLE step (batch sampling + forward + Eq. 9 loss +
   backward + SGD step + loss-cache update) against one plain cross-entropy
   step (random batch + forward + linear head + backward + SGD step) of the same
   backbone and batch size (paper: M=12 clusters x s=20 = 240 rows), measured in
   the same process on the same data; the ratio is what matters. Both run
   without gradient clipping (``max_grad_norm=None``) at ``learning_rate=0.01``
   with plain cross-entropy, as in the earlier runs of this benchmark (the
   package default ``max_grad_norm=2.0`` would add one gradient-norm
   computation to every step of both). The CLMLE step time is the ``seconds``
   of its one ``"train"`` row of ``history_`` (``iterations_per_round`` steps)
   minus the clustering in it (``fit_stats_["round_times"]``); the CE step
   time is the ``seconds`` of a ``CrossEntropyClassifier(max_iter=...)``'s
   ``history_`` rows over its ``n_steps_``. Batch sampling is timed by
   wrapping ``ClusterMarginObjective.sample`` during the fit (the engine no
   longer reports it).
2. Share of ``fit`` spent clustering (paper: "negligible"; target < 10%), from
   ``fit_stats_``.
3. ``fit`` time with the defaults on long-tailed digits (IR 10 and 100).
   The defaults are epoch budgets now (warm-up and main phase of
   ``warmup_epochs`` and ``max_epochs`` passes of batch 240), so the number
   of steps grows with the data.

Usage::

    python benchmarks/bench_train_step.py [--device cpu|cuda] [--threads 2]
        [--out benchmarks/results/train_step.md]
"""

import argparse
import contextlib
import os
import platform
import time

import numpy as np
import torch
from _report import write_report
from sklearn.datasets import make_classification

from sklearn_clmle import CLMLEEmbedder, CrossEntropyClassifier
from sklearn_clmle._objectives import ClusterMarginObjective
from sklearn_clmle._runtime import resolve_device
from sklearn_clmle.datasets import load_long_tailed_digits, long_tail_indices


def synthetic(n, n_features=64, n_classes=10, ir=10, seed=0):
    X, y = make_classification(
        n, n_features=n_features, n_informative=32, n_classes=n_classes,
        n_clusters_per_class=3, random_state=seed,
    )
    keep = long_tail_indices(y, ir, random_state=seed)
    return X[keep].astype(np.float32), y[keep]


def clustering_time(est):
    """Seconds in k-means and in re-embedding the training set, all rounds."""
    stats = est.fit_stats_
    rounds = stats["round_times"]
    cluster = sum(r["cluster_time"] for r in rounds) + stats["final_cluster_time"]
    embed = sum(r["embed_time"] for r in rounds) + stats["final_embed_time"]
    return cluster, embed


def training_time(est):
    """Seconds of the main phase's steps: its epochs less their re-clustering.

    Re-clustering (embedding and k-means) runs inside the first epoch of each
    round, so it is in that epoch's ``seconds``.
    """
    epochs = sum(row["seconds"] for row in est.history_ if row["phase"] == "train")
    rounds = est.fit_stats_["round_times"]
    return epochs - sum(r["embed_time"] + r["cluster_time"] for r in rounds)


@contextlib.contextmanager
def timed_sampling():
    """Seconds spent in ``ClusterMarginObjective.sample`` inside the block."""
    spent = [0.0]
    original = ClusterMarginObjective.sample

    def sample(self):
        t0 = time.perf_counter()
        try:
            return original(self)
        finally:
            spent[0] += time.perf_counter() - t0

    ClusterMarginObjective.sample = sample
    try:
        yield spent
    finally:
        ClusterMarginObjective.sample = original


def step_times(X, y, device, iterations, repeats):
    """Per-step seconds (median over repeats) of CLMLE and of plain CE.

    Also the per-step seconds of CLMLE's batch sampling (of the last run).
    """
    clmle, ce = [], []
    # Same optimiser for both, and no clipping: the step is forward,
    # backward and SGD step (plus CLMLE's sampling and loss-cache update).
    common = dict(learning_rate=0.01, max_grad_norm=None, device=device)
    for r in range(repeats):
        with timed_sampling() as sampling:
            est = CLMLEEmbedder(
                cluster_size=200, clusters_per_batch=12, samples_per_cluster=20,
                n_rounds=1, iterations_per_round=iterations, warmup_iterations=0,
                init="input", ce_loss="plain", random_state=r, **common,
            ).fit(X, y)
        assert est.n_steps_ == iterations
        clmle.append(training_time(est) / iterations)
        sample = sampling[0] / iterations
        clf = CrossEntropyClassifier(
            embedding_dim=est.embedding_dim, batch_size=240, max_iter=iterations,
            augment=None, random_state=r, **common,
        ).fit(X, y)
        ce.append(sum(row["seconds"] for row in clf.history_) / clf.n_steps_)
    return float(np.median(clmle)), float(np.median(ce)), sample


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="benchmarks/results/train_step.md")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dev = resolve_device(args.device)
    device_name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() or platform.machine()

    lines = [
        "# CLMLE training cost",
        "",
        f"Device: {dev} ({device_name}); torch {torch.__version__}, "
        f"{args.threads} CPU thread(s), {os.cpu_count()} cores visible.",
        "",
        "## Step time against cross-entropy (same backbone, batch 240)",
        "",
        "Default MLP backbone (64 -> 512 -> 64), paper batch: M=12 clusters x s=20.",
        f"Median over {args.repeats} runs of {args.iterations} steps; both SGD at "
        "learning rate 0.01 without gradient clipping.",
        "",
        "| training rows (after long-tailing) | CLMLE step (ms) | of which batch sampling (ms) | CE step (ms) | ratio CLMLE / CE |",
        "|---|---|---|---|---|",
    ]
    for n in (20_000, 200_000):
        X, y = synthetic(n)
        clmle, ce, sample = step_times(X, y, args.device, args.iterations, args.repeats)
        lines.append(
            f"| {len(y):,} | {clmle * 1e3:.2f} | {sample * 1e3:.2f} | {ce * 1e3:.2f} "
            f"| {clmle / ce:.2f} |"
        )
        print(lines[-1], flush=True)

    defaults = CLMLEEmbedder()
    lines += [
        "",
        "## Share of fit spent clustering, and fit time (defaults)",
        "",
        "Clustering = every round's equal-size spherical k-means plus the final one;",
        "re-embedding = the forward passes over the training set that feed it",
        "(both from `fit_stats_`). Defaults: {} warm-up + {} epochs in {} rounds,".format(
            defaults.warmup_epochs, defaults.max_epochs, defaults.n_rounds),
        "batch 240.",
        "",
        "| data | rows | clusters | fit (s) | clustering (s) | share | re-embedding (s) | share |",
        "|---|---|---|---|---|---|---|---|",
    ]
    cases = []
    for ir in (10, 100):
        X_tr, _, y_tr, _ = load_long_tailed_digits(ir, test_size=0.3, random_state=0)
        cases.append((f"long-tailed digits IR {ir}", X_tr, y_tr, {}))
    Xs, ys = synthetic(200_000)
    cases.append(("synthetic 64-d, 10 classes, IR 10, l=200", Xs, ys, {"cluster_size": 200}))
    cases.append((
        "same, 2000 iterations per round (paper: 2k-5k)", Xs, ys,
        {"cluster_size": 200, "iterations_per_round": 2000},
    ))
    for name, X, y, extra in cases:
        t0 = time.perf_counter()
        est = CLMLEEmbedder(device=args.device, random_state=0, **extra).fit(X, y)
        wall = time.perf_counter() - t0
        cluster, embed = clustering_time(est)
        lines.append(
            f"| {name} | {len(y):,} | {est.cluster_centers_.shape[0]} | {wall:.2f} "
            f"| {cluster:.3f} | {cluster / wall:.1%} | {embed:.3f} | {embed / wall:.1%} |"
        )
        print(lines[-1], flush=True)
    write_report(lines, args.out)


if __name__ == "__main__":
    main()
