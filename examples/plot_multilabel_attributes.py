"""
Multi-label attributes with one shared network
==============================================

The CLMLE paper predicts 40 binary face attributes at once: one shared
network, one embedding head and one cluster-margin loss (Eq. 9) per
attribute, and the nearest-cluster rule per attribute on its own embedding.
Here the "faces" are strips of three 8x8 digits
(:func:`~sklearn_clmle.datasets.load_digit_strips`) and attribute ``has_k``
says whether the strip shows a ``k``: digit frequencies are long-tailed, so
``has_0`` is positive for about 80% of the strips and ``has_9`` for about 1%.

We compare the multi-head :class:`~sklearn_clmle.CLMLEEmbedder` +
:class:`~sklearn_clmle.KNearestClusterClassifier` with logit-adjusted binary
cross-entropy of the same backbone
(:class:`~sklearn_clmle.CrossEntropyClassifier` on the indicator matrix),
per attribute, by balanced accuracy (the paper's metric). Small data and a
small training budget, one seed: an illustration, not a benchmark (that is
``benchmarks/results/multilabel.md``).
"""

# %%
# Fit both on the same strips
# ---------------------------
# Every column of ``Y`` is one binary attribute; both pipelines take the
# indicator matrix as it is.
import matplotlib.pyplot as plt
import numpy as np
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_clmle import CLMLEEmbedder, CrossEntropyClassifier, KNearestClusterClassifier
from sklearn_clmle.datasets import load_digit_strips
from sklearn_clmle.metrics import mean_balanced_accuracy, per_label_rates

X_train, X_test, Y_train, Y_test, names = load_digit_strips(
    n_train=1500, n_test=1000, random_state=0
)
print("positive rate per attribute:",
      ", ".join(f"{n} {p:.3f}" for n, p in zip(names, Y_train.mean(axis=0))))

pipelines = {
    "multi-head CLMLE + k-NC": make_pipeline(
        StandardScaler(),
        CLMLEEmbedder(warmup_epochs=5, max_epochs=25, n_threads=1, random_state=0),
        KNearestClusterClassifier(random_state=0),
    ),
    "logit-adjusted BCE": make_pipeline(
        StandardScaler(),
        CrossEntropyClassifier(logit_adjustment=1.0, max_epochs=30, n_threads=1,
                               random_state=0),
    ),
}
rates = {}
for name, pipe in pipelines.items():
    Y_pred = pipe.fit(X_train, Y_train).predict(X_test)
    rates[name] = per_label_rates(Y_test, Y_pred)
    print(f"{name}: mean balanced accuracy {mean_balanced_accuracy(Y_test, Y_pred):.3f}")

# %%
# The embedding has one unit-norm block of 64 columns per attribute
# -----------------------------------------------------------------
# Feature names say which attribute a column belongs to (``y0``, ``y1``, ...
# here; the column names when ``Y`` is a DataFrame).
embedder = pipelines["multi-head CLMLE + k-NC"][1]
Z = embedder.transform(pipelines["multi-head CLMLE + k-NC"][0].transform(X_test[:2]))
print(Z.shape, embedder.get_feature_names_out()[[0, 64, 639]])

# %%
# Balanced accuracy, and what it is made of, per attribute
# --------------------------------------------------------
# The mean balanced accuracy alone can hide a rare attribute whose positives
# are all missed: the true-positive rates of the rare attributes (right)
# show where the methods differ.
fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharex=True)
x = np.arange(len(names))
for offset, (name, r) in zip((-0.2, 0.2), rates.items()):
    axes[0].bar(x + offset, r["balanced_accuracy"], width=0.4, label=name)
    axes[1].bar(x + offset, r["tpr"], width=0.4, label=name)
axes[0].set_ylabel("balanced accuracy")
axes[1].set_ylabel("true-positive rate")
for ax in axes:
    ax.set_xticks(x, names, rotation=45)
    ax.set_ylim(0, 1.05)
axes[0].legend(loc="lower left", fontsize=8)
fig.suptitle("Attributes sorted from common (has_0) to rare (has_9)")
fig.tight_layout()
plt.show()
