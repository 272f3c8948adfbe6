"""
``ClusterMarginLoss`` in a custom torch training loop
=====================================================

:class:`~sklearn_clmle.CLMLEEmbedder` wraps the whole CLMLE procedure, but the
loss itself (Eq. 9 of the CLMLE paper) is an ordinary ``torch.nn.Module`` that
fits into a training loop of your own. It takes a batch of unit-norm
embeddings, the batch cluster of every row and the class of every batch
cluster::

    loss = ClusterMarginLoss(a1=0.1, a2=0.02)(embeddings, cluster_ids, cluster_classes)

``cluster_ids`` index the clusters *of the batch* (0 to M-1) and
``cluster_classes`` has one entry per batch cluster. In this example we

1. split every class of long-tailed digits into clusters once, with k-means on
   the inputs (CLMLEEmbedder re-clusters the learned embedding between rounds
   and uses equal-size clusters; we keep it simple);
2. train a small MLP on batches made of a few whole clusters;
3. classify the test set with :class:`~sklearn_clmle.KNearestClusterClassifier`
   on the learned embedding.
"""

# %%
# Data and a fixed clustering
# ---------------------------
import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from sklearn.cluster import KMeans
from sklearn.metrics import balanced_accuracy_score
from sklearn.preprocessing import StandardScaler

from sklearn_clmle import ClusterMarginLoss, KNearestClusterClassifier
from sklearn_clmle.datasets import load_long_tailed_digits

# One torch thread, so that the results do not depend on the machine's core
# count (the previous setting is restored at the end).
previous_num_threads = torch.get_num_threads()
torch.set_num_threads(1)

X_train, X_test, y_train, y_test = load_long_tailed_digits(10, test_size=0.3, random_state=0)
scaler = StandardScaler().fit(X_train)
X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
print("training samples per class:", np.bincount(y_train))

# About 15 samples per cluster, at least one cluster per class.
cluster_of_row = np.empty(len(y_train), dtype=int)
cluster_class = []
for c in np.unique(y_train):
    rows = np.flatnonzero(y_train == c)
    k = max(1, len(rows) // 15)
    labels = KMeans(n_clusters=k, n_init=3, random_state=0).fit_predict(X_train[rows])
    cluster_of_row[rows] = len(cluster_class) + labels
    cluster_class.extend([c] * k)
cluster_class = np.array(cluster_class)
members = [np.flatnonzero(cluster_of_row == k) for k in range(len(cluster_class))]
print(f"{len(cluster_class)} clusters, per class:", np.bincount(cluster_class))

# %%
# Batches of whole clusters
# -------------------------
# Each batch draws a class uniformly at random (so rare classes are seen as
# often as frequent ones), one of its clusters as the query, and the
# ``M - 1`` clusters whose centroids are nearest to it in the input space,
# then ``s`` samples of each (with replacement for small clusters). The
# nearest clusters are the ones the margins must separate.
M, s = 8, 10
centroids = np.stack([X_train[m].mean(axis=0) for m in members])
nearest = np.argsort(((centroids[:, None] - centroids[None]) ** 2).sum(-1), axis=1)


def draw_batch(rng):
    c = rng.choice(np.unique(cluster_class))
    query = rng.choice(np.flatnonzero(cluster_class == c))
    clusters = nearest[query, :M]  # the query itself comes first
    rows = np.concatenate([rng.choice(members[k], s) for k in clusters])
    cluster_ids = np.repeat(np.arange(M), s)  # batch cluster of each row, 0..M-1
    return (
        torch.as_tensor(X_train[rows], dtype=torch.float32),
        torch.as_tensor(cluster_ids),
        torch.as_tensor(cluster_class[clusters]),  # class of each batch cluster
    )


# %%
# Train a small MLP
# -----------------
# The network's output is L2-normalised with ``torch.nn.functional.normalize``
# before the loss, which expects unit-norm embeddings. We train the same
# network twice, with the paper's loss (``scale=1``) and with ``scale=10``,
# which divides the log-sum-exp of Eq. 9 by an inverse temperature:
# ``log(sum(exp(10 s_k))) / 10``, closer to the maximum over the competing
# clusters.


def train(scale, n_steps=600):
    torch.manual_seed(0)
    rng = np.random.default_rng(0)  # the same batches for both runs
    model = torch.nn.Sequential(
        torch.nn.Linear(X_train.shape[1], 128),
        torch.nn.ReLU(),
        torch.nn.Linear(128, 32),
    )
    loss_fn = ClusterMarginLoss(a1=0.1, a2=0.02, scale=scale)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    losses = []
    for _ in range(n_steps):
        xb, cluster_ids, cluster_classes = draw_batch(rng)
        embeddings = F.normalize(model(xb), dim=1)
        loss = loss_fn(embeddings, cluster_ids, cluster_classes)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return model.eval(), np.array(losses)


runs = {scale: train(scale) for scale in (1.0, 10.0)}

# %%
# The loss curves
# ---------------
# Batches differ from step to step, so the raw loss is noisy; the lines are
# moving averages over 25 steps. With ``scale=1`` the loss stays far from 0:
# similarities lie in [-1, 1], so the log-sum-exp over n competing clusters is
# at least ``log(n) - 1`` while ``s_m`` is at most 1, and with several
# competitors in a batch the hinge can hardly reach 0. The loss then stays
# high and its gradient weak (the user guide discusses this). With
# ``scale=10`` the margins are met on most batches within a few hundred
# steps. The two losses are on different scales, hence two panels.
window = 25
fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharex=True)
for ax, (scale, (_, losses)) in zip(axes, runs.items()):
    smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
    ax.plot(losses, color="0.75", lw=0.8, label="per batch")
    ax.plot(np.arange(window - 1, len(losses)), smooth, color="C0",
            label=f"moving average ({window})")
    ax.set_title(f"ClusterMarginLoss(scale={scale:g})")
    ax.set_xlabel("training step")
    ax.legend()
axes[0].set_ylabel("cluster-margin loss (Eq. 9)")
fig.tight_layout()
plt.show()

# %%
# Classify with the k-nearest-cluster rule
# ----------------------------------------
# :class:`~sklearn_clmle.KNearestClusterClassifier` clusters the training
# embeddings of each class again and classifies by their centroids (Eq. 10).
# For comparison, the same classifier on the standardised inputs.


def embed(model, X):
    with torch.no_grad():
        return F.normalize(model(torch.as_tensor(X, dtype=torch.float32)), dim=1).numpy()


features = {"inputs": (X_train, X_test)}
for scale, (model, _) in runs.items():
    features[f"embedding, scale={scale:g}"] = (embed(model, X_train), embed(model, X_test))
for name, (A_train, A_test) in features.items():
    knc = KNearestClusterClassifier(random_state=0).fit(A_train, y_train)
    score = balanced_accuracy_score(y_test, knc.predict(A_test))
    print(f"k-NC on the {name}: balanced accuracy {score:.3f}")

# %%
# One split and one seed: the numbers illustrate, they do not rank methods.
# :class:`~sklearn_clmle.CLMLEEmbedder` adds what this loop leaves out:
# equal-size clusters re-computed on the embedding between rounds, the
# hardest query cluster of each class, a cross-entropy warm-up and margins
# set from their bounds.

torch.set_num_threads(previous_num_threads)
