"""Long-tailed versions of bundled data sets (nothing is downloaded).

Protocol: split stratified into train and test first, then subsample only the
training part so that the k-th class (in sorted label order) keeps
``n_max * imbalance_ratio ** (-k / (C - 1))`` samples; the test part stays as
it is.
"""

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state

__all__ = ["load_long_tailed_digits", "load_long_tailed_mnist1d", "long_tail_indices"]


def long_tail_indices(y, imbalance_ratio, random_state=None):
    """Indices of a long-tailed subsample of ``y``.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Labels.
    imbalance_ratio : float
        Size of the largest class over the smallest, ``>= 1``.
    random_state : int, RandomState instance or None, default=None
        Which samples of each class are kept.

    Returns
    -------
    indices : ndarray
        Sorted row indices; class k (sorted labels) keeps
        ``max(1, floor(n_max * imbalance_ratio ** (-k / (C - 1))))`` rows,
        where ``n_max`` is the size of the smallest class of ``y`` (so every
        class can supply its share).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_clmle.datasets import long_tail_indices
    >>> y = np.repeat([0, 1, 2], 100)
    >>> np.bincount(y[long_tail_indices(y, 10, random_state=0)])
    array([100,  31,  10])
    """
    if not imbalance_ratio >= 1:
        raise ValueError(f"imbalance_ratio must be >= 1, got {imbalance_ratio!r}.")
    rng = check_random_state(random_state)
    y = np.asarray(y)
    classes, counts = np.unique(y, return_counts=True)
    n_max = counts.min()
    n_classes = classes.size
    keep = []
    for k, c in enumerate(classes):
        frac = k / (n_classes - 1) if n_classes > 1 else 0.0
        n_keep = max(1, int(n_max * imbalance_ratio ** (-frac)))
        idx = np.flatnonzero(y == c)
        keep.append(rng.choice(idx, n_keep, replace=False))
    return np.sort(np.concatenate(keep))


def load_long_tailed_digits(imbalance_ratio=10, test_size=0.5, random_state=0):
    """scikit-learn's 8x8 digits, long-tailed in the training part only.

    Parameters
    ----------
    imbalance_ratio : float, default=10
        Largest over smallest training class (1 is the balanced control).
    test_size : float, default=0.5
        Fraction of the data held out (stratified) before subsampling.
    random_state : int, default=0
        Seed of the split and the subsampling.

    Returns
    -------
    X_train, X_test, y_train, y_test : ndarrays
        Pixel values 0..16 as float64.

    Examples
    --------
    >>> from sklearn_clmle.datasets import load_long_tailed_digits
    >>> X_tr, X_te, y_tr, y_te = load_long_tailed_digits(10, random_state=0)
    >>> X_tr.shape[1], len(set(y_tr))
    (64, 10)
    """
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=test_size, stratify=y, random_state=random_state
    )
    keep = long_tail_indices(y_train, imbalance_ratio, random_state=random_state)
    return X_train[keep], X_test, y_train[keep], y_test


def load_long_tailed_mnist1d(imbalance_ratio=10, random_state=0):
    """MNIST-1D (generated locally by the ``mnist1d`` package), long-tailed.

    The package's own train/test split (4000/1000 signals of 40 samples, 10
    classes) is kept; only the training part is subsampled. Requires
    ``pip install mnist1d``; nothing is downloaded.

    Parameters
    ----------
    imbalance_ratio : float, default=10
        Largest over smallest training class.
    random_state : int, default=0
        Seed of the subsampling (the signals themselves use the package's
        fixed default seed).

    Returns
    -------
    X_train, X_test, y_train, y_test : ndarrays

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_clmle.datasets import load_long_tailed_mnist1d
    >>> X_train, X_test, y_train, y_test = load_long_tailed_mnist1d(10)
    >>> X_train.shape[1], X_test.shape
    (40, (1000, 40))
    >>> counts = np.bincount(y_train)
    >>> int(counts.max() / counts.min())
    10
    """
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError as exc:  # pragma: no cover - optional dependency
        raise ImportError(
            "load_long_tailed_mnist1d needs the mnist1d package: pip install mnist1d"
        ) from exc
    data = make_dataset(get_dataset_args())
    X_train, y_train = np.asarray(data["x"]), np.asarray(data["y"])
    keep = long_tail_indices(y_train, imbalance_ratio, random_state=random_state)
    return X_train[keep], np.asarray(data["x_test"]), y_train[keep], np.asarray(data["y_test"])
