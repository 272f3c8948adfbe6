"""Peak memory of transform / predict on 2M rows and of fit on 1M rows.

Every case runs in a fresh Python process. It imports everything, fits its
model on small data (20,000 rows), runs ``gc.collect()`` and ``malloc_trim``
and reads the baseline: the resident set size then (``RSS before``) and the
peak so far (``ru_maxrss``). Only then is the big input built, block by block
so that building it needs no full-size temporaries, and the measured call
made. ``peak after`` is ``ru_maxrss`` after the call, which covers building
the input too. The ratio is

    (peak after - RSS before) / (input + output),

the memory the call needed per byte of its input and output (1.0: nothing
beyond them); using the current RSS rather than the earlier peak as the
baseline can only make the ratio larger. Torch and the estimators run with 2
threads.

Usage::

    python benchmarks/bench_memory.py [--rows 2000000] [--fit-rows 1000000]
        [--out benchmarks/results/memory.md]
"""

import argparse
import json
import os
import subprocess
import sys
import time

from _report import write_report

CASE = r"""
import ctypes, gc, json, resource, sys, time
import numpy as np
import scipy.sparse as sp
import torch
from sklearn.pipeline import make_pipeline
from sklearn_clmle import CLMLEEmbedder, KNearestClusterClassifier

torch.set_num_threads(2)
kind, n = sys.argv[1], int(sys.argv[2])
MiB = 2.0 ** 20
BLOCK = 16_384  # rows per generated block: the input needs no big temporaries
D, C = 64, 10
CENTERS = np.random.default_rng(123).normal(size=(C, D))


def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB


def rss():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize() / MiB


def blobs(n, dtype=np.float32, y=None, seed=1, unit=False):
    # Rows around C class directions, built in blocks into one array.
    rng = np.random.default_rng(seed)
    y = rng.integers(0, C, n) if y is None else y
    X = np.empty((n, D), dtype=dtype)
    for s in range(0, n, BLOCK):
        e = min(s + BLOCK, n)
        block = CENTERS[y[s:e]] + rng.normal(scale=1.5, size=(e - s, D))
        if unit:
            block /= np.linalg.norm(block, axis=1, keepdims=True)
        X[s:e] = block
    return X, y


def sparse_rows(n, seed=1):
    # CSR float64, 6 or 7 of 64 features per row (10% density on average).
    rng = np.random.default_rng(seed)
    counts = 6 + (rng.random(n) < 0.4)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    data = np.empty(indptr[-1], dtype=np.float64)
    indices = np.empty(indptr[-1], dtype=np.int32)
    for s in range(0, n, BLOCK):
        e = min(s + BLOCK, n)
        cols = np.argsort(rng.random((e - s, D)), axis=1)[:, :7]
        cols = np.sort(np.where(np.arange(7) < counts[s:e, None], cols, D), axis=1)
        indices[indptr[s]:indptr[e]] = cols[cols < D]
        data[indptr[s]:indptr[e]] = rng.normal(size=indptr[e] - indptr[s])
    return sp.csr_matrix((data, indices, indptr.astype(np.int32)), shape=(n, D))


def nbytes(a):
    if sp.issparse(a):
        return a.data.nbytes + a.indices.nbytes + a.indptr.nbytes
    return a.nbytes


SMALL = dict(n_rounds=1, iterations_per_round=20, warmup_iterations=20,
             n_threads=2, random_state=0)
X_small, y_small = blobs(20_000, seed=0)
if kind.startswith("transform"):
    model = CLMLEEmbedder(**SMALL).fit(X_small, y_small)
elif kind == "knc_predict":
    X_small, y_small = blobs(20_000, seed=0, unit=True)
    model = KNearestClusterClassifier(cluster_size=60, random_state=0).fit(X_small, y_small)
elif kind == "pipeline_predict":
    model = make_pipeline(
        CLMLEEmbedder(**SMALL), KNearestClusterClassifier(cluster_size=60, random_state=0)
    ).fit(X_small, y_small)
else:  # fit: a small fit first, so that the baseline holds what fit loads
    CLMLEEmbedder(**SMALL).fit(X_small[:2_000], y_small[:2_000])
info = {}
if kind == "knc_predict":
    info["centroids"] = int(model.cluster_centers_.shape[0])
if kind == "pipeline_predict":
    info["centroids"] = int(model[-1].cluster_centers_.shape[0])
del X_small, y_small
gc.collect()
ctypes.CDLL("libc.so.6").malloc_trim(0)
before_rss, before_peak = rss(), peak()

if kind == "transform_f32":
    X, _ = blobs(n)
elif kind == "transform_f64":
    X, _ = blobs(n, dtype=np.float64)
elif kind == "transform_csr":
    X = sparse_rows(n)
elif kind == "knc_predict":
    X, _ = blobs(n, unit=True)
elif kind == "pipeline_predict":
    X, _ = blobs(n)
else:
    # Long-tailed: class c has a share proportional to 0.01 ** (c / 9).
    share = 0.01 ** (np.arange(C) / (C - 1))
    y = np.random.default_rng(2).choice(C, n, p=share / share.sum())
    X, y = blobs(n, y=y)
    info["class_sizes"] = np.bincount(y, minlength=C).tolist()
t0 = time.perf_counter()
if kind.startswith("transform"):
    out = model.transform(X)
elif kind.endswith("predict"):
    out = model.predict(X)
else:
    est = CLMLEEmbedder(n_rounds=2, iterations_per_round=20, warmup_iterations=20,
                        n_threads=2, random_state=0).fit(X, y)
    out = None
    stats = est.fit_stats_
    train = [row for row in est.history_ if row["phase"] == "train"]
    # iterations_per_round: every "train" epoch of history_ is one round, and
    # its seconds include the re-clustering that opens it.
    assert len(train) == len(stats["round_times"]), (len(train), stats["round_times"])
    info.update(
        cluster_size=int(est.cluster_size_),
        n_clusters=int(est.cluster_centers_.shape[0]),
        warmup=sum(row["seconds"] for row in est.history_ if row["phase"] == "warmup"),
        rounds=[{"embed_time": rt["embed_time"], "cluster_time": rt["cluster_time"],
                 "train_time": row["seconds"] - rt["embed_time"] - rt["cluster_time"]}
                for row, rt in zip(train, stats["round_times"])],
        final_embed=stats["final_embed_time"], final_cluster=stats["final_cluster_time"],
    )
seconds = time.perf_counter() - t0
if kind == "fit":
    # Input checks, setup and the embedding after the warm-up: not timed by fit.
    info["rest"] = seconds - info["warmup"] - info["final_embed"] - info["final_cluster"] - sum(
        sum(r.values()) for r in info["rounds"])
print(json.dumps({
    "before_rss": before_rss, "before_peak": before_peak, "after": peak(),
    "in": nbytes(X) / MiB, "out": 0.0 if out is None else out.nbytes / MiB,
    "dtype": str(X.dtype), "seconds": seconds, **info,
}))
"""

CASES = {
    "transform_f32": "`CLMLEEmbedder.transform`, float32",
    "transform_f64": "`CLMLEEmbedder.transform`, float64",
    "transform_csr": "`CLMLEEmbedder.transform`, CSR float64, 10% dense",
    "knc_predict": "`KNearestClusterClassifier.predict` on embeddings",
    "pipeline_predict": "`Pipeline(embedder, classifier).predict`",
}


def run_case(kind, n):
    res = subprocess.run(
        [sys.executable, "-c", CASE, kind, str(n)], capture_output=True, text=True,
    )
    if res.returncode:
        raise RuntimeError(f"case {kind} failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--fit-rows", type=int, default=1_000_000)
    parser.add_argument("--out", default="benchmarks/results/memory.md")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    lines = [
        "# Memory of transform, predict and fit",
        "",
        "Generated by `benchmarks/bench_memory.py`: one fresh process per case,",
        "64 features, 10 classes, torch and the estimators on 2 threads. Models",
        "for transform / predict are fitted on 20,000 rows first: the embedder",
        "(default MLP 64 -> 512 -> 64, `inference_batch_size=4096`) with 1 round",
        "of 20 iterations after 20 warm-up iterations, the classifier with",
        "`cluster_size=60` (a few hundred centroids, `chunk_size=1024`, N=5).",
        "MiB. `RSS before` is the resident memory after that fit, before the",
        "input exists; `peak after` is `ru_maxrss` after the call (building the",
        "input included, in blocks of 16,384 rows); ratio = (peak after - RSS",
        "before) / (input + output). The goal is at most about 1.5.",
        "",
        "## transform / predict, {:,} rows".format(args.rows),
        "",
        "| call | input | output | RSS before | peak RSS before | peak after "
        "| growth | ratio | seconds |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    notes = {}
    for kind, label in CASES.items():
        r = run_case(kind, args.rows)
        growth = r["after"] - r["before_rss"]
        ratio = growth / (r["in"] + r["out"])
        lines.append(
            f"| {label} | {r['in']:.0f} | {r['out']:.0f} | {r['before_rss']:.0f} "
            f"| {r['before_peak']:.0f} | {r['after']:.0f} | {growth:.0f} "
            f"| {ratio:.2f} | {r['seconds']:.1f} |"
        )
        notes[kind] = r
        print(lines[-1], flush=True)
    r = run_case("fit", args.fit_rows)
    growth = r["after"] - r["before_rss"]
    t_wall = r["seconds"]
    lines += [
        "",
        "Classifier centroids: {} (predict), {} (pipeline). A scikit-learn",
        "`Pipeline` materialises the embedder's output before the classifier",
        "runs, so its growth includes the whole {:.0f} MiB intermediate",
        "embedding, which is neither input nor output: its ratio counts it.",
    ]
    lines[-4] = lines[-4].format(
        notes["knc_predict"]["centroids"], notes["pipeline_predict"]["centroids"]
    )
    lines[-2] = lines[-2].format(args.rows * 64 * 4 / 2**20)
    lines += [
        "",
        "## fit, {:,} rows".format(args.fit_rows),
        "",
        "`CLMLEEmbedder(n_rounds=2, iterations_per_round=20, warmup_iterations=20,",
        "n_threads=2)`, float32 input, `cluster_size=\"auto\"` -> {}, {} clusters;".format(
            r["cluster_size"], r["n_clusters"]),
        "long-tailed classes of {} rows.".format(", ".join(f"{c:,}" for c in r["class_sizes"])),
        "Ratio = (peak after - RSS before) / input.",
        "",
        "| input | RSS before | peak RSS before | peak after | growth | ratio | wall s |",
        "|---|---|---|---|---|---|---|",
        f"| {r['in']:.0f} | {r['before_rss']:.0f} | {r['before_peak']:.0f} "
        f"| {r['after']:.0f} | {growth:.0f} | {growth / r['in']:.2f} | {t_wall:.1f} |",
        "",
        "Time split (seconds, from `history_` and `fit_stats_`; a round's train",
        "time is its epoch's `seconds` less the re-clustering that opens it):",
        "",
        "| phase | embed | cluster | train | total |",
        "|---|---|---|---|---|",
        f"| warm-up (cross-entropy steps) | | | {r['warmup']:.1f} | {r['warmup']:.1f} |",
    ]
    for i, rd in enumerate(r["rounds"]):
        parts = (rd["embed_time"], rd["cluster_time"], rd["train_time"])
        lines.append(
            f"| round {i + 1} | {parts[0]:.1f} | {parts[1]:.1f} | {parts[2]:.1f} "
            f"| {sum(parts):.1f} |"
        )
    lines.append(
        f"| final embedding and clustering | {r['final_embed']:.1f} "
        f"| {r['final_cluster']:.1f} | | {r['final_embed'] + r['final_cluster']:.1f} |"
    )
    lines.append(
        "| rest of fit: input checks, setup, embedding the training set after the "
        f"warm-up | | | | {r['rest']:.1f} |"
    )
    print(lines[-1], flush=True)
    emb_mib = args.fit_rows * 64 * 4 / 2**20
    lines += [
        "",
        f"The fit's growth holds the input itself ({r['in']:.0f} MiB, built after the",
        f"baseline), the training-set embedding ({emb_mib:.0f} MiB, n x 64 float32),",
        "refilled in place each round, and the clustering's working memory: a",
        "float32 copy of one class at a time, its",
        "candidate lists (8 clusters a point) and O(n) arrays. No points x",
        "clusters matrix above `CHUNK_ELEMENTS` = 2**22 similarities (16 MiB) is",
        "built; the dense (n_c, K_c) float32 matrix of the largest class would be",
        "{:.0f} MiB.".format(
            max(r["class_sizes"]) * (max(r["class_sizes"]) // r["cluster_size"]) * 4 / 2**20
        ),
        "",
        f"Load average (1 min) when the benchmark started: {load:.2f}.",
    ]
    write_report(lines, args.out)


if __name__ == "__main__":
    start = time.perf_counter()
    main()
    print(f"total {time.perf_counter() - start:.0f} s")
