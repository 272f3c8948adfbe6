"""Tables and plots of the benchmark suite, from its per-run rows."""

import json
import os

import numpy as np
from _report import write_report
from _suite_methods import SHORT

#: Methods drawn in the imbalance-ratio plot (the ablations are left out).
PLOTTED = [m for m in SHORT if not SHORT[m].startswith("abl:")]
BASELINES_SMOTE = ["SMOTE + LR", "SMOTE + kNN", "SMOTE + RF", "SMOTE + MLP",
                   "BalancedRF", "RUS + RF"]
BASELINES_DEEP = ["CE", "weighted CE", "logit-adj. CE", "LMLE-kNN"]
OURS = ["CLMLE + k-NC", "SMOTE + CLMLE + k-NC"]


def _methods(frame):
    return [m for m in SHORT if m in set(frame["method"])]


def _datasets(frame):
    order = frame.drop_duplicates("dataset")[["dataset", "group", "ir"]]
    group_rank = {"digits": 0, "mnist1d": 1, "keel": 2}
    order = order.assign(g=order["group"].map(group_rank)).sort_values(["g", "ir"])
    return list(order["dataset"]), dict(zip(order["dataset"], order["ir"]))


def _failed(frame):
    """Runs whose final fit diverged (no metrics), per (dataset, method)."""
    if "error" not in frame:
        return {}
    bad = frame[frame["error"].notna()]
    return bad.groupby(["dataset", "method"]).size().to_dict()


def metric_table(frame, metric, title):
    """Datasets x methods, mean ± std x 100 over seeds, best in bold, mean rank.

    A run that diverged is left out of its cell's mean and marked with
    ``†n`` (n runs); a cell with no successful run ranks last.
    """
    methods, (datasets, irs) = _methods(frame), _datasets(frame)
    failed = _failed(frame)
    stats = frame.groupby(["dataset", "method"])[metric].agg(["mean", "std"])
    lines = [f"### {title}", "",
             "| dataset | IR | " + " | ".join(SHORT[m] for m in methods) + " |",
             "|---|---:|" + "---:|" * len(methods)]
    ranks = []
    for d in datasets:
        means = np.array([stats.loc[(d, m), "mean"] for m in methods])
        shown = np.round(100 * means, 1)  # bold what the reader sees as the best
        best = shown == np.nanmax(shown)
        cells = []
        for m, mean, b in zip(methods, means, best):
            std = stats.loc[(d, m), "std"]
            text = "n/a" if np.isnan(mean) else f"{100 * mean:.1f}" + (
                "" if np.isnan(std) else f" ± {100 * std:.1f}")
            if (d, m) in failed:
                text += f" †{failed[(d, m)]}"
            cells.append(f"**{text}**" if b else text)
        means = np.nan_to_num(means, nan=-np.inf)
        lines.append(f"| {d} | {irs[d]:.3g} | " + " | ".join(cells) + " |")
        order = (-means).argsort().argsort().astype(float)
        for v in np.unique(means):  # average rank for ties
            order[means == v] = order[means == v].mean()
        ranks.append(order + 1)
    mean_rank = np.mean(ranks, axis=0)
    lines.append("| **mean rank** | | " + " | ".join(
        (f"**{r:.2f}**" if np.isclose(r, mean_rank.min()) else f"{r:.2f}") for r in mean_rank
    ) + " |")
    return lines


def time_table(frame):
    methods = _methods(frame)
    t = frame.groupby(["group", "method"])[["fit_time", "predict_time"]].mean()
    groups = [g for g in ("digits", "mnist1d", "keel") if g in set(frame["group"])]
    lines = ["### Mean fit / predict time (s, one thread, refit on the training part)", "",
             "| method | " + " | ".join(f"{g} fit | {g} predict" for g in groups) + " |",
             "|---|" + "---:|---:|" * len(groups)]
    for m in methods:
        cells = []
        for g in groups:
            cells += [f"{t.loc[(g, m), 'fit_time']:.2f}", f"{t.loc[(g, m), 'predict_time']:.3f}"]
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return lines


def mean_ranks(frame, metric="balanced_accuracy"):
    """Mean rank of every method over the datasets (1 = best; ties averaged)."""
    mean = frame.groupby(["dataset", "method"])[metric].mean().unstack()
    ranks = (-mean.fillna(-np.inf)).rank(axis=1, method="average")
    return ranks.mean().sort_values()


def target_lines(frame):
    """The issue's targets, computed from the table's means and spreads."""
    stats = frame.groupby(["dataset", "method"])["balanced_accuracy"].agg(["mean", "std"])
    lines = ["### Targets", ""]
    ranks = mean_ranks(frame)
    if "CLMLE + k-NC" in ranks and "logit-adj. CE" in ranks:
        best = ranks.index[0]
        lines.append(
            f"- Mean rank in balanced accuracy over {frame['dataset'].nunique()} sets: "
            f"CLMLE + k-NC {ranks['CLMLE + k-NC']:.2f}, logit-adj. CE "
            f"{ranks['logit-adj. CE']:.2f}; best {best} ({ranks[best]:.2f}). Target "
            f"(CLMLE best, ahead of logit-adj. CE): "
            f"{'met' if best == 'CLMLE + k-NC' else 'missed'}."
        )

    def get(d, m):
        return (stats.loc[(d, m), "mean"], stats.loc[(d, m), "std"]) \
            if (d, m) in stats.index else (np.nan, np.nan)

    for d in sorted(set(frame["dataset"])):
        if d not in ("digits IR1", "mnist1d IR1", "digits IR100", "mnist1d IR100"):
            continue
        o, o_sd = get(d, "CLMLE + k-NC")
        if d.endswith("IR1"):
            c, c_sd = get(d, "CE")
            ok = o >= c - 0.01 and (np.isnan(o_sd) or o_sd <= c_sd + 1e-12)
            lines.append(
                f"- {d}: CLMLE + k-NC {100 * o:.1f} ± {100 * o_sd:.1f}, CE {100 * c:.1f} "
                f"± {100 * c_sd:.1f} ({100 * (o - c):+.1f}). Target (within 1 point, "
                f"spread no larger): {'met' if ok else 'missed'}."
            )
        else:
            la, la_sd = get(d, "logit-adj. CE")
            lines.append(
                f"- {d}: CLMLE + k-NC {100 * o:.1f} ± {100 * o_sd:.1f}, logit-adj. CE "
                f"{100 * la:.1f} ± {100 * la_sd:.1f} ({100 * (o - la):+.1f}). Target "
                f"(ahead): {'met' if o > la else 'missed'}."
            )
    return lines


def glance_lines(frame, out):
    """What a newcomer reads first: the winner of each data set, by how much."""
    mean = frame.groupby(["dataset", "method"])["balanced_accuracy"].mean().unstack()
    datasets, _ = _datasets(frame)
    lines = ["### At a glance", "",
             "| dataset | winner | balanced acc. | ahead of runner-up | CLMLE + k-NC |",
             "|---|---|---:|---:|---:|"]
    wins = {}
    for d in datasets:
        row = mean.loc[d].dropna().sort_values(ascending=False)
        ours = row.get("CLMLE + k-NC", np.nan)
        wins[row.index[0]] = wins.get(row.index[0], 0) + 1
        lines.append(f"| {d} | {row.index[0]} | {100 * row.iloc[0]:.1f} | "
                     f"{100 * (row.iloc[0] - row.iloc[1]):+.1f} | {100 * ours:.1f} |")
    ranks = mean_ranks(frame)
    lines += ["", "Wins: " + ", ".join(f"{m} {n}" for m, n in
                                       sorted(wins.items(), key=lambda kv: -kv[1]))
              + ". Best mean rank: " + ", ".join(f"{m} {r:.2f}" for m, r in
                                                 ranks.head(3).items()) + ".",
              f"Full tables: `{out}.md`; plots: `{out}_ir.png`"
              + (", `{}_tail.png`.".format(out) if os.path.exists(_absolute(out) + "_tail.png")
                 else ".")]
    return lines


def ablation_lines(frame):
    mean = frame.groupby(["dataset", "method"])["balanced_accuracy"].mean().unstack()
    if "CLMLE + k-NC" not in mean:
        return []
    lines = ["### Ablations (balanced accuracy of the ablation minus CLMLE + k-NC, points)",
             "", "| ablation | mean | min | max | datasets where it is better |",
             "|---|---:|---:|---:|---:|"]
    for m in ("CLMLE, paper loss", "CLMLE, uniform query", "CLMLE, no cost-sens.",
              "CLMLE + kNN"):
        if m in mean:
            diff = 100 * (mean[m] - mean["CLMLE + k-NC"]).dropna()
            lines.append(f"| {m} | {diff.mean():+.2f} | {diff.min():+.1f} | "
                         f"{diff.max():+.1f} | {(diff > 0).sum()}/{diff.size} |")
    return lines


def chosen_lines(frame):
    lines = ["### Hyper-parameters chosen on validation (count over datasets x seeds)", ""]
    for m in _methods(frame):
        counts = frame.loc[frame["method"] == m, "params"].value_counts()
        lines.append(f"- {m}: " + "; ".join(f"{p} x{n}" for p, n in counts.items()))
    return lines


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_ir(frame, path):
    plt = _pyplot()
    groups = [g for g in ("digits", "mnist1d") if g in set(frame["group"])]
    if not groups:
        return False
    fig, axes = plt.subplots(1, len(groups), figsize=(6 * len(groups), 4.5), squeeze=False)
    for ax, g in zip(axes[0], groups):
        sub = frame[frame["group"] == g]
        colors = plt.get_cmap("tab20").colors
        for i, m in enumerate([m for m in PLOTTED if m in set(sub["method"])]):
            s = sub[sub["method"] == m].groupby("ir")["balanced_accuracy"].agg(["mean", "std"])
            style = "-" if m in OURS else ("--" if m in BASELINES_DEEP else ":")
            ax.errorbar(s.index, s["mean"], yerr=s["std"].fillna(0), label=SHORT[m],
                        linestyle=style, color=colors[(2 * i) % 20 + (2 * i) // 20], marker="o", capsize=2,
                        linewidth=2.5 if m in OURS else 1.2)
        ax.set_xscale("log")
        ax.set_xlabel("imbalance ratio of the training part")
        ax.set_ylabel("balanced accuracy (test)")
        ax.set_title(f"long-tailed {g}")
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def plot_tail(frame, path, n_tail=3):
    plt = _pyplot()
    sets = [d for d in ("digits IR100", "mnist1d IR100") if d in set(frame["dataset"])]
    if not sets:
        return False
    fig, axes = plt.subplots(1, len(sets), figsize=(7 * len(sets), 4.5), squeeze=False)
    for ax, d in zip(axes[0], sets):
        sub = frame[frame["dataset"] == d]
        methods = [m for m in PLOTTED if m in set(sub["method"])]
        width = 0.8 / n_tail
        for j in range(n_tail):
            heights = []
            for m in methods:
                runs = sub[sub["method"] == m]
                recalls = []
                for rec, counts in zip(runs["recall"], runs["train_counts"]):
                    rec, counts = np.array(json.loads(rec)), np.array(json.loads(counts))
                    recalls.append(rec[np.argsort(counts, kind="stable")[j]])
                heights.append(np.mean(recalls))
            ax.bar(np.arange(len(methods)) + j * width, heights, width,
                   label=f"{j + 1}{'st' if j == 0 else 'nd' if j == 1 else 'rd'} rarest class")
        ax.set_xticks(np.arange(len(methods)) + width, [SHORT[m] for m in methods],
                      rotation=45, ha="right")
        ax.set_ylabel("test recall (mean over seeds)")
        ax.set_title(f"{d}: recall of the rarest training classes")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def report(frame, out, wall_time):
    """Print and save the Markdown report; draw the plots."""
    ok = frame if "error" not in frame else frame[frame["error"].isna()]
    seeds = sorted(set(frame["seed"]))
    name = os.path.basename(out)
    lines = [
        "# Benchmark suite: CLMLE vs SMOTE and deep baselines", "",
        f"{frame['dataset'].nunique()} datasets x {len(seeds)} seed(s) x "
        f"{frame['method'].nunique()} methods. Balanced accuracy is the primary metric "
        "(x100, mean ± std over seeds; best mean in bold; rank 1 = best). Hyper-parameters "
        "were chosen per seed on a validation split of the training part.",
    ]
    if wall_time is None:
        lines.append(f"Tables and plots redrawn from `{name}.csv` (`--report-only`); the "
                     "wall time of the run that wrote it is not in the CSV.")
    else:
        seconds, reused, n_jobs = wall_time
        lines.append(
            f"Wall time of this invocation: {seconds / 60:.1f} min for {n_jobs - reused} of "
            f"{n_jobs} (dataset, seed) jobs; {reused} were read back from an earlier, "
            "interrupted invocation (`<out>_jobs/`)." if reused else
            f"Wall time of the whole run: {seconds / 60:.1f} min for {n_jobs} jobs."
        )
    lines.append("")
    if plot_ir(ok, out + "_ir.png"):
        lines += [f"![balanced accuracy vs imbalance ratio]({name}_ir.png)", ""]
    if plot_tail(ok, out + "_tail.png"):
        lines += [f"![recall of the rarest classes]({name}_tail.png)", ""]
    lines += target_lines(frame) + [""]
    lines += glance_lines(frame, _shown(out)) + [""]
    lines += metric_table(frame, "balanced_accuracy", "Balanced accuracy") + [""]
    lines += metric_table(frame, "macro_f1", "Macro-F1") + [""]
    lines += metric_table(frame, "g_mean", "G-mean") + [""]
    lines += ablation_lines(frame) + [""]
    lines += time_table(frame) + [""]
    lines += chosen_lines(frame)
    write_report(lines, out + ".md")
    # The main job ends with what a newcomer reads at a glance.
    print("\n".join(glance_lines(frame, _shown(out))))


def _absolute(shown):
    """A path :func:`_shown` gave, back as an absolute path."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return os.path.join(root, shown)


def _shown(out):
    """``out`` as a reader finds it: relative to the repository root."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return os.path.relpath(os.path.abspath(out), root)
