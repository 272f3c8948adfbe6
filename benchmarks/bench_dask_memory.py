"""Peak memory per Dask worker of predict over an array bigger than a worker.

A ``LocalCluster`` on 127.0.0.1 (2 worker processes x 1 thread, no
dashboard) with a per-worker memory limit below the size of the data
predicts labels for ``--rows`` x 64 float32 rows (10M rows: 2.4 GiB) that are
generated lazily, block by block, on the workers, through
:func:`sklearn_clmle.dask.predict_blocks`. Two cases, each on a fresh
cluster:

* ``Pipeline(CLMLEEmbedder, KNearestClusterClassifier)`` on the raw rows;
* ``KNearestClusterClassifier`` alone, treating the 64 columns as embeddings.

The models are fitted on 2,000 rows in this process. Before the measured call
each worker runs one small block (so torch and the model are loaded) and
reports its peak resident set so far (``ru_maxrss``: the baseline); after it,
the peak again. Only per-class label counts come back to this process
(``da.bincount``), so the labels are never all held in one place. Wall time
covers the measured call only.

Usage::

    python benchmarks/bench_dask_memory.py [--rows 10000000]
        [--chunk-rows 100000] [--memory-limit 1.5GiB]
        [--out benchmarks/results/dask_memory.md]
"""

import argparse
import os
import resource
import time

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")

import dask  # noqa: E402
import dask.array as da  # noqa: E402
from _report import write_report  # noqa: E402
from dask.utils import format_bytes, parse_bytes  # noqa: E402
from distributed import Client, LocalCluster  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402

import sklearn_clmle  # noqa: E402
from sklearn_clmle import CLMLEEmbedder, KNearestClusterClassifier  # noqa: E402
from sklearn_clmle.dask import predict_blocks  # noqa: E402

D, C = 64, 10
TIMEOUT = 3600
CENTERS = np.random.default_rng(123).normal(size=(C, D)).astype(np.float32)


def _rows(n, seed):
    """``n`` rows around ``C`` class directions, float32, and their labels."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, C, n)
    X = CENTERS[y] + rng.standard_normal((n, D), dtype=np.float32)
    return X, y


def _block(block_info=None):
    """One lazily generated block (runs on a worker)."""
    info = block_info[None]
    (start, stop), _ = info["array-location"]
    return _rows(stop - start, seed=[7, info["chunk-location"][0]])[0]


def _lazy_rows(n_rows, chunk_rows):
    chunks = [chunk_rows] * (n_rows // chunk_rows)
    if n_rows % chunk_rows:
        chunks.append(n_rows % chunk_rows)
    return da.map_blocks(_block, dtype=np.float32, meta=np.empty((0, 0), np.float32),
                         chunks=(tuple(chunks), (D,)))


def _peak_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def _rss_bytes():
    import psutil  # a dependency of distributed

    return psutil.Process().memory_info().rss


def _models():
    X, y = _rows(2000, seed=0)
    pipe = make_pipeline(
        CLMLEEmbedder(embedding_dim=16, backbone_kwargs={"hidden_layer_sizes": (64,)},
                      n_rounds=3, iterations_per_round=20, warmup_iterations=20,
                      random_state=0, n_threads=1),
        KNearestClusterClassifier(random_state=0),
    ).fit(X, y)
    knc = KNearestClusterClassifier(random_state=0).fit(X, y)
    return {"Pipeline(CLMLEEmbedder, k-NC)": pipe, "k-NC on 64-d embeddings": knc}


def measure(name, model, args, memory_limit):
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                           host="127.0.0.1", dashboard_address=None,
                           memory_limit=memory_limit, silence_logs=40)
    client = Client(cluster, timeout=120)
    try:
        client.wait_for_workers(2, timeout=120)
        warm = predict_blocks(model, _lazy_rows(4 * 1000, 1000))
        client.compute(warm).result(timeout=TIMEOUT)  # both workers load the model
        pids = client.run(os.getpid)
        before = client.run(_peak_bytes)
        rss = client.run(_rss_bytes)
        X = _lazy_rows(args.rows, args.chunk_rows)
        start = time.perf_counter()
        counts = client.compute(da.bincount(predict_blocks(model, X), minlength=C))
        counts = counts.result(timeout=TIMEOUT)
        wall = time.perf_counter() - start
        after = client.run(_peak_bytes)
        assert client.run(os.getpid) == pids, "a worker was restarted"
        assert counts.sum() == args.rows
    finally:
        client.close(timeout=120)
        cluster.close(timeout=120)
    rows = []
    for worker in sorted(after):
        rows.append((name, worker.rsplit(":", 1)[1], rss[worker], before[worker],
                     after[worker]))
    print(f"{name}: {wall:.1f} s, " + ", ".join(
        f"RSS {format_bytes(r)}, peak {format_bytes(b)} -> {format_bytes(a)}"
        for _, _, r, b, a in rows), flush=True)
    return rows, wall


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--chunk-rows", type=int, default=100_000)
    parser.add_argument("--memory-limit", default="1.5GiB")
    parser.add_argument("--out", default=os.path.join(
        os.path.dirname(__file__), "results", "dask_memory.md"))
    args = parser.parse_args()
    memory_limit = parse_bytes(args.memory_limit)
    data_bytes = args.rows * D * 4
    MiB = 2.0 ** 20
    lines = [
        "# Peak memory per Dask worker: predict over data bigger than a worker",
        "",
        "Generated by `benchmarks/bench_dask_memory.py`: "
        f"{args.rows:,} x {D} float32 rows ({format_bytes(data_bytes)}), generated "
        f"lazily in blocks of {args.chunk_rows:,} rows "
        f"({format_bytes(args.chunk_rows * D * 4)}) on the workers; "
        "`sklearn_clmle.dask.predict_blocks(model, X)`; LocalCluster on "
        "127.0.0.1, 2 worker processes x 1 thread, memory limit "
        f"{format_bytes(memory_limit)} per worker "
        f"({'below' if memory_limit < data_bytes else 'NOT below'} the data size). "
        "Peak = `ru_maxrss` of the worker process; the baseline (RSS and peak "
        "before) is read after loading torch and the model (one small warm-up "
        "block); `peak - RSS before` bounds what the predict itself needed. "
        "Only per-class label counts are gathered.",
        "",
        "| model | worker | RSS before (MiB) | peak before (MiB) | "
        "peak after predict (MiB) | peak - RSS before (MiB) | wall (s) | rows/s |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    worst = 0.0
    for name, model in _models().items():
        rows, wall = measure(name, model, args, memory_limit)
        for model_name, port, rss, before, after in rows:
            worst = max(worst, after)
            lines.append(
                f"| {model_name} | :{port} | {rss / MiB:.0f} | {before / MiB:.0f} | "
                f"{after / MiB:.0f} | {(after - rss) / MiB:.0f} | {wall:.1f} | "
                f"{args.rows / wall:,.0f} |")
    lines += [
        "",
        f"Largest worker peak: {worst / MiB:.0f} MiB, "
        f"{worst / memory_limit:.0%} of the worker limit and "
        f"{worst / data_bytes:.0%} of the data size; no worker was restarted.",
        "",
        f"dask {dask.__version__}, sklearn-clmle {sklearn_clmle.__version__}.",
    ]
    write_report(lines, args.out)


if __name__ == "__main__":
    main()
