"""Long-tailed versions of bundled data sets (nothing is downloaded).

Protocol of the single-label loaders: split stratified into train and test
first, then subsample only the training part so that the k-th class (in
sorted label order) keeps ``n_max * imbalance_ratio ** (-k / (C - 1))``
samples; the test part stays as it is.

:func:`load_digit_strips` is a multi-label set with skewed binary attributes
(CelebA style), built from the same bundled digits.
"""

import numbers

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state

__all__ = [
    "load_digit_strips",
    "load_long_tailed_digits",
    "load_long_tailed_mnist1d",
    "long_tail_indices",
]


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


def _check_count(value, name, minimum=1):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an int >= {minimum}; got {value!r}.")
    if value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}; got {value}.")
    return int(value)


def _strips(images, labels, n_strips, n_digits, p, rng):
    """``n_strips`` strips of ``n_digits`` images side by side, and their digits."""
    digits = rng.choice(p.size, size=(n_strips, n_digits), p=p)
    picked = np.empty(digits.shape, dtype=np.int64)
    for k in range(p.size):
        where = digits == k
        pool = np.flatnonzero(labels == k)
        picked[where] = pool[rng.randint(pool.size, size=int(where.sum()))]
    side, width = 8, 8
    strips = images[picked].reshape(n_strips, n_digits, side, width)
    # (strip, position, row, column) -> (strip, row, position, column): row-major
    # rows of the 8 x (8 * n_digits) image.
    X = strips.transpose(0, 2, 1, 3).reshape(n_strips, side * width * n_digits)
    Y = (digits[:, :, None] == np.arange(p.size)).any(axis=1).astype(np.int64)
    return X, Y


def load_digit_strips(n_digits=3, n_train=3000, n_test=1500, imbalance_ratio=100,
                      random_state=0):
    """Multi-label strips of 8x8 digits with long-tailed binary attributes.

    A stand-in for CelebA attribute prediction made of real pixels (the
    scikit-learn digits; nothing is downloaded): each sample is a strip of
    ``n_digits`` digit images side by side, and its attributes say which
    digits it contains. Rare digits make rare attributes.

    Parameters
    ----------
    n_digits : int, default=3
        Digit images per strip, side by side.
    n_train : int, default=3000
        Number of training strips.
    n_test : int, default=1500
        Number of test strips.
    imbalance_ratio : float, default=100
        Ratio of the most to the least frequent digit, ``>= 1``: digit ``k``
        is drawn with probability proportional to
        ``imbalance_ratio ** (-k / 9)``.
    random_state : int, RandomState instance or None, default=0
        Seed of the split and of the strips.

    Returns
    -------
    X_train : ndarray of shape (n_train, 64 * n_digits)
        Flat strips, pixel values 0..16 as float64; each row is an
        ``8 x (8 * n_digits)`` image in row-major order, so
        ``backbone="cnn2d", backbone_kwargs={"image_shape": (8, 8 * n_digits)}``
        reads it as an image.
    X_test : ndarray of shape (n_test, 64 * n_digits)
        Test strips, likewise.
    Y_train : ndarray of shape (n_train, 10), dtype int64
        Binary attributes: ``Y_train[i, k] == 1`` when strip ``i`` shows the
        digit ``k`` at any of its positions.
    Y_test : ndarray of shape (n_test, 10), dtype int64
        Test attributes, likewise.
    attribute_names : list of str
        ``["has_0", "has_1", ..., "has_9"]``, one per column of ``Y``.

    See Also
    --------
    sklearn_clmle.metrics.mean_balanced_accuracy : The metric for these
        attributes.

    Notes
    -----
    Protocol. scikit-learn's 1797 digit images are first split stratified
    50/50 into a train pool and a test pool, so no image appears in both.
    Each strip's digits are then drawn i.i.d. with
    ``p_k`` proportional to ``imbalance_ratio ** (-k / 9)``, and each
    position shows an image of its digit drawn at random (with replacement)
    from the pool's images of that digit. Test strips are generated in the
    same way from the test pool, so the test attributes are as skewed as the
    training ones: attribute prediction is evaluated on the natural
    distribution, as on CelebA, with the balanced accuracy of each attribute.

    The expected positive rate of attribute ``k`` is
    ``1 - (1 - p_k) ** n_digits``: at the defaults 0.787, 0.564, 0.375,
    0.238, 0.148, 0.091, 0.055, 0.033, 0.020, 0.012 for ``has_0`` ...
    ``has_9``, from about four in five down to about one in a hundred. The
    strips drawn at the defaults measure, on the training strips,
    0.796, 0.575, 0.366, 0.236, 0.152, 0.082, 0.053, 0.027, 0.020, 0.011
    (33 positives of ``has_9``) and on the test strips
    0.779, 0.543, 0.378, 0.239, 0.163, 0.097, 0.055, 0.041, 0.023, 0.015
    (22 positives of ``has_9``). With ``imbalance_ratio=50`` the rarest
    attribute would still be one in 47 (0.021, commonest 0.734); no ratio
    gives both a commonest attribute near one half and a rarest near one in
    a hundred with three digits, so the default favours the rare end.

    Examples
    --------
    >>> from sklearn_clmle.datasets import load_digit_strips
    >>> X_train, X_test, Y_train, Y_test, names = load_digit_strips()
    >>> X_train.shape, Y_train.shape, X_test.shape
    ((3000, 192), (3000, 10), (1500, 192))
    >>> names[:3]
    ['has_0', 'has_1', 'has_2']
    >>> Y_train.sum(axis=0)  # positives per attribute
    array([2387, 1725, 1097,  708,  456,  246,  159,   80,   61,   33])
    """
    n_digits = _check_count(n_digits, "n_digits")
    n_train = _check_count(n_train, "n_train")
    n_test = _check_count(n_test, "n_test")
    if (isinstance(imbalance_ratio, bool) or not isinstance(imbalance_ratio, numbers.Real)
            or not np.isfinite(imbalance_ratio) or imbalance_ratio < 1):
        raise ValueError(
            f"imbalance_ratio must be a finite number >= 1; got {imbalance_ratio!r}."
        )
    rng = check_random_state(random_state)
    X, y = load_digits(return_X_y=True)
    train_pool, test_pool = train_test_split(
        np.arange(y.size), test_size=0.5, stratify=y, random_state=rng
    )
    weights = float(imbalance_ratio) ** (-np.arange(10) / 9)
    p = weights / weights.sum()
    X_train, Y_train = _strips(X[train_pool], y[train_pool], n_train, n_digits, p, rng)
    X_test, Y_test = _strips(X[test_pool], y[test_pool], n_test, n_digits, p, rng)
    return X_train, X_test, Y_train, Y_test, [f"has_{k}" for k in range(10)]
