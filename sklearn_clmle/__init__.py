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
"""

from sklearn_clmle._classifier import KNearestClusterClassifier
from sklearn_clmle._cross_entropy import CrossEntropyClassifier
from sklearn_clmle._embedder import CLMLEEmbedder
from sklearn_clmle._loss import ClusterMarginLoss

__all__ = [
    "CLMLEEmbedder",
    "ClusterMarginLoss",
    "CrossEntropyClassifier",
    "KNearestClusterClassifier",
    "__version__",
]
__version__ = "0.1.0"
