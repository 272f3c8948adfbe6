"""The validation scores early stopping watches (balanced accuracy).

The embedders are scored as they are used: by the nearest-cluster rule on
the current clusters, with centroids recomputed from the current training
embedding; a classifier by its own prediction.
"""

import warnings

import numpy as np
from sklearn.metrics import balanced_accuracy_score

from sklearn_clmle._clustering import _segment_mean, normalize_rows
from sklearn_clmle._rules import break_ties, class_scores

#: Centroids the validation rule retrieves (``KNearestClusterClassifier``'s
#: default ``n_neighbors``) and its scale.
VALIDATION_NEIGHBORS = 5
VALIDATION_SCALE = 10.0


def nearest_cluster_score(z_train, labels, cluster_class, z_val, y_val, class_counts,
                          rule="clmle"):
    """Balanced accuracy of the k-nearest-cluster rule on ``z_val``.

    Parameters
    ----------
    z_train : ndarray of shape (n_train, d)
        Unit-norm training embeddings.
    labels : ndarray of shape (n_train,)
        Current cluster of every training row.
    cluster_class : ndarray of shape (n_clusters,)
        Encoded class of each cluster.
    z_val : ndarray of shape (n_val, d)
    y_val : ndarray of shape (n_val,)
        Encoded labels of the validation rows.
    class_counts : ndarray of shape (n_classes,)
        Training rows per class (ties go to the rarer class).
    rule : {"clmle", "lmle"}
    """
    k = cluster_class.size
    centers = normalize_rows(_segment_mean(z_train, labels, k))
    sim = z_val @ centers.T
    n = min(VALIDATION_NEIGHBORS, k)
    idx = np.argpartition(-sim, n - 1, axis=1)[:, :n]
    top = np.take_along_axis(sim, idx, axis=1)
    scores, nearest = class_scores(top, cluster_class[idx], class_counts.size, rule,
                                   VALIDATION_SCALE)
    return balanced_accuracy(y_val, break_ties(scores, nearest, class_counts))


def balanced_accuracy(y_true, y_pred):
    """Balanced accuracy over the classes of ``y_true``; for 0/1 label
    matrices, its mean over the labels.

    A class kept out of the validation part (too few rows) may still be
    predicted; scikit-learn's warning about it would repeat every epoch.
    """
    if np.ndim(y_true) == 2:
        return float(np.mean([balanced_accuracy(t, p) for t, p in zip(y_true.T, y_pred.T)]))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="y_pred contains classes not in y_true")
        return float(balanced_accuracy_score(y_true, y_pred))
