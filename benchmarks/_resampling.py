"""SMOTE that also works when the training part has classes of 1 to 5 rows.

Long-tailed data at IR 100 leaves classes of one or two training rows, and
imbalanced-learn's ``SMOTE(k_neighbors=5)`` then refuses to run. What a
practitioner does, and what this sampler does: duplicate a class of one row
(SMOTE cannot interpolate a single point) and lower ``k_neighbors`` to the
smallest class size minus one; then SMOTE to the majority count.
"""

import numpy as np
from imblearn.over_sampling import SMOTE, RandomOverSampler
from sklearn.base import BaseEstimator


class SmallClassSMOTE(BaseEstimator):
    """SMOTE with ``k_neighbors`` capped by the smallest class.

    Parameters
    ----------
    k_neighbors : int, default=5
        SMOTE's neighbours where classes are big enough.
    random_state : int or None, default=None
        Seed of both resamplers.
    """

    def __init__(self, k_neighbors=5, random_state=None):
        self.k_neighbors = k_neighbors
        self.random_state = random_state

    def fit_resample(self, X, y):
        classes, counts = np.unique(y, return_counts=True)
        if counts.min() < 2:
            singles = {c: 2 for c, n in zip(classes, counts) if n < 2}
            X, y = RandomOverSampler(
                sampling_strategy=singles, random_state=self.random_state
            ).fit_resample(X, y)
            counts = np.maximum(counts, 2)
        k = int(min(self.k_neighbors, counts.min() - 1))
        return SMOTE(k_neighbors=k, random_state=self.random_state).fit_resample(X, y)
