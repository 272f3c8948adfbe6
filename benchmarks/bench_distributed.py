"""Two gloo ranks against one process: time per epoch and balanced accuracy.

One model trained by two processes through ``torch.distributed``
(``DistributedDataParallel``, the gloo backend, on the CPU) against the same
fit in one process, on long-tailed digits at imbalance ratio 10 (the
suite's problem: 352 training rows, the untouched 899-row test half,
standardised on the training part). Methods: CLMLE with the package
defaults, scored by ``KNearestClusterClassifier``, and logit-adjusted
cross-entropy (``logit_adjustment=1``), both with the default budgets (30
warm-up + 150 epochs; 180 epochs). Three ways to run them:

- one process (one thread);
- two ranks with the default batch on each rank (12 clusters x 20 rows, or
  240 rows): each epoch is still one pass over the data, so each rank runs
  half the steps of the one-process fit, each step of twice the rows;
- two ranks with the batch halved on each rank (``samples_per_cluster=10``,
  ``batch_size=120``): the one-process batch split over the ranks, the
  same number of steps.

Each rank runs one thread; the two ranks share this machine's cores and
meet through a file (``init_method="file://..."``, gloo on the loopback
interface). On two cores this measures that the distributed fit is correct
and what it costs, not a speed-up: the epoch's work is split between two
processes that share the cores the one process had to itself. The clocks
start after the processes' start and imports (timed apart).

Usage::

    python benchmarks/bench_distributed.py [--seeds 3]
"""

import argparse
import os
import sys
import tempfile
import time
from datetime import timedelta

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
from _report import write_report  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "distributed.md")
METHODS = ("CLMLE + k-NC", "logit-adj. CE")
RUNS = ("1 process", "2 ranks, batch per rank", "2 ranks, batch split")


def _problem():
    from sklearn.preprocessing import StandardScaler

    from sklearn_clmle.datasets import load_long_tailed_digits

    X_tr, X_te, y_tr, y_te = load_long_tailed_digits(10, random_state=0)
    scaler = StandardScaler().fit(X_tr)
    return scaler.transform(X_tr), scaler.transform(X_te), y_tr, y_te


def _fit(method, seed, split_batch):
    """Fit ``method`` here (one process or one rank); return its row of results."""
    import warnings

    from sklearn.metrics import balanced_accuracy_score

    from sklearn_clmle import CLMLEEmbedder, CrossEntropyClassifier, KNearestClusterClassifier

    warnings.filterwarnings("ignore")
    X_tr, X_te, y_tr, y_te = _problem()
    common = dict(random_state=seed, n_threads=1)
    if method == "CLMLE + k-NC":
        est = CLMLEEmbedder(**common, **({"samples_per_cluster": 10} if split_batch else {}))
    else:
        est = CrossEntropyClassifier(logit_adjustment=1.0, **common,
                                     **({"batch_size": 120} if split_batch else {}))
    t0 = time.perf_counter()
    est.fit(X_tr, y_tr)
    seconds = time.perf_counter() - t0
    if method == "CLMLE + k-NC":
        knc = KNearestClusterClassifier(random_state=seed).fit(est.transform(X_tr), y_tr)
        pred = knc.predict(est.transform(X_te))
    else:
        pred = est.predict(X_te)
    rows = est.history_
    return {
        "fit_seconds": seconds,
        "epoch_seconds": float(np.mean([r["seconds"] for r in rows])),
        "epochs": len(rows),
        "steps": int(sum(r["steps"] for r in rows)),
        "balanced_accuracy": balanced_accuracy_score(y_te, pred),
    }


def _rank(rank, world, init, seed, split_batch, folder):
    """One rank of a two-rank run (``torch.multiprocessing.spawn`` calls it)."""
    import json

    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world,
                            timeout=timedelta(minutes=10))
    import torch

    _problem()  # the imports, before the clocks start
    # torch's first DistributedDataParallel in a process imports its compiler
    # stack (sympy, dynamo): a once-per-process cost, timed on its own.
    t0 = time.perf_counter()
    torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(2, 2))
    first_ddp = time.perf_counter() - t0
    results = {}
    for method in METHODS:
        dist.barrier()  # both ranks start the timed fit together
        results[method] = _fit(method, seed, split_batch)
    if rank == 0:
        for row in results.values():
            row["first_ddp_seconds"] = first_ddp
        with open(os.path.join(folder, "results.json"), "w") as fh:
            json.dump(results, fh)
    dist.destroy_process_group()


def _two_ranks(seed, split_batch):
    import json

    import torch.multiprocessing as mp

    with tempfile.TemporaryDirectory() as folder:
        init = "file://" + os.path.join(folder, "rendezvous")
        t0 = time.perf_counter()
        mp.spawn(_rank, args=(2, init, seed, split_batch, folder), nprocs=2)
        launch = time.perf_counter() - t0
        with open(os.path.join(folder, "results.json")) as fh:
            results = json.load(fh)
    for row in results.values():
        row["launch_seconds"] = launch
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    seeds = range(args.seeds)
    load_start = os.getloadavg()[0]
    results = {}  # (run, method) -> list of rows, one per seed
    for seed in seeds:
        for method in METHODS:
            results.setdefault((RUNS[0], method), []).append(_fit(method, seed, False))
        for run, split in zip(RUNS[1:], (False, True)):
            for method, row in _two_ranks(seed, split).items():
                results.setdefault((run, method), []).append(row)
        print(f"seed {seed} done", flush=True)

    def mean(run, method, key):
        return np.mean([r[key] for r in results[(run, method)]])

    def spread(run, method, key):
        v = [r[key] for r in results[(run, method)]]
        return f"{np.mean(v):.3f} ({np.min(v):.3f}-{np.max(v):.3f})"

    lines = [
        "# Two gloo ranks against one process (torch.distributed, CPU)",
        "",
        "One model trained by two processes with DistributedDataParallel (gloo, "
        "one thread each, sharing this machine's cores) against the same fit in "
        "one process (one thread), on long-tailed digits at imbalance ratio 10 "
        "(352 training rows, the 899-row test half; standardised). Package "
        "defaults: CLMLE (30 warm-up + 150 epochs, 12 clusters x 20 rows a batch) "
        "scored by KNearestClusterClassifier, and logit-adjusted cross-entropy "
        "(180 epochs, 240 rows a batch). An epoch is one pass over the training "
        "rows by all ranks together: with the batch per rank, each rank runs half "
        "the one-process steps, each of twice the rows; with the batch split "
        "(`samples_per_cluster=10`, `batch_size=120`), the same steps of the same "
        "global batch. "
        f"Mean over random_state {', '.join(map(str, seeds))} (min-max).",
        "",
        "**On 2 cores this measures correctness and overhead, not speed-up**: "
        "the two ranks share the cores the one process has to itself, and a "
        "rank's epoch adds an all-reduce of the gradients per step, the "
        "gathered embedding and rank 0's clustering broadcast per round.",
        "",
        "| method | run | steps per rank | s / epoch | fit s | test balanced accuracy |",
        "|---|---|---:|---:|---:|---|",
    ]
    for method in METHODS:
        for run in RUNS:
            lines.append(
                f"| {method} | {run} | {mean(run, method, 'steps'):.0f} | "
                f"{mean(run, method, 'epoch_seconds'):.4f} | "
                f"{mean(run, method, 'fit_seconds'):.1f} | "
                f"{spread(run, method, 'balanced_accuracy')} |"
            )
    launches = [r["launch_seconds"] for run in RUNS[1:] for r in results[(run, METHODS[0])]]
    first_ddp = [r["first_ddp_seconds"] for run in RUNS[1:] for r in results[(run, METHODS[0])]]
    lines += [
        "",
        "s / epoch: mean of `history_` seconds over all epochs (warm-up and main "
        "phase; rank 0's clock for two ranks), re-clustering included. fit s: the "
        "`fit` call on rank 0. Not in them: a process's first "
        "`DistributedDataParallel` imports torch's compiler stack, "
        f"{np.mean(first_ddp):.1f} s on average (once per process, before the "
        "first distributed fit). Starting two ranks (spawn, imports, rendezvous) "
        f"and fitting both methods took {np.mean(launches):.1f} s per launch on "
        "average. The machine is shared: "
        f"its 1-minute load average was {load_start:.1f} at the start and "
        f"{os.getloadavg()[0]:.1f} at the end, so the times are noisy.",
    ]
    write_report(lines, OUT)


if __name__ == "__main__":
    main()
