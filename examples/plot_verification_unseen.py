"""
Verification of classes never seen in training
==============================================

The CLMLE paper tests its face embeddings *open-set*: the identities of the
test pairs (LFW, YouTube Faces, MegaFace) are not among the training
identities, so no classifier head can help; only the geometry of the
embedding can. Two images are declared "same identity" when the cosine
similarity of their features reaches a threshold, and the trade-off between
true accepts and false accepts is the verification ROC.

Here the same protocol runs on scikit-learn's 8x8 digits: both models are
trained on digits 0-6 only, and pairs are drawn from the *test* images of
digits 7, 8 and 9, which neither model ever saw. We compare

* :class:`~sklearn_clmle.CLMLEEmbedder` (its ``transform``);
* :class:`~sklearn_clmle.CrossEntropyClassifier`, whose features are the
  output of its backbone ``module_`` before the linear head;

on the same backbone and the same (small, so that the example runs in
seconds) budget. One split and one seed: differences of a few points are
within the noise; ``benchmarks/results/verification.md`` in the repository
averages over seeds and adds triplet, LMLE, CosFace and ArcFace.
"""

# %%
# Train on digits 0-6
# -------------------
import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from sklearn_clmle import CLMLEEmbedder, CrossEntropyClassifier
from sklearn_clmle.metrics import (
    make_pairs,
    pair_similarity,
    rank1_identification,
    true_accept_rate,
    verification_accuracy,
    verification_roc_curve,
)

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.5, stratify=y, random_state=0
)
seen = y_train <= 6
unseen = y_test >= 7
scaler = StandardScaler().fit(X_train[seen])
X_seen, y_seen = scaler.transform(X_train[seen]), y_train[seen]
X_new, y_new = scaler.transform(X_test[unseen]), y_test[unseen]
print(f"training on {y_seen.size} images of digits 0-6; "
      f"verifying {y_new.size} test images of digits 7-9")

common = dict(backbone="cnn2d", backbone_kwargs={"image_shape": (8, 8)},
              n_threads=1, random_state=0)
clmle = CLMLEEmbedder(warmup_epochs=10, max_epochs=50, **common).fit(X_seen, y_seen)
ce = CrossEntropyClassifier(max_epochs=60, **common).fit(X_seen, y_seen)


def backbone_features(clf, X):
    """The classifier's backbone output (before its linear head)."""
    module = clf.module_.eval()
    with torch.no_grad():
        return module(torch.as_tensor(X, dtype=torch.float32)).numpy()


features = {
    "CLMLE embedding": clmle.transform(X_new),
    "cross-entropy backbone": backbone_features(ce, X_new),
}

# %%
# Score pairs of unseen digits
# ----------------------------
# :func:`~sklearn_clmle.metrics.make_pairs` draws half genuine pairs (two
# images of the same digit) and half impostor pairs; each pair is scored by
# the cosine similarity of its two feature rows. Besides the ROC we report
# the true accept rate at a 1% false accept rate, the LFW-style 10-fold
# accuracy of the best threshold, and rank-1 identification with half of
# the unseen images as the gallery and the other half as probes.
pairs, is_same = make_pairs(y_new, 4000, random_state=0)
gallery, probes = train_test_split(np.arange(y_new.size), test_size=0.5,
                                   stratify=y_new, random_state=0)
curves = {}
for name, Z in features.items():
    scores = pair_similarity(Z, pairs)
    curves[name] = verification_roc_curve(is_same, scores)[:2]
    tar = true_accept_rate(is_same, scores, far=1e-2)
    accuracy, std = verification_accuracy(is_same, scores, random_state=0)
    rank1 = rank1_identification(Z[gallery], y_new[gallery], Z[probes], y_new[probes])
    print(f"{name:>24}: TAR@FAR=1% {tar:.3f}, 10-fold accuracy "
          f"{accuracy:.3f} ± {std:.3f}, rank-1 {rank1:.3f}")

# %%
# The verification ROC
# --------------------
# The false accept rate is on a log scale: security applications operate
# at the left end of the curve, where few impostors are accepted.
fig, ax = plt.subplots(figsize=(6, 4.5))
for name, (far, tar) in curves.items():
    ax.plot(far, tar, label=name)
ax.set_xscale("log")
ax.set_xlim(1e-3, 1)
ax.set_ylim(0, 1)
ax.set_xlabel("false accept rate (impostor pairs accepted)")
ax.set_ylabel("true accept rate (genuine pairs accepted)")
ax.set_title("Pairs of digits 7-9, never seen in training")
ax.grid(alpha=0.3, which="both")
ax.legend(loc="lower right")
plt.tight_layout()
plt.show()
