"""
Prediction speed: k-nearest clusters against k-nearest neighbours
==================================================================

:class:`~sklearn_clmle.KNearestClusterClassifier` searches cluster
*centroids* instead of training samples: with clusters of ``l`` samples it
compares each query with about ``n / l`` centroids instead of ``n`` rows, so
its prediction cost grows much more slowly with the training set than that of
scikit-learn's :class:`~sklearn.neighbors.KNeighborsClassifier`. The price is
paid once, in ``fit``, which runs an equal-size spherical k-means per class.

We time both on synthetic unit-norm 64-dimensional "embeddings" (10 classes,
each a mixture of 5 Gaussian blobs projected on the sphere) of growing size,
with 2,000 queries. Timings depend on the machine and on what else runs on it;
the shape of the curves is the point. The benchmark in the repository
(``benchmarks/results/knc_speed.md``) goes up to a million training rows.
"""

# %%
# Synthetic embeddings
# --------------------
import time

import matplotlib.pyplot as plt
import numpy as np
from sklearn.neighbors import KNeighborsClassifier

from sklearn_clmle import KNearestClusterClassifier

rng = np.random.default_rng(0)
n_features, n_classes, blobs_per_class = 64, 10, 5
blob_centers = rng.standard_normal((n_classes * blobs_per_class, n_features))


def sample(n):
    """n unit-norm float32 rows and their labels."""
    blob = rng.integers(0, len(blob_centers), n)
    X = blob_centers[blob] + 1.2 * rng.standard_normal((n, n_features))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    return X.astype(np.float32), blob % n_classes


X_query, y_query = sample(2_000)


def best_of(n_repeats, func):
    """Shortest wall time of ``n_repeats`` calls of ``func`` (seconds)."""
    times = []
    for _ in range(n_repeats):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return min(times)


# %%
# Time ``fit`` and ``predict``
# ----------------------------
# Both classifiers use 5 neighbours (centroids for k-NC, samples for kNN);
# ``KNeighborsClassifier`` picks brute-force search for 64-dimensional data.
# ``predict`` is timed as the best of 3 calls, ``fit`` once.
sizes = [10_000, 50_000, 200_000]
timings = {"k-NC": {"fit": [], "predict": []}, "kNN": {"fit": [], "predict": []}}
for n in sizes:
    X, y = sample(n)
    models = {
        "k-NC": KNearestClusterClassifier(n_neighbors=5, random_state=0),
        "kNN": KNeighborsClassifier(n_neighbors=5),
    }
    for name, model in models.items():
        timings[name]["fit"].append(best_of(1, lambda: model.fit(X, y)))
        timings[name]["predict"].append(best_of(3, lambda: model.predict(X_query)))
        accuracy = np.mean(model.predict(X_query) == y_query)
        print(f"n={n:>7,} {name:<5} fit {timings[name]['fit'][-1]:6.3f} s   "
              f"predict {timings[name]['predict'][-1]:6.3f} s   accuracy {accuracy:.3f}")
    print(f"          k-NC searched {len(models['k-NC'].cluster_centers_):,} centroids "
          f"(cluster_size_={models['k-NC'].cluster_size_})")

# %%
# Plot
# ----
fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharex=True)
for ax, stage in zip(axes, ["predict", "fit"]):
    for name, marker in zip(timings, "os"):
        ax.loglog(sizes, timings[name][stage], marker=marker, label=name)
    ax.set_xlabel("training rows")
    ax.set_ylabel("seconds")
    ax.set_title(f"{stage} ({len(X_query):,} queries)" if stage == "predict" else stage)
    ax.grid(which="both", alpha=0.3)
    ax.legend()
fig.tight_layout()
plt.show()

# %%
# kNN's prediction time grows linearly with the training set, while k-NC's
# grows only with the number of centroids (here ``n / 200``), so the gap
# widens with ``n``. kNN's ``fit`` only stores the data; k-NC's clustering is
# a one-off cost that is repaid once enough queries are predicted.
