"""
What CLMLE does to an imbalanced problem, in two dimensions
===========================================================

The CLMLE paper (Fig. 5) illustrates its embedding on a toy problem: every
class is split into equal-size clusters, and training pushes each cluster
away from its neighbours, with a larger margin between clusters of different
classes than within a class. A minority class then owns its own region
of the space instead of being swamped by a majority class.

Here four digit classes of scikit-learn's 8x8 digits (2, 3, 8 and 9) are made
long-tailed with an imbalance ratio of 10: 121, 56, 26 and 12 training images.
We look at

* the standardised inputs projected on their first two principal components,
  with the centroids of equal-size clusters of each class;
* a :class:`~sklearn_clmle.CLMLEEmbedder` with ``embedding_dim=2``. Its
  embedding is unit-norm, so every image lands on the unit circle, and the
  black crosses are the centroids of the embedder's final clustering
  (``cluster_centers_``).
"""

# %%
# A long-tailed four-class problem
# --------------------------------
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler, normalize

from sklearn_clmle import CLMLEEmbedder, KNearestClusterClassifier
from sklearn_clmle.datasets import long_tail_indices

X, y = load_digits(return_X_y=True)
keep = np.isin(y, [2, 3, 8, 9])
X_train, X_test, y_train, y_test = train_test_split(
    X[keep], y[keep], test_size=0.3, stratify=y[keep], random_state=0
)
tail = long_tail_indices(y_train, imbalance_ratio=10, random_state=0)
X_train, y_train = X_train[tail], y_train[tail]
classes, counts = np.unique(y_train, return_counts=True)
print(dict(zip(classes.tolist(), counts.tolist())))

scaler = StandardScaler().fit(X_train)
Z_train, Z_test = scaler.transform(X_train), scaler.transform(X_test)

# %%
# Train the embedding and the k-nearest-cluster classifier
# --------------------------------------------------------
# Clusters of 20 samples: the majority class gets 6 clusters, the two rarest
# one each. The same cluster size is used by the k-nearest-cluster classifier,
# once on the (L2-normalised) inputs and once on the embedding.
embedder = CLMLEEmbedder(
    embedding_dim=2, cluster_size=20, n_rounds=3, iterations_per_round=100,
    warmup_iterations=100, n_threads=1, random_state=0,
).fit(Z_train, y_train)
E_train, E_test = embedder.transform(Z_train), embedder.transform(Z_test)
print("clusters per class:", embedder.n_clusters_per_class_)

knc_inputs = KNearestClusterClassifier(cluster_size=20, random_state=0).fit(Z_train, y_train)
knc_embedding = KNearestClusterClassifier(cluster_size=20, random_state=0).fit(E_train, y_train)
score_inputs = balanced_accuracy_score(y_test, knc_inputs.predict(Z_test))
score_embedding = balanced_accuracy_score(y_test, knc_embedding.predict(E_test))
print(f"k-NC balanced accuracy on the inputs: {score_inputs:.3f}, "
      f"on the 2-d CLMLE embedding: {score_embedding:.3f}")

# %%
# Plot
# ----
# The k-nearest-cluster classifier normalises its inputs, so the input panel
# projects the L2-normalised standardised images. On the circle, each class is
# drawn at a slightly different radius so that overlapping classes stay
# visible; the embedding itself has norm 1.
colors = dict(zip(classes, plt.cm.tab10.colors))
offset = dict(zip(classes, 1 + 0.05 * np.arange(len(classes))))

fig, axes = plt.subplots(1, 3, figsize=(13, 4.6))
pca = PCA(n_components=2).fit(normalize(Z_train))
P_train = pca.transform(normalize(Z_train))
P_centroids = pca.transform(knc_inputs.cluster_centers_)
ax = axes[0]
for c in classes:
    ax.scatter(*P_train[y_train == c].T, s=10, alpha=0.6, color=colors[c],
               label=f"digit {c} ({np.sum(y_train == c)})")
    ax.scatter(*P_centroids[knc_inputs.cluster_classes_ == c].T, marker="X", s=90,
               color=colors[c], edgecolor="k")
ax.scatter([], [], marker="X", s=90, color="w", edgecolor="k", label="cluster centroid")
ax.set_title(f"inputs (PCA), training set\nk-NC balanced accuracy {score_inputs:.3f}")
ax.legend(loc="best", fontsize=8)

theta = np.linspace(0, 2 * np.pi, 200)
for ax, E, labels, title in [
    (axes[1], E_train, y_train, "CLMLE embedding, training set"),
    (axes[2], E_test, y_test,
     f"CLMLE embedding, test set\nk-NC balanced accuracy {score_embedding:.3f}"),
]:
    ax.plot(np.cos(theta), np.sin(theta), color="0.85", lw=1, zorder=0)
    for c in classes:
        pts = E[labels == c] * offset[c]
        ax.scatter(*pts.T, s=10, alpha=0.6, color=colors[c])
    for center, c in zip(embedder.cluster_centers_, embedder.cluster_classes_):
        ax.scatter(*(center * offset[c]), marker="X", s=90, color=colors[c], edgecolor="k")
    ax.set_aspect("equal")
    ax.set_xlim(-1.3, 1.3)
    ax.set_ylim(-1.3, 1.3)
    ax.set_title(title)
axes[0].set_aspect("equal", adjustable="datalim")
fig.tight_layout()
plt.show()

# %%
# In the input space the rare digits 8 and 9 lie among the clusters of the
# frequent digits 2 and 3. On the circle every class owns its own arcs, with
# empty gaps between classes (the between-class margin ``a1``), and the rare
# classes get as much room as the frequent ones: the six clusters of digit 2
# share one short arc. The test images spread further than the training
# images but mostly stay in their class's arcs.
#
# This is one split of four classes with a small training budget, and the
# scores vary with the classes and the seed; the benchmarks in the repository
# (``benchmarks/results/suite.md``) compare the methods on all ten digits over
# several seeds.
