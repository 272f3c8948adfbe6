"""Cluster-based Large Margin Local Embedding (CLMLE) for imbalanced learning.

Public names
------------
CLMLEEmbedder
    scikit-learn transformer that trains a torch backbone with CLMLE.
KNearestClusterClassifier
    scikit-learn classifier applying the k-nearest-cluster rule (Eq. 10).
CrossEntropyClassifier
    The same backbones trained with (class-weighted or logit-adjusted)
    cross-entropy: the deep baselines.
ClusterMarginLoss
    The Eq. 9 loss as a ``torch.nn.Module``, for your own training loops.
LMLEEmbedder
    The predecessor LMLE (quintuplet loss, or a triplet baseline) as a
    transformer, trained by the same machinery.
QuintupletLoss
    LMLE's triple-header hinge loss (Eq. 2) as a ``torch.nn.Module``.
save, load
    Write and read estimators in a format that runs no code when loaded
    (:mod:`sklearn_clmle.persistence`).
InconsistentVersionWarning
    Warned when a model saved or pickled by another version is loaded.
"""

from sklearn_clmle._classifier import KNearestClusterClassifier
from sklearn_clmle._cross_entropy import CrossEntropyClassifier
from sklearn_clmle._embedder import CLMLEEmbedder
from sklearn_clmle._lmle import LMLEEmbedder
from sklearn_clmle._loss import ClusterMarginLoss
from sklearn_clmle._quintuplet_loss import QuintupletLoss
from sklearn_clmle._versioning import __version__
from sklearn_clmle.exceptions import InconsistentVersionWarning
from sklearn_clmle.persistence import load, save

__all__ = [
    "CLMLEEmbedder",
    "ClusterMarginLoss",
    "CrossEntropyClassifier",
    "InconsistentVersionWarning",
    "KNearestClusterClassifier",
    "LMLEEmbedder",
    "QuintupletLoss",
    "__version__",
    "load",
    "save",
]
