"""The GPU path: step throughput, clustering share, fit time, inference throughput.

On whatever CUDA device it finds (``--device``, default ``cuda``), in one
process:

1. samples per second of a CLMLE step against a plain cross-entropy step
   (``CrossEntropyClassifier(class_weight=None)``) of the same backbone and
   batch (the paper's M=12 clusters x 20 samples = 240), for the default
   MLP on 64-d rows and the ``cnn2d`` backbone on 1 x 28 x 28 images, in
   float32 and with ``mixed_precision="bf16"``; each from the ``history_``
   of a fit of ``--step-iterations`` steps per round (the clustering and
   embedding time excluded);
2. the share of a fit spent clustering and the fit time at ``--fit-rows``
   (default 1M and 10M), as ``bench_cluster_scale.py`` measures it
   (``--epochs`` per size; the default 30 + 150 epoch schedule projected
   from the measured per-epoch time);
3. ``transform`` and ``KNearestClusterClassifier.predict`` throughput (rows
   per second) over ``--infer-rows`` rows.

CI has no GPU: without one the script stops with a message unless
``--device cpu`` is given (a smoke run of the same code).

Usage::

    python benchmarks/bench_gpu.py [--device cuda] [--fit-rows 1000000 10000000]
        [--epochs 1+5 1+5] [--out benchmarks/results/gpu.md]
"""

import argparse
import sys
import time

import numpy as np
import torch

from _report import write_report
from bench_cluster_scale import long_tailed_blobs, measure
from sklearn_clmle import CLMLEEmbedder, CrossEntropyClassifier, KNearestClusterClassifier

BATCH = 240  # 12 clusters x 20 samples, the paper's batch


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def step_rate(kind, backbone, n_features, device, precision, iterations):
    """Samples per second of the training steps of one fit (clustering excluded)."""
    rng = np.random.default_rng(0)
    n = 20_000
    y = rng.integers(0, 10, n)
    X = (rng.normal(size=(n, n_features)) + y[:, None] * 0.1).astype(np.float32)
    common = dict(backbone=backbone, device=device, mixed_precision=precision,
                  random_state=0, n_threads=None)
    if kind == "clmle":
        est = CLMLEEmbedder(iterations_per_round=iterations, n_rounds=2,
                            warmup_iterations=0, init="input" if backbone == "mlp" else
                            "warmup", **common)
        if backbone != "mlp":
            est.set_params(warmup_iterations=20)
    else:
        est = CrossEntropyClassifier(max_iter=2 * iterations, batch_size=BATCH,
                                     class_weight=None, **common)
    est.fit(X, y)
    _sync(device)
    rows = [r for r in est.history_ if r["phase"] == "train"]
    seconds = sum(r["seconds"] for r in rows)
    if kind == "clmle":
        seconds -= sum(t["embed_time"] + t["cluster_time"]
                       for t in est.fit_stats_["round_times"])
    steps = sum(r["steps"] for r in rows)
    return steps * BATCH / seconds


def inference_rates(n, device):
    X, y = long_tailed_blobs(n)
    est = CLMLEEmbedder(iterations_per_round=50, n_rounds=1, warmup_iterations=50,
                        device=device, random_state=0).fit(X[:50_000], y[:50_000])
    est.transform(X[:10_000])  # warm-up
    _sync(device)
    t0 = time.perf_counter()
    Z = est.transform(X)
    _sync(device)
    t_transform = time.perf_counter() - t0
    knc = KNearestClusterClassifier(n_neighbors=20, cluster_size=200, random_state=0)
    knc.fit(Z[:200_000], y[:200_000])
    knc.predict(Z[:10_000])
    t0 = time.perf_counter()
    knc.predict(Z)
    t_predict = time.perf_counter() - t0
    return n / t_transform, n / t_predict, knc.cluster_centers_.shape[0]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--step-iterations", type=int, default=300)
    parser.add_argument("--fit-rows", type=int, nargs="*", default=[1_000_000, 10_000_000])
    parser.add_argument("--epochs", nargs="*", default=["1+5", "1+5"])
    parser.add_argument("--infer-rows", type=int, default=1_000_000)
    parser.add_argument("--out", default="benchmarks/results/gpu.md")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("No CUDA device here: nothing to measure (use --device cpu for a smoke run).")
    name = (torch.cuda.get_device_name(device) if device.type == "cuda"
            else f"CPU ({torch.get_num_threads()} threads)")
    lines = [f"# The GPU path on {name}", "", __doc__.split("\n\n")[1].replace("\n", " "),
             "", "## Step throughput (samples per second, batch 240)", "",
             "| backbone | precision | CLMLE step | cross-entropy step | ratio CE / CLMLE |",
             "|---|---|---|---|---|"]
    precisions = [None, "bf16"]
    for backbone, width in (("mlp", 64), ("cnn2d", 784)):
        for precision in precisions:
            clmle = step_rate("clmle", backbone, width, device, precision,
                              args.step_iterations)
            ce = step_rate("ce", backbone, width, device, precision, args.step_iterations)
            lines.append(f"| {backbone} | {precision or 'float32'} | {clmle:,.0f} | "
                         f"{ce:,.0f} | {ce / clmle:.2f} |")
            print(lines[-1], flush=True)
    lines += ["", "## Clustering share of fit", "",
              "| rows | clusters | epochs | fit (s) | clustering (s) | share | projected "
              "default fit (s) | projected share | cold (s) | warm (s) |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for n, epochs in zip(args.fit_rows, args.epochs):
        w, m = (int(v) for v in epochs.split("+"))
        r = measure(n, w, m, "gpu", device=device)
        lines.append(
            f"| {n:,} | {r['clusters']:,} | {w} + {m} | {r['fit']:.1f} | "
            f"{r['clustering']:.1f} | {100 * r['share']:.1f}% | {r['projected_fit']:.0f} | "
            f"{100 * r['projected_share']:.1f}% | {r['cold']:.2f} | {r['warm']:.2f} |")
        print(lines[-1], flush=True)
    transform, predict, k = inference_rates(args.infer_rows, device)
    lines += ["", "## Inference throughput", "",
              f"{args.infer_rows:,} rows: `transform` {transform:,.0f} rows/s; "
              f"k-NC `predict` (N = 20, {k:,} centroids) {predict:,.0f} rows/s."]
    write_report(lines, args.out)


if __name__ == "__main__":
    main()
