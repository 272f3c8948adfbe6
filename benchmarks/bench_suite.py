"""CLMLE against the SMOTE and deep baselines: the benchmark suite.

Datasets: long-tailed digits and MNIST-1D at imbalance ratios 1 (balanced
control), 10 and 100, and KEEL sets (``_keel.py``). Methods: see
``_suite_methods.py``. For every (dataset, seed): split, carve a validation
part (25% per class) from the training part, choose each method's
hyper-parameters on it (``_suite_tuning.py``), refit on the whole training
part, score on test. Jobs run in two processes of one thread each.

Writes ``<out>.csv`` (one row per dataset, seed and method), ``<out>.md``
(tables), ``<out>_ir.png`` and ``<out>_tail.png``. Finished jobs are kept in
``<out>_jobs/``, so an interrupted run resumes (delete it to start afresh).

Usage::

    python benchmarks/bench_suite.py                 # full suite, 3 seeds
    python benchmarks/bench_suite.py --quick         # minutes: 3 datasets, 1 seed
    python benchmarks/bench_suite.py --report-only   # tables/plots from the CSV
"""

import argparse
import json
import os
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
from joblib import Parallel, delayed  # noqa: E402

QUICK_KEEL = ("ecoli", "yeast6")
#: KEEL sets of the full suite: 5 binary, 5 multiclass, imbalance ratio 1.9 to
#: 175 (ten of ``_keel.KEEL_DATASETS``, to keep the suite under an hour).
SUITE_KEEL = ("pima", "dermatology", "ecoli", "glass", "yeast", "winequality-red-4",
              "yeast6", "poker-8-9_vs_6", "abalone19", "page-blocks")


def run_job(task, seed, names, job_dir):
    """All methods on one (task, seed); one dict per method, kept in ``job_dir``.

    A finished job's rows are read back instead of recomputed, so an
    interrupted suite resumes where it stopped; methods missing from a
    finished job (a method added, or its rows deleted to rerun it) are run
    alone and merged in, unless one of them derives from the tuned CLMLE,
    when the whole job is rerun.
    """
    from _suite_methods import DERIVED

    path = os.path.join(job_dir, f"{task.name.replace(' ', '_')}-{seed}.json")
    rows = []
    if os.path.exists(path):
        with open(path) as fh:
            rows = json.load(fh)
    missing = [n for n in names if n not in {r["method"] for r in rows}]
    if missing:
        if set(missing) & set(DERIVED) or len(missing) == len(names):
            rows = _run_job(task, seed, names)
        else:
            rows = [r for r in rows if r["method"] not in missing]
            rows += _run_job(task, seed, missing)
        with open(path, "w") as fh:
            json.dump(rows, fh)
    return [r for r in rows if r["method"] in names]


def _run_job(task, seed, names):
    import warnings

    import torch
    from _suite_methods import DERIVED, methods
    from _suite_tuning import fit_prefix, transform_prefix, tune, validation_split
    from imblearn.metrics import geometric_mean_score
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import balanced_accuracy_score, f1_score, recall_score

    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    warnings.filterwarnings("ignore", message=".*y_pred contains classes not in y_true.*")
    torch.set_num_threads(1)
    X_tr, X_te, y_tr, y_te = task.split(seed)
    fit_idx, val_idx = validation_split(y_tr, 0.25, seed)
    labels = np.unique(y_te)
    counts = np.array([np.sum(y_tr == c) for c in labels])
    cache, chosen, rows = {}, {}, []
    for name, (pipe, grid) in methods(task, seed).items():
        if name not in names:
            continue
        inherited = {}
        if name in DERIVED:
            changes, inherit_clf = DERIVED[name]
            inherited = {k: v for k, v in chosen.get("CLMLE + k-NC", {}).items()
                         if inherit_clf or k.startswith("embed__")}
            inherited.update(changes)
            pipe.set_params(**inherited)
        chosen[name] = inherited
        try:
            t0 = time.perf_counter()
            best, val_score = {}, np.nan
            if grid:
                best, val_score = tune(pipe, grid, X_tr[fit_idx], y_tr[fit_idx],
                                       X_tr[val_idx], y_tr[val_idx], cache)
            tune_time = time.perf_counter() - t0
            chosen[name] = {**inherited, **best}
            pipe.set_params(**best)
            fitted, Xt, yt, prefix_time = fit_prefix(pipe, X_tr, y_tr, cache, "final")
            clf = pipe.steps[-1][1]
            t0 = time.perf_counter()
            clf.fit(Xt, yt)
            fit_time = prefix_time + time.perf_counter() - t0
            t0 = time.perf_counter()
            pred = clf.predict(transform_prefix(fitted, X_te))
            predict_time = time.perf_counter() - t0
        except FloatingPointError as exc:
            # Diverged at every grid point, or on the whole training part
            # with the setting chosen on the validation part: recorded, shown
            # as a failure in the tables, never silently dropped.
            rows.append({"dataset": task.name, "group": task.group,
                         "ir": task.imbalance_ratio, "seed": seed, "method": name,
                         "params": json.dumps(chosen[name]), "error": str(exc)})
            continue
        rows.append({
            "dataset": task.name, "group": task.group, "ir": task.imbalance_ratio,
            "seed": seed, "method": name,
            "balanced_accuracy": balanced_accuracy_score(y_te, pred),
            "macro_f1": f1_score(y_te, pred, labels=labels, average="macro", zero_division=0),
            "g_mean": geometric_mean_score(y_te, pred, labels=labels, average="multiclass"),
            "fit_time": fit_time, "predict_time": predict_time, "tune_time": tune_time,
            "val_score": val_score, "params": json.dumps(chosen[name]),
            "recall": json.dumps(recall_score(y_te, pred, labels=labels, average=None,
                                              zero_division=0).round(4).tolist()),
            "train_counts": json.dumps(counts.tolist()),
        })
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seeds", type=int, default=None)
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--datasets", nargs="*", default=None,
                        help="dataset names to run (default: all of the mode)")
    parser.add_argument("--methods", nargs="*", default=None)
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()

    import pandas as pd
    from _suite_data import keel_tasks, long_tailed_tasks
    from _suite_methods import DERIVED, SHORT
    from _suite_report import report

    out = args.out or os.path.join(
        os.path.dirname(__file__), "results", "suite_quick" if args.quick else "suite"
    )
    if not args.report_only:
        if args.quick:
            tasks = [t for t in long_tailed_tasks() if t.name == "digits IR10"]
            tasks += keel_tasks(QUICK_KEEL)
        else:
            tasks = long_tailed_tasks() + keel_tasks(SUITE_KEEL)
        if args.datasets:
            tasks = [t for t in tasks if t.name in args.datasets]
        seeds = range(args.seeds or (1 if args.quick else 3))
        names = args.methods or list(SHORT)
        if set(names) & set(DERIVED) and "CLMLE + k-NC" not in names:
            names.append("CLMLE + k-NC")  # the derived methods start from its tuning
        # MNIST-1D first: the longest jobs, so the two workers end together.
        jobs = sorted(((t, s) for t in tasks for s in seeds),
                      key=lambda job: job[0].group != "mnist1d")
        job_dir = out + "_jobs"
        os.makedirs(job_dir, exist_ok=True)
        reused = len(os.listdir(job_dir))
        t0 = time.perf_counter()
        results = Parallel(n_jobs=args.n_jobs, verbose=5)(
            delayed(run_job)(task, seed, names, job_dir) for task, seed in jobs
        )
        frame = pd.DataFrame([row for rows in results for row in rows])
        frame.attrs["wall_time"] = time.perf_counter() - t0
        os.makedirs(os.path.dirname(out), exist_ok=True)
        frame.to_csv(out + ".csv", index=False)
        wall = (frame.attrs["wall_time"], reused, len(jobs))
    else:
        frame, wall = pd.read_csv(out + ".csv"), None
    report(frame, out, wall)


if __name__ == "__main__":
    main()
