"""Share of a CLMLE fit spent clustering, and fit time, at 100k and 1M rows.

Data: 64-d blobs around 10 class directions (noise 1.5, as in
``bench_memory.py``), long-tailed with imbalance ratio 100 (class c keeps
a share proportional to 100^(-c/9)). Model: ``CLMLEEmbedder`` with its
defaults (MLP 64 -> 512 -> 64, ``cluster_size="auto"`` -> 200, 5 rounds,
``n_threads=2``), except the epoch budget of each size (``--epochs``):
the default schedule (30 warm-up + 150 main epochs) is about 45 minutes
at 1M rows on 2 cores, so the 1M fit runs fewer epochs and the script
*projects* the default schedule from what it measured: the warm-up and the
main phase's training scale with their epochs, the clusterings (one per
round plus the final one) and the embeddings feeding them do not.

Each size also times ``ClassClusters`` alone on the fitted embedding:
cold (k-means++ seeding, the first round) and warm (from the fit's labels,
the later rounds), and reports the k-means objective (mean cosine of a row
to its cluster's centroid) of the fit's final clustering.

Run it once on the code to measure and once on the code before the change
(``--label before`` with ``PYTHONPATH`` at a checkout of it); the report
shows every label found in the JSON::

    python benchmarks/bench_cluster_scale.py --label after
    PYTHONPATH=/tmp/before python benchmarks/bench_cluster_scale.py --label before
"""

import argparse
import json
import os
import time

import numpy as np
import torch
from sklearn.metrics import balanced_accuracy_score

from _report import write_report

DEFAULT_WARMUP, DEFAULT_MAIN = 30, 150
N_TEST = 20_000  # held-out rows, same distribution
D, C, IR = 64, 10, 100.0


def long_tailed_blobs(n, seed=0):
    rng = np.random.default_rng(seed)
    share = IR ** (-np.arange(C) / (C - 1))
    counts = np.floor(n * share / share.sum()).astype(int)
    counts[0] += n - counts.sum()
    y = np.repeat(np.arange(C), counts)
    rng.shuffle(y)
    centers = np.random.default_rng(123).normal(size=(C, D))
    X = np.empty((n, D), dtype=np.float32)
    for s in range(0, n, 65_536):
        e = min(s + 65_536, n)
        X[s:e] = centers[y[s:e]] + rng.normal(scale=1.5, size=(e - s, D))
    return X, y


def load_clustering(path):
    """The ``_clustering`` module of another checkout, loaded from its file."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("old_clustering", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def side_by_side(Z, y, cluster_size, old, repeats, accuracy):
    """Cold and warm ``ClassClusters`` of the old and this code on one embedding.

    Alternated in one process (old, new, old, new, ...), so that both see
    the same machine load; the faster of the ``repeats`` runs of each is
    kept. ``accuracy(clusters)`` scores the warm clustering on held-out rows.
    """
    from sklearn_clmle import _clustering as new

    times = {}
    for _ in range(repeats):
        for name, mod in (("old", old), ("new", new)):
            t0 = time.perf_counter()
            cold = mod.ClassClusters(Z, y, cluster_size, n_classes=C, random_state=0)
            t1 = time.perf_counter()
            warm = mod.ClassClusters(Z, y, cluster_size, n_classes=C, previous=cold,
                                     random_state=0)
            t2 = time.perf_counter()
            obj = float(np.einsum("nd,nd->n", Z, warm.centers[warm.labels]).mean())
            best = times.get(name, (np.inf, np.inf, obj, accuracy(warm)))
            times[name] = (min(best[0], t1 - t0), min(best[1], t2 - t1), obj, best[3])
    return times


def measure(n, warmup_epochs, max_epochs, label, device=None, old=None, repeats=2, **params):
    """Fit on ``n`` rows and time its parts; ``params`` go to the estimator."""
    from sklearn_clmle import CLMLEEmbedder
    from sklearn_clmle._clustering import ClassClusters

    X, y = long_tailed_blobs(n + N_TEST)
    X, y, X_test, y_test = X[:n], y[:n], X[n:], y[n:]
    where = {} if device is None else {"device": device}
    est = CLMLEEmbedder(warmup_epochs=warmup_epochs, max_epochs=max_epochs,
                        n_threads=2, random_state=0, **where, **params)
    t0 = time.perf_counter()
    est.fit(X, y)
    wall = time.perf_counter() - t0
    stats = est.fit_stats_
    rounds = stats["round_times"]
    if len(rounds) != est.n_rounds:
        raise SystemExit(f"{max_epochs} main epochs ran {len(rounds)} rounds, not the "
                         f"default {est.n_rounds}: the projection needs as many.")
    cluster = sum(r["cluster_time"] for r in rounds) + stats["final_cluster_time"]
    embed = sum(r["embed_time"] for r in rounds) + stats["final_embed_time"]
    warm = sum(r["seconds"] for r in est.history_ if r["phase"] == "warmup")
    main = sum(r["seconds"] for r in est.history_ if r["phase"] == "train")
    train = main - sum(r["cluster_time"] + r["embed_time"] for r in rounds)
    other = wall - warm - main - stats["final_cluster_time"] - stats["final_embed_time"]
    projected = (warm * DEFAULT_WARMUP / max(warmup_epochs, 1)
                 + train * DEFAULT_MAIN / max_epochs + cluster + embed + other)
    with torch.no_grad():
        Z = est.transform(X)
    quality = float(np.einsum("nd,nd->n", Z, est.cluster_centers_[est.cluster_labels_]).mean())
    Z_test = est.transform(X_test)

    def nearest_centroid_accuracy(centers, classes):
        return balanced_accuracy_score(y_test, classes[np.argmax(Z_test @ centers.T, axis=1)])

    accuracy = nearest_centroid_accuracy(est.cluster_centers_, est.cluster_classes_)
    torch.set_num_threads(2)
    t0 = time.perf_counter()
    cold = ClassClusters(Z, y, est.cluster_size_, n_classes=C, random_state=0, **where)
    t1 = time.perf_counter()
    ClassClusters(Z, y, est.cluster_size_, n_classes=C, previous=cold, random_state=0,
                  **where)
    t2 = time.perf_counter()
    row = {}
    if old is not None:
        pairs = side_by_side(Z, y, est.cluster_size_, old, repeats,
                             lambda cl: nearest_centroid_accuracy(cl.centers, cl.cluster_class))
        for name, (c, w, o, a) in pairs.items():
            row.update({f"{name}_cold": c, f"{name}_warm": w, f"{name}_objective": o,
                        f"{name}_accuracy": a})
    return row | {
        "label": label, "rows": n, "clusters": int(est.cluster_centers_.shape[0]),
        "warmup_epochs": warmup_epochs, "max_epochs": max_epochs, "fit": wall,
        "clustering": cluster, "embedding": embed, "warmup": warm, "train": train,
        "share": cluster / wall, "projected_fit": projected,
        "projected_share": cluster / projected, "objective": quality,
        "cold": t1 - t0, "warm": t2 - t1, "accuracy": accuracy,
    }


def report(rows, path, before_tree):
    lines = [
        "# Clustering share of a CLMLE fit at scale",
        "",
        __doc__.split("\n\n")[1].replace("\n", " "),
        "",
        "Seconds. `clustering` = every round's equal-size spherical k-means plus "
        "the final one; `share` = clustering / fit for the epochs run; "
        "`projected` = the default schedule (30 + 150 epochs) from the measured "
        "per-epoch training time (identical to the measurement when the run "
        "used the default epochs). `cold` / `warm` = `ClassClusters` alone on "
        "the fitted embedding, from k-means++ seeding / from the fit's labels. "
        "`objective` = mean cosine of a row to its centroid (final clustering); "
        "`accuracy` = balanced accuracy of the nearest final centroid's class on "
        f"{N_TEST:,} held-out rows.",
        "",
        "| code | rows | clusters | epochs (warm-up + main) | fit | clustering | share "
        "| projected default fit | projected share | cold | warm | objective | accuracy |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted(rows, key=lambda r: (r["rows"], r["label"] != "before")):
        lines.append(
            f"| {r['label']} | {r['rows']:,} | {r['clusters']:,} | "
            f"{r['warmup_epochs']} + {r['max_epochs']} | {r['fit']:.1f} | "
            f"{r['clustering']:.1f} | {100 * r['share']:.1f}% | "
            f"{r['projected_fit']:.0f} | {100 * r['projected_share']:.1f}% | "
            f"{r['cold']:.2f} | {r['warm']:.2f} | {r['objective']:.4f} | "
            f"{r['accuracy']:.4f} |"
        )
    lines += ["", "Rows labelled `before` were made by the same script with `PYTHONPATH` "
              f"at a checkout of {before_tree}:", "",
              "`PYTHONPATH=<checkout> python benchmarks/bench_cluster_scale.py --label before`",
              "", "and the `after` rows by this code, one size per run (the table above "
              "is then rewritten from the JSON with `--sizes` and no values):", "",
              "`python benchmarks/bench_cluster_scale.py --label after --sizes 100000 "
              "--epochs 3+15 --old-clustering <checkout>/sklearn_clmle/_clustering.py`", "",
              "`python benchmarks/bench_cluster_scale.py --label after --sizes 1000000 "
              "--epochs 1+5`"]
    paired = [r for r in rows if "old_cold" in r]
    if paired:
        lines += ["", "## Clustering alone, old and new code side by side", "",
                  "`ClassClusters` on the fitted embedding of the `after` run, the "
                  "code of the checkout above and this code alternated in one process "
                  "(best of `--repeats` each, 2 unless the row says otherwise): cold = "
                  "from k-means++ seeding, warm = from the cold result's labels; objective "
                  "and held-out nearest-centroid balanced accuracy of the warm result.", "",
                  "| rows | repeats | old cold | new cold | old warm | new warm "
                  "| speed-up cold / warm | old objective | new objective "
                  "| old accuracy | new accuracy |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in paired:
            acc = [f"{r[key]:.4f}" if key in r else "-"
                   for key in ("old_accuracy", "new_accuracy")]
            lines.append(
                f"| {r['rows']:,} | {r.get('repeats', 2)} | {r['old_cold']:.2f} | "
                f"{r['new_cold']:.2f} | {r['old_warm']:.2f} | {r['new_warm']:.2f} | "
                f"{r['old_cold'] / r['new_cold']:.1f}x / {r['old_warm'] / r['new_warm']:.1f}x | "
                f"{r['old_objective']:.4f} | {r['new_objective']:.4f} | {acc[0]} | {acc[1]} |")
    lines += ["", "The `before` runs shared the 2 cores with other jobs (a load average "
              "of 2 to 9); the `after` runs had the machine to themselves, but its speed "
              "drifts by tens of percent within minutes. Absolute times, and fit times "
              "between runs, are noisy; the side-by-side table is measured under one load."]
    write_report(lines, path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", default="after")
    parser.add_argument("--sizes", type=int, nargs="*", default=[100_000, 1_000_000],
                        help="no sizes: only rewrite the report from the JSON")
    parser.add_argument("--epochs", type=str, nargs="+", default=["30+150", "1+5"],
                        help="warm-up+main epochs per size")
    parser.add_argument("--old-clustering", default=None,
                        help="_clustering.py of the code before, timed side by side")
    parser.add_argument("--repeats", type=int, default=2,
                        help="alternated runs of each code in the side-by-side timing")
    parser.add_argument("--before-tree", default="3b4ecaf (the landed main before issue 14)")
    parser.add_argument("--json", default="benchmarks/results/cluster_scale.json")
    parser.add_argument("--out", default="benchmarks/results/cluster_scale.md")
    args = parser.parse_args()
    torch.set_num_threads(2)
    rows = []
    if os.path.exists(args.json):
        with open(args.json) as fh:
            # A run replaces the rows of its label and sizes only.
            rows = [r for r in json.load(fh)
                    if r["label"] != args.label or r["rows"] not in args.sizes]
    for n, epochs in zip(args.sizes, args.epochs):
        w, m = (int(v) for v in epochs.split("+"))
        old = None if args.old_clustering is None else load_clustering(args.old_clustering)
        row = measure(n, w, m, args.label, old=old, repeats=args.repeats)
        if old is not None:
            row["repeats"] = args.repeats
        print(json.dumps(row), flush=True)
        rows.append(row)
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)
    report(rows, args.out, args.before_tree)


if __name__ == "__main__":
    main()
