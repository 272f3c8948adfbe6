"""Cluster-based Large Margin Local Embedding (CLMLE) for imbalanced learning.

Public names
------------
CLMLEEmbedder
    scikit-learn transformer that trains a torch backbone with CLMLE.
KNearestClusterClassifier
    scikit-learn classifier applying the k-nearest-cluster rule (Eq. 10).
ClusterMarginLoss
    The Eq. 9 loss as a ``torch.nn.Module``, for your own training loops.
"""

from sklearn_clmle._classifier import KNearestClusterClassifier
from sklearn_clmle._embedder import CLMLEEmbedder
from sklearn_clmle._loss import ClusterMarginLoss

__all__ = [
    "CLMLEEmbedder",
    "ClusterMarginLoss",
    "KNearestClusterClassifier",
    "__version__",
]
__version__ = "0.1.0"
