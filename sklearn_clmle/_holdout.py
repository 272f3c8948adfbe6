"""The validation part that early stopping scores: a stratified hold-out.

Every class keeps at least two training rows: a class of one or two rows
stays whole in training (and a warning names it), so a rare class is never
dropped from what the model learns (the trap of skorch#1152).
"""

import warnings

import numpy as np


def train_validation_split(y, fraction, rng, classes=None):
    """Training and validation row indices, ``fraction`` of each class held out.

    Parameters
    ----------
    y : ndarray of shape (n_samples,)
        Encoded labels, integers in ``[0, n_classes)``.
    fraction : float
        Share of each class to hold out, in (0, 1).
    rng : numpy.random.Generator
    classes : ndarray, optional
        The original labels, to name classes in the warning.

    Returns
    -------
    train, validation : ndarray of int64
        Sorted row indices. A class of n >= 3 rows gives
        ``clip(round(fraction * n), 1, n - 2)`` rows to validation; a class
        of fewer rows gives none, with a ``UserWarning``.
    """
    val, kept = [], []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        if idx.size < 3:
            kept.append(c)
            continue
        n_val = int(np.clip(round(fraction * idx.size), 1, idx.size - 2))
        val.append(idx[:n_val])
    if kept:
        names = [str(classes[c]) if classes is not None else str(c) for c in kept]
        warnings.warn(
            f"validation_fraction: class(es) {', '.join(names[:10])} have fewer than 3 "
            "rows; they stay whole in training and are absent from the validation "
            "part (the validation score ignores them).",
            UserWarning,
            stacklevel=4,
        )
    val = np.sort(np.concatenate(val)) if val else np.empty(0, dtype=np.int64)
    train = np.setdiff1d(np.arange(y.size), val)
    return train, val
