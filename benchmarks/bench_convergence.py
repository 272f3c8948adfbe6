"""Convergence of CLMLE, LMLE and a triplet loss (the CLMLE paper's Fig. 3 claim).

On long-tailed digits (MLP) and long-tailed MNIST-1D (cnn1d) at imbalance
ratio 10, each embedder is fitted for 1, 2, 3, 5 and 8 rounds of 200
iterations after the same 200-iteration cross-entropy warm-up (seeded, so a
longer fit starts exactly like a shorter one) and scored by balanced
accuracy on the untouched test part with its own classifier: CLMLE with
``KNearestClusterClassifier()`` (Eq. 10), LMLE and triplet with
``KNearestClusterClassifier(rule="lmle")`` (LMLE-kNN, Eq. 3). Wall time is
that of ``fit`` on one thread. Then the final comparison at the default
budget (5 rounds) at imbalance ratios 10 and 100.

Methods: CLMLE with the package defaults (scale 10, ce_weight 1), CLMLE as
in the paper (scale 1, ce_weight 0), LMLE (quintuplet loss, the paper) and
the triplet loss on the same LMLE tables. All use the same backbone, batch
of 240 rows, SGD settings and cluster size.

Usage::

    python benchmarks/bench_convergence.py [--seeds 3] [--out benchmarks/results/convergence.md]
"""

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from _report import write_report  # noqa: E402
from _suite_data import Task  # noqa: E402
from _suite_report import _pyplot  # noqa: E402
from joblib import Parallel, delayed  # noqa: E402

METHODS = {
    "CLMLE (defaults)": ("clmle", {}),
    "CLMLE (paper: scale 1, ce_weight 0)": ("clmle", {"scale": 1.0, "ce_weight": 0.0}),
    "LMLE (quintuplet)": ("lmle", {}),
    "triplet": ("lmle", {"loss": "triplet"}),
}
DATASETS = {"digits": "mlp", "mnist1d": "cnn1d"}
ROUNDS = (1, 2, 3, 5, 8)
ITERATIONS_PER_ROUND = 200
FINAL_ROUNDS = 5


def _run(group, ir, method, seed, n_rounds):
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.preprocessing import StandardScaler

    from sklearn_clmle import CLMLEEmbedder, KNearestClusterClassifier, LMLEEmbedder

    task = Task(f"{group} IR{ir}", group, ir, DATASETS[group])
    X_train, X_test, y_train, y_test = task.split(seed)
    scaler = StandardScaler().fit(X_train)
    X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
    kind, params = METHODS[method]
    cls = CLMLEEmbedder if kind == "clmle" else LMLEEmbedder
    emb = cls(backbone=task.backbone, n_rounds=n_rounds,
              iterations_per_round=ITERATIONS_PER_ROUND, n_threads=1,
              random_state=seed, **params)
    t0 = time.perf_counter()
    emb.fit(X_train, y_train)
    fit_time = time.perf_counter() - t0
    rule = "clmle" if kind == "clmle" else "lmle"
    clf = KNearestClusterClassifier(rule=rule, random_state=seed)
    clf.fit(emb.transform(X_train), y_train)
    score = balanced_accuracy_score(y_test, clf.predict(emb.transform(X_test)))
    return {"group": group, "ir": ir, "method": method, "seed": seed, "rounds": n_rounds,
            "iterations": n_rounds * ITERATIONS_PER_ROUND, "fit_time": fit_time,
            "score": score}


def _mean_std(values):
    return f"{100 * np.mean(values):.1f} ± {100 * np.std(values):.1f}"


def _convergence_lines(rows, seeds):
    lines = []
    for group in DATASETS:
        lines += [
            "", f"### {group}, IR 10: balanced accuracy x100 (mean ± std over {seeds} seeds) "
            "and mean fit seconds", "",
            "| method | " + " | ".join(f"{r * ITERATIONS_PER_ROUND} it" for r in ROUNDS) + " |",
            "|---|" + "---:|" * len(ROUNDS),
        ]
        for method in METHODS:
            cells = []
            for r in ROUNDS:
                sel = [x for x in rows if (x["group"], x["ir"], x["method"], x["rounds"])
                       == (group, 10, method, r)]
                cells.append(f"{_mean_std([x['score'] for x in sel])} "
                             f"({np.mean([x['fit_time'] for x in sel]):.1f} s)")
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return lines


def _final_lines(rows, seeds):
    lines = [
        "", f"## Final balanced accuracy x100 at the default budget ({FINAL_ROUNDS} rounds x "
        f"{ITERATIONS_PER_ROUND} iterations), mean ± std over {seeds} seeds", "",
        "| method | classifier | " + " | ".join(
            f"{g} IR {ir}" for g in DATASETS for ir in (10, 100)) + " |",
        "|---|---|" + "---:|" * (2 * len(DATASETS)),
    ]
    for method, (kind, _) in METHODS.items():
        cells = []
        for group in DATASETS:
            for ir in (10, 100):
                sel = [x["score"] for x in rows if (x["group"], x["ir"], x["method"],
                                                    x["rounds"]) == (group, ir, method,
                                                                     FINAL_ROUNDS)]
                cells.append(_mean_std(sel))
        clf = "k-NC (Eq. 10)" if kind == "clmle" else "LMLE-kNN (Eq. 3)"
        lines.append(f"| {method} | {clf} | " + " | ".join(cells) + " |")
    return lines


def _plot(rows, path):
    plt = _pyplot()
    fig, axes = plt.subplots(2, len(DATASETS), figsize=(6 * len(DATASETS), 8), squeeze=False)
    for col, group in enumerate(DATASETS):
        for method in METHODS:
            its, secs, means = [], [], []
            for r in ROUNDS:
                sel = [x for x in rows if (x["group"], x["ir"], x["method"], x["rounds"])
                       == (group, 10, method, r)]
                its.append(r * ITERATIONS_PER_ROUND)
                secs.append(np.mean([x["fit_time"] for x in sel]))
                means.append(100 * np.mean([x["score"] for x in sel]))
            axes[0, col].plot(its, means, marker="o", label=method)
            axes[1, col].plot(secs, means, marker="o", label=method)
        axes[0, col].set(title=f"{group}, IR 10", xlabel="training iterations (after warm-up)",
                         ylabel="balanced accuracy x100")
        axes[1, col].set(xlabel="fit wall time, s (1 thread)", ylabel="balanced accuracy x100")
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", default="benchmarks/results/convergence.md")
    args = parser.parse_args()
    seeds = range(args.seeds)
    jobs = [(g, 10, m, s, r) for g in DATASETS for m in METHODS for s in seeds for r in ROUNDS]
    jobs += [(g, 100, m, s, FINAL_ROUNDS) for g in DATASETS for m in METHODS for s in seeds]
    # Longest first, so the two workers finish together.
    jobs.sort(key=lambda j: -(j[4] * (3 if j[0] == "mnist1d" else 1)))
    t0 = time.perf_counter()
    rows = Parallel(n_jobs=2)(delayed(_run)(*job) for job in jobs)
    wall = time.perf_counter() - t0
    plot = os.path.splitext(args.out)[0] + ".png"
    _plot(rows, plot)
    lines = [
        "# Convergence: CLMLE vs LMLE vs triplet",
        "",
        "Long-tailed training parts (the SPEC protocol), untouched test parts, "
        "standardised inputs; digits with the MLP, MNIST-1D with cnn1d. Every fit: "
        f"200 warm-up iterations, then rounds of {ITERATIONS_PER_ROUND} iterations of "
        "240 rows; one thread per fit, two fits at a time.",
        "",
        f"![balanced accuracy against iterations and wall time]({os.path.basename(plot)})",
        "",
        "## Balanced accuracy against training iterations",
        *_convergence_lines(rows, args.seeds),
        *_final_lines(rows, args.seeds),
        "",
        f"Total wall time: {wall / 60:.1f} min for {len(jobs)} fits.",
    ]
    write_report(lines, args.out)


if __name__ == "__main__":
    main()
