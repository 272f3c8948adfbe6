"""
Tuning the margins ``a1`` and ``a2`` with a grid search
=======================================================

CLMLE has two margins: ``a1`` between clusters of different classes and
``a2`` between clusters of the same class. The paper picks them by a coarse
grid search below their bounds (Sec. 3.2):

* ``a1 <= 1 - cos(2 pi / C)`` for C classes, stored after ``fit`` as
  ``a1_max_``;
* ``a2 <= 1 - cos(2 pi L_c / L)`` for a class with L_c of the L training
  samples, one bound per class, stored as ``a2_max_``.

Both are ordinary hyper-parameters of :class:`~sklearn_clmle.CLMLEEmbedder`,
so scikit-learn's :class:`~sklearn.model_selection.GridSearchCV` tunes them
through a pipeline with the ``clmleembedder__`` prefix. Here a 3 x 3 grid on
long-tailed digits (imbalance ratio 10), 3-fold stratified cross-validation,
scored by balanced accuracy, with a small training budget per fit.
"""

# %%
# The search
# ----------
# With C = 10 classes, ``a1_max_ = 1 - cos(36 degrees) = 0.191``, so the grid
# value ``a1 = 0.3`` lies above the bound. A margin above its bound is
# **clipped to the bound** with a ``UserWarning``. Likewise ``a2 = 0.1`` is
# above the bound of the rarest classes and is clipped for those classes
# only. The 27 fits would repeat these warnings, so we silence them during the
# search and look at one of them afterwards.
import warnings

import matplotlib.pyplot as plt
import numpy as np
from imblearn.pipeline import make_pipeline
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.preprocessing import StandardScaler

from sklearn_clmle import CLMLEEmbedder, KNearestClusterClassifier
from sklearn_clmle.datasets import load_long_tailed_digits

X_train, X_test, y_train, y_test = load_long_tailed_digits(10, test_size=0.3, random_state=0)

pipe = make_pipeline(
    StandardScaler(),
    CLMLEEmbedder(
        n_rounds=2, iterations_per_round=75, warmup_iterations=50,
        n_threads=1, random_state=0,
    ),
    KNearestClusterClassifier(random_state=0),
)
a1_grid = [0.02, 0.1, 0.3]
a2_grid = [0.0, 0.01, 0.1]
search = GridSearchCV(
    pipe,
    {"clmleembedder__a1": a1_grid, "clmleembedder__a2": a2_grid},
    scoring="balanced_accuracy",
    cv=StratifiedKFold(3, shuffle=True, random_state=0),
    n_jobs=1,
)
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=r"a[12]=.* exceeds its", category=UserWarning)
    search.fit(X_train, y_train)

print("best parameters:", search.best_params_)
print(f"best cross-validated balanced accuracy: {search.best_score_:.3f}")
print(f"test balanced accuracy of the refitted best pipeline: "
      f"{search.score(X_test, y_test):.3f}")

# %%
# Heat map of the cross-validated scores
# --------------------------------------
# ``cv_results_`` lists the grid in the order of ``ParameterGrid``, which
# sorts the parameter names: ``a1`` varies slowest.
mean = search.cv_results_["mean_test_score"].reshape(len(a1_grid), len(a2_grid))
std = search.cv_results_["std_test_score"].reshape(len(a1_grid), len(a2_grid))

fig, ax = plt.subplots(figsize=(6, 4.8))
image = ax.imshow(mean, cmap="viridis")
for i in range(len(a1_grid)):
    for j in range(len(a2_grid)):
        light = mean[i, j] < mean.min() + 0.5 * np.ptp(mean)
        ax.text(j, i, f"{mean[i, j]:.3f}\n± {std[i, j]:.3f}", ha="center", va="center",
                color="w" if light else "k")
ax.set_xticks(range(len(a2_grid)), [f"{v:g}" for v in a2_grid])
a1_max = 1 - np.cos(2 * np.pi / len(np.unique(y_train)))
ax.set_yticks(
    range(len(a1_grid)),
    [f"{v:g}" if v <= a1_max else f"{v:g}\n(clipped\nto {a1_max:.3f})" for v in a1_grid],
)
ax.set_xlabel("a2 (within-class margin)")
ax.set_ylabel("a1 (between-class margin)")
ax.set_title("Mean cross-validated balanced accuracy")
fig.colorbar(image, ax=ax, shrink=0.8)
fig.tight_layout()
plt.show()

# %%
# Differences of a point or so are within the fold-to-fold spread (the ``±``
# values) at this budget. The row ``a1 = 0.3`` trains with ``a1 = a1_max_``:
# any larger value gives exactly the same model, so a grid should stay below
# the bound.
#
# Bounds and the margins actually used
# ------------------------------------
# After ``fit``, ``a1_max_`` and ``a2_max_`` hold the bounds and ``a1_`` and
# ``a2_`` the margins used for training (``"auto"`` resolved, values above a
# bound clipped). The ``a2`` bound is per class, from the class's share of the
# training set: the rarest digits get the smallest bounds.
#
# The bounds depend only on the class sizes, so a one-iteration fit is enough
# to show them.
embedder = CLMLEEmbedder(
    a1=0.3, a2=0.1, n_rounds=1, iterations_per_round=1, warmup_iterations=0,
    n_threads=1, random_state=0,
)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    embedder.fit(StandardScaler().fit_transform(X_train), y_train)
for w in caught:
    print("UserWarning:", w.message)
print(f"a1_max_ = {embedder.a1_max_:.3f}, a1_ = {embedder.a1_:.3f}")
print("class sizes:", np.bincount(y_train))
print("a2_max_:", np.round(embedder.a2_max_, 3))
print("a2_:    ", np.round(embedder.a2_, 3))
