"""Open-set verification metrics and a multi-label balanced-accuracy scorer.

The CLMLE paper evaluates face embeddings on classes never seen in training
(LFW, YouTube Faces, MegaFace). This module implements those protocols for
any embedding ``X`` (e.g. the output of ``CLMLEEmbedder.transform``):

* **verification**: pairs of rows are drawn (:func:`make_pairs`), scored by
  the similarity of their embeddings (:func:`pair_similarity`), and judged
  "same identity" when the score reaches a threshold. The results are the
  ROC of the pair decisions (:func:`verification_roc_curve`), the true
  accept rate at a fixed false accept rate (:func:`true_accept_rate`,
  MegaFace/IJB style) and the cross-validated accuracy of the best threshold
  (:func:`verification_accuracy`, LFW/YTF style);
* **identification**: each probe is matched to its nearest gallery row
  (:func:`rank1_identification`, MegaFace's rank-1 rate).

For attribute prediction (CelebA style: many binary labels, each skewed) the
paper reports the balanced accuracy of each attribute and their mean:
:func:`mean_balanced_accuracy`, :func:`per_label_rates` and the ready scorer
``mean_balanced_accuracy_scorer`` (scikit-learn's ``"balanced_accuracy"``
scorer rejects multi-label targets).
"""

import numbers
import warnings

import numpy as np
import scipy.sparse as sp
from sklearn.metrics import balanced_accuracy_score, make_scorer, roc_curve
from sklearn.model_selection import StratifiedKFold
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_array, check_consistent_length, column_or_1d

__all__ = [
    "make_pairs",
    "mean_balanced_accuracy",
    "mean_balanced_accuracy_scorer",
    "pair_similarity",
    "per_label_rates",
    "rank1_identification",
    "true_accept_rate",
    "verification_accuracy",
    "verification_roc_curve",
]

_METRICS = ("cosine", "euclidean")
# Rows (pairs or probes) handled at once, so memory stays bounded.
_CHUNK = 1024


def _check_int(value, name, minimum):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int; got {value!r} of type {type(value).__name__}.")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}; got {value}.")
    return int(value)


def _check_metric(metric):
    if not isinstance(metric, str) or metric not in _METRICS:
        raise ValueError(f"metric must be one of {_METRICS}; got {metric!r}.")
    return metric


# -- pairs ---------------------------------------------------------------------------


def _uniform_below(upper, rng):
    """One uniform integer in ``[0, upper[i])`` for each entry of ``upper``."""
    return np.minimum((rng.random_sample(upper.shape) * upper).astype(np.int64), upper - 1)


def _unordered_codes(first, second, n):
    return np.minimum(first, second) * n + np.maximum(first, second)


def _draw_pairs(draw, n_wanted, n_possible, n, kind, rng):
    """``n_wanted`` pairs from ``draw(m) -> (first, second)``, distinct if possible.

    Drawing repeats until enough distinct (unordered) pairs are found; when
    fewer than ``n_wanted`` exist, all of them are taken (from ``enumerate``)
    and the rest are drawn again, with a warning.
    """
    if n_wanted == 0:
        return np.empty((0, 2), dtype=np.int64)
    if n_wanted >= n_possible[0]:
        everything = n_possible[1]()
        everything = everything[rng.permutation(len(everything))]
        if n_wanted > len(everything):
            warnings.warn(
                f"only {len(everything)} distinct {kind} pairs exist and {n_wanted} were "
                f"requested; {n_wanted - len(everything)} {kind} pairs repeat. Lower "
                "n_pairs to get distinct pairs only.",
                UserWarning,
                stacklevel=3,
            )
            first, second = draw(n_wanted - len(everything))
            everything = np.vstack([everything, np.column_stack([first, second])])
        return everything
    kept = np.empty((0, 2), dtype=np.int64)
    seen = np.empty(0, dtype=np.int64)
    while len(kept) < n_wanted:
        first, second = draw(2 * (n_wanted - len(kept)) + 16)
        codes = _unordered_codes(first, second, n)
        # First occurrence of each new code, in drawing order.
        _, first_at = np.unique(codes, return_index=True)
        first_at = np.sort(first_at)
        first_at = first_at[~np.isin(codes[first_at], seen)]
        first_at = first_at[: n_wanted - len(kept)]
        kept = np.vstack([kept, np.column_stack([first[first_at], second[first_at]])])
        seen = np.concatenate([seen, codes[first_at]])
    return kept


def make_pairs(y, n_pairs, *, random_state=None):
    """Draw genuine and impostor pairs of rows for a verification benchmark.

    Half of the pairs are genuine (two different rows with the same label),
    half impostor (two rows with different labels), as in the LFW protocol.
    A genuine pair is drawn as a random anchor row (among the rows whose
    class has at least two rows) and a random other row of its class; an
    impostor pair as a random anchor row and a random row of any other
    class. Pairs are distinct as unordered pairs wherever enough of them
    exist.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Identity labels of the rows.
    n_pairs : int
        Number of pairs, at least 2. ``n_pairs // 2`` are genuine and the
        other ``n_pairs - n_pairs // 2`` impostor.
    random_state : int, RandomState instance or None, default=None
        Seed of the draws.

    Returns
    -------
    pairs : ndarray of shape (n_pairs, 2), dtype int64
        Row indices into ``y``, anchor first; genuine and impostor pairs
        come in random order.
    is_same : ndarray of shape (n_pairs,), dtype bool
        True for the genuine pairs.

    Warns
    -----
    UserWarning
        When fewer distinct genuine (or impostor) pairs exist than
        requested: all of them are used and the rest repeat.

    See Also
    --------
    pair_similarity : Score the pairs from an embedding.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_clmle.metrics import make_pairs
    >>> y = np.array([0, 0, 0, 1, 1, 2])
    >>> pairs, is_same = make_pairs(y, 6, random_state=0)
    >>> pairs.shape, int(is_same.sum())
    ((6, 2), 3)
    >>> bool(np.all((y[pairs[:, 0]] == y[pairs[:, 1]]) == is_same))
    True
    """
    y = column_or_1d(check_array(y, ensure_2d=False, dtype=None, input_name="y"))
    n_pairs = _check_int(n_pairs, "n_pairs", 2)
    rng = check_random_state(random_state)
    classes, y_codes, counts = np.unique(y, return_inverse=True, return_counts=True)
    if classes.size < 2:
        raise ValueError(
            f"make_pairs needs at least 2 classes in y for impostor pairs; got "
            f"{classes.size} class."
        )
    if counts.max() < 2:
        raise ValueError(
            "make_pairs needs a class with at least 2 rows in y for genuine pairs; "
            "every class has 1 row."
        )
    n = y.shape[0]
    order = np.argsort(y_codes, kind="stable")  # rows grouped by class
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    position = np.empty(n, dtype=np.int64)  # where each row sits in ``order``
    position[order] = np.arange(n)
    eligible = np.flatnonzero(counts[y_codes] >= 2)

    def draw_genuine(m):
        anchors = eligible[rng.randint(eligible.size, size=m)]
        cls = y_codes[anchors]
        rank = position[anchors] - starts[cls]
        u = _uniform_below(counts[cls] - 1, rng)
        partners = order[starts[cls] + np.where(u < rank, u, u + 1)]
        return anchors.astype(np.int64), partners.astype(np.int64)

    def draw_impostor(m):
        anchors = rng.randint(n, size=m)
        cls = y_codes[anchors]
        u = _uniform_below(n - counts[cls], rng)
        partners = order[np.where(u < starts[cls], u, u + counts[cls])]
        return anchors.astype(np.int64), partners.astype(np.int64)

    def all_genuine():
        blocks = []
        for c in np.flatnonzero(counts >= 2):
            rows = order[starts[c]: starts[c] + counts[c]]
            i, j = np.triu_indices(counts[c], 1)
            blocks.append(np.column_stack([rows[i], rows[j]]))
        return np.vstack(blocks).astype(np.int64)

    def all_impostor():
        blocks = []
        for c in range(classes.size - 1):
            rows = order[starts[c]: starts[c] + counts[c]]
            later = order[starts[c] + counts[c]:]
            blocks.append(np.column_stack([np.repeat(rows, later.size),
                                           np.tile(later, rows.size)]))
        return np.vstack(blocks).astype(np.int64)

    n_genuine = n_pairs // 2
    n_impostor = n_pairs - n_genuine
    possible_genuine = int(np.sum(counts * (counts - 1) // 2))
    possible_impostor = int((n * n - np.sum(counts * counts)) // 2)
    genuine = _draw_pairs(draw_genuine, n_genuine, (possible_genuine, all_genuine),
                          n, "genuine", rng)
    impostor = _draw_pairs(draw_impostor, n_impostor, (possible_impostor, all_impostor),
                           n, "impostor", rng)
    pairs = np.vstack([genuine, impostor]).astype(np.int64)
    is_same = np.concatenate([np.ones(n_genuine, bool), np.zeros(n_impostor, bool)])
    shuffle = rng.permutation(n_pairs)
    return pairs[shuffle], is_same[shuffle]


def _check_pairs(pairs, n_samples):
    pairs = np.asarray(pairs)
    if pairs.ndim != 2 or pairs.shape[1] != 2 or pairs.dtype.kind not in "iu":
        raise ValueError(
            "pairs must be an integer array of shape (n_pairs, 2) holding row indices; "
            f"got dtype {pairs.dtype} and shape {pairs.shape}."
        )
    if pairs.size:
        bad = pairs[(pairs < 0) | (pairs >= n_samples)]
        if bad.size:
            raise ValueError(
                f"pairs holds the row index {int(bad[0])}, outside [0, n_samples) with "
                f"n_samples={n_samples} rows in X."
            )
    return pairs.astype(np.int64, copy=False)


def _l2_normalised(X):
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return np.divide(X, norms, out=np.zeros_like(X), where=norms > 0)


def pair_similarity(X, pairs, *, metric="cosine"):
    """Similarity of the two rows of each pair; higher means more alike.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Embeddings (or any features) of the rows.
    pairs : array-like of shape (n_pairs, 2), dtype int
        Row indices into ``X``, e.g. from :func:`make_pairs`.
    metric : {"cosine", "euclidean"}, default="cosine"
        ``"cosine"``: the dot product of the L2-normalised rows (a zero row
        has similarity 0 with everything). ``"euclidean"``: the *negative*
        Euclidean distance, so that higher still means more similar.

    Returns
    -------
    scores : ndarray of shape (n_pairs,), dtype float64
        One score per pair.

    See Also
    --------
    make_pairs : Draw the pairs.
    verification_roc_curve : ROC of the pair decisions from these scores.

    Examples
    --------
    >>> from sklearn_clmle.metrics import pair_similarity
    >>> X = [[1.0, 0.0], [2.0, 0.0], [0.0, 3.0]]
    >>> pair_similarity(X, [[0, 1], [0, 2]])
    array([1., 0.])
    >>> pair_similarity(X, [[0, 1], [0, 2]], metric="euclidean")
    array([-1.        , -3.16227766])
    """
    metric = _check_metric(metric)
    X = check_array(X, dtype=np.float64, input_name="X")
    pairs = _check_pairs(pairs, X.shape[0])
    if metric == "cosine":
        X = _l2_normalised(X)
    scores = np.empty(pairs.shape[0], dtype=np.float64)
    for start in range(0, pairs.shape[0], 8 * _CHUNK):
        chunk = pairs[start: start + 8 * _CHUNK]
        a, b = X[chunk[:, 0]], X[chunk[:, 1]]
        if metric == "cosine":
            scores[start: start + len(chunk)] = np.einsum("ij,ij->i", a, b)
        else:
            scores[start: start + len(chunk)] = -np.sqrt(np.einsum("ij,ij->i", a - b, a - b))
    return scores


# -- verification ----------------------------------------------------------------------


def _check_verification(is_same, scores):
    """``is_same`` as bool with both values present, ``scores`` as finite float64."""
    is_same = column_or_1d(check_array(is_same, ensure_2d=False, dtype=None,
                                       input_name="is_same"))
    scores = column_or_1d(check_array(scores, ensure_2d=False, dtype=np.float64,
                                      input_name="scores"))
    check_consistent_length(is_same, scores)
    values = np.unique(is_same)
    if is_same.dtype.kind not in "biuf" or not np.all(np.isin(values, [0, 1])):
        raise ValueError(
            "is_same must hold booleans (or 0/1): True for genuine pairs, False for "
            f"impostor pairs; got the values {values[:5].tolist()}."
        )
    is_same = is_same.astype(bool)
    if values.size < 2:
        only = "genuine (True)" if is_same[0] else "impostor (False)"
        raise ValueError(
            f"is_same holds only {only} pairs; verification needs both genuine and "
            "impostor pairs (make_pairs draws both)."
        )
    return is_same, scores


def verification_roc_curve(is_same, scores):
    """ROC of the pair decisions "same identity if score >= threshold".

    scikit-learn's :func:`~sklearn.metrics.roc_curve` with
    ``drop_intermediate=False``, named for verification.

    Parameters
    ----------
    is_same : array-like of shape (n_pairs,)
        True (or 1) for genuine pairs, False (or 0) for impostor pairs.
    scores : array-like of shape (n_pairs,)
        Similarity of each pair, e.g. from :func:`pair_similarity`.

    Returns
    -------
    far : ndarray of shape (n_thresholds,)
        False accept rate: share of impostor pairs with score >= threshold.
    tar : ndarray of shape (n_thresholds,)
        True accept rate: share of genuine pairs with score >= threshold.
    thresholds : ndarray of shape (n_thresholds,)
        Decreasing thresholds: every distinct score, preceded by ``inf``
        (nothing accepted).

    See Also
    --------
    true_accept_rate : The TAR at chosen false accept rates.

    Examples
    --------
    >>> from sklearn_clmle.metrics import verification_roc_curve
    >>> far, tar, thresholds = verification_roc_curve(
    ...     [True, True, False, False], [0.9, 0.4, 0.5, 0.1])
    >>> far
    array([0. , 0. , 0.5, 0.5, 1. ])
    >>> tar
    array([0. , 0.5, 0.5, 1. , 1. ])
    """
    is_same, scores = _check_verification(is_same, scores)
    return roc_curve(is_same, scores, drop_intermediate=False)


def true_accept_rate(is_same, scores, far=(1e-1, 1e-2, 1e-3)):
    """True accept rate (TAR) at given false accept rates (FAR).

    For each requested ``far`` the threshold ``t`` is the smallest one whose
    false accept rate (share of impostor pairs with ``score >= t``) is at
    most ``far``; the result is the share of genuine pairs with
    ``score >= t``. This is the largest TAR of any threshold with
    FAR <= ``far`` (ties: a threshold accepts every score equal to it, so
    tied impostors are accepted together).

    Parameters
    ----------
    is_same : array-like of shape (n_pairs,)
        True (or 1) for genuine pairs, False (or 0) for impostor pairs.
    scores : array-like of shape (n_pairs,)
        Similarity of each pair, e.g. from :func:`pair_similarity`.
    far : float or array-like of float, default=(1e-1, 1e-2, 1e-3)
        False accept rates, each in the open interval (0, 1).

    Returns
    -------
    tar : float or ndarray of shape (n_far,)
        The TAR at each requested FAR; a float when ``far`` is a scalar.

    Warns
    -----
    UserWarning
        When a requested FAR is below ``1 / n_impostor``: with that few
        impostor pairs it cannot be measured, and the TAR at FAR 0 (no
        impostor accepted) is returned for it.

    See Also
    --------
    verification_roc_curve : The whole trade-off.

    Examples
    --------
    >>> from sklearn_clmle.metrics import true_accept_rate
    >>> is_same = [True, True, True, True, False, False, False, False]
    >>> scores = [0.9, 0.8, 0.6, 0.3, 0.7, 0.5, 0.2, 0.1]
    >>> true_accept_rate(is_same, scores, far=[0.25, 0.5])
    array([0.75, 1.  ])
    >>> true_accept_rate(is_same, scores, far=0.25)
    0.75
    """
    is_same, scores = _check_verification(is_same, scores)
    try:
        far_array = np.asarray(far, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"far must be a float or a list of floats; got {far!r}.") from exc
    scalar = far_array.ndim == 0
    far_array = np.atleast_1d(far_array)
    if far_array.ndim != 1 or far_array.size == 0:
        raise ValueError(f"far must be a float or a non-empty 1-D list of floats; got {far!r}.")
    outside = far_array[~((far_array > 0) & (far_array < 1))]
    if outside.size:
        raise ValueError(
            f"far must lie in the open interval (0, 1); got {outside[0]!r}. A FAR of 0 "
            "or 1 is not a trade-off: use verification_roc_curve for the whole curve."
        )
    impostor = np.sort(scores[~is_same])[::-1]
    genuine = np.sort(scores[is_same])
    n_impostor = impostor.size
    # Most impostors that may be accepted: the largest k with k / n <= far
    # (computed as the ROC computes its rates, so both agree exactly).
    k = np.floor(far_array * n_impostor).astype(np.int64)
    k = np.where((k + 1) / n_impostor <= far_array, k + 1, k)
    k = np.where(k / n_impostor > far_array, k - 1, k)
    k = np.clip(k, 0, n_impostor - 1)
    too_small = far_array[far_array < 1 / n_impostor]
    if too_small.size:
        warnings.warn(
            f"far={too_small.tolist()} is below 1/n_impostor: there are only "
            f"{n_impostor} impostor pairs, so the smallest measurable FAR is "
            f"{1 / n_impostor:.3g}; the TAR at FAR 0 (no impostor accepted) is "
            "returned. Draw more pairs to measure it.",
            UserWarning,
            stacklevel=2,
        )
    # Accept the genuine scores strictly above the (k+1)-th largest impostor.
    accepted = genuine.size - np.searchsorted(genuine, impostor[k], side="right")
    tar = accepted / genuine.size
    return float(tar[0]) if scalar else tar


def _best_threshold(scores, is_same):
    """Threshold maximising the accuracy of ``score >= t`` (lowest one on ties)."""
    unique = np.unique(scores)
    candidates = np.concatenate([[-np.inf], (unique[:-1] + unique[1:]) / 2, [np.inf]])
    genuine = np.sort(scores[is_same])
    impostor = np.sort(scores[~is_same])
    correct = (genuine.size - np.searchsorted(genuine, candidates, side="left")
               + np.searchsorted(impostor, candidates, side="left"))
    return candidates[np.argmax(correct)]


def verification_accuracy(is_same, scores, *, n_folds=10, random_state=None):
    """Cross-validated accuracy of the best threshold (the LFW protocol).

    The pairs are split into ``n_folds`` folds (stratified by ``is_same``,
    shuffled). For each fold, the threshold that maximises the accuracy of
    "same identity if score >= threshold" on the other folds is applied to
    it. The candidate thresholds are the midpoints between consecutive
    distinct scores of the other folds, plus one below all of them (accept
    every pair) and one above (reject every pair); of several equally good
    thresholds the lowest is used.

    Parameters
    ----------
    is_same : array-like of shape (n_pairs,)
        True (or 1) for genuine pairs, False (or 0) for impostor pairs; at
        least ``n_folds`` of each.
    scores : array-like of shape (n_pairs,)
        Similarity of each pair, e.g. from :func:`pair_similarity`.
    n_folds : int, default=10
        Number of folds, at least 2 (LFW uses 10).
    random_state : int, RandomState instance or None, default=None
        Seed of the fold shuffling.

    Returns
    -------
    mean : float
        Mean of the test-fold accuracies.
    std : float
        Their standard deviation (``ddof=0``, as reported for LFW). Nothing
        else is returned: the thresholds are not, as each fold has its own.

    See Also
    --------
    true_accept_rate : A threshold-free alternative at fixed FAR.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_clmle.metrics import verification_accuracy
    >>> is_same = np.repeat([True, False], 10)
    >>> scores = np.where(is_same, 0.8, 0.2)
    >>> verification_accuracy(is_same, scores, n_folds=5, random_state=0)
    (1.0, 0.0)
    """
    is_same, scores = _check_verification(is_same, scores)
    n_folds = _check_int(n_folds, "n_folds", 2)
    fewest = min(int(is_same.sum()), int((~is_same).sum()))
    if fewest < n_folds:
        raise ValueError(
            f"verification_accuracy with n_folds={n_folds} needs at least {n_folds} "
            f"genuine and {n_folds} impostor pairs; got {int(is_same.sum())} genuine "
            f"and {int((~is_same).sum())} impostor. Lower n_folds or draw more pairs."
        )
    folds = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=random_state)
    accuracies = []
    for train, test in folds.split(scores, is_same):
        threshold = _best_threshold(scores[train], is_same[train])
        accuracies.append(np.mean((scores[test] >= threshold) == is_same[test]))
    return float(np.mean(accuracies)), float(np.std(accuracies))


# -- identification ---------------------------------------------------------------------


def rank1_identification(gallery, gallery_labels, probes, probe_labels, *, metric="cosine"):
    """Share of probes whose most similar gallery row has the probe's label.

    The rank-1 identification rate (MegaFace's identification protocol,
    with the gallery's distractors simply part of ``gallery``). Probes are
    compared with the gallery 1024 at a time, so memory stays bounded by
    ``1024 * n_gallery`` similarities.

    Parameters
    ----------
    gallery : array-like of shape (n_gallery, n_features)
        Embeddings of the enrolled rows.
    gallery_labels : array-like of shape (n_gallery,)
        Their identities.
    probes : array-like of shape (n_probes, n_features)
        Embeddings to identify.
    probe_labels : array-like of shape (n_probes,)
        Their true identities; a probe whose identity is not in the gallery
        counts as a miss.
    metric : {"cosine", "euclidean"}, default="cosine"
        Similarity: cosine of the rows, or the negative Euclidean distance
        (as in :func:`pair_similarity`). Of equally similar gallery rows the
        first one counts.

    Returns
    -------
    rate : float
        The rank-1 identification rate, in [0, 1].

    See Also
    --------
    pair_similarity : The same similarities, for pairs.

    Examples
    --------
    >>> from sklearn_clmle.metrics import rank1_identification
    >>> gallery = [[1.0, 0.0], [0.0, 1.0]]
    >>> probes = [[0.9, 0.1], [0.2, 0.8], [0.7, 0.3]]
    >>> rank1_identification(gallery, ["a", "b"], probes, ["a", "b", "b"])
    0.666...
    """
    metric = _check_metric(metric)
    gallery = check_array(gallery, dtype=np.float64, ensure_min_samples=0,
                          input_name="gallery")
    probes = check_array(probes, dtype=np.float64, ensure_min_samples=0, input_name="probes")
    gallery_labels = column_or_1d(check_array(gallery_labels, ensure_2d=False, dtype=None,
                                              ensure_min_samples=0,
                                              input_name="gallery_labels"))
    probe_labels = column_or_1d(check_array(probe_labels, ensure_2d=False, dtype=None,
                                            ensure_min_samples=0, input_name="probe_labels"))
    if gallery.shape[0] == 0:
        raise ValueError("gallery is empty; rank-1 identification needs at least one "
                         "gallery row.")
    if probes.shape[0] == 0:
        raise ValueError("probes is empty; rank-1 identification needs at least one probe.")
    for rows, labels, name in ((gallery, gallery_labels, "gallery"),
                               (probes, probe_labels, "probes")):
        if rows.shape[0] != labels.shape[0]:
            raise ValueError(
                f"{name} has {rows.shape[0]} rows but {name.rstrip('s')}_labels has "
                f"{labels.shape[0]} labels; expected one label per row."
            )
    if gallery.shape[1] != probes.shape[1]:
        raise ValueError(
            f"gallery has {gallery.shape[1]} features and probes {probes.shape[1]}; "
            "both must be embeddings of the same width."
        )
    if metric == "cosine":
        gallery, probes = _l2_normalised(gallery), _l2_normalised(probes)
    else:
        gallery_sq = np.einsum("ij,ij->i", gallery, gallery)
    hits = 0
    for start in range(0, probes.shape[0], _CHUNK):
        chunk = probes[start: start + _CHUNK]
        similarity = chunk @ gallery.T
        if metric == "euclidean":
            # -||p - g||^2 up to the per-probe constant ||p||^2.
            similarity = 2 * similarity - gallery_sq
        best = np.argmax(similarity, axis=1)
        hits += int(np.sum(gallery_labels[best] == probe_labels[start: start + _CHUNK]))
    return hits / probes.shape[0]


# -- multi-label ------------------------------------------------------------------------------


def _check_indicators(y_true, y_pred, owner):
    arrays = []
    for y, name in ((y_true, "y_true"), (y_pred, "y_pred")):
        y = check_array(y, accept_sparse=["csr", "csc", "coo"], ensure_2d=False,
                        dtype="numeric", input_name=name)
        arrays.append(y.toarray() if sp.issparse(y) else y)
    y_true, y_pred = arrays
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"y_true and y_pred must have the same shape; got {y_true.shape} and "
            f"{y_pred.shape}."
        )
    if y_true.ndim != 2:
        raise ValueError(
            f"{owner} needs binary indicator matrices of shape (n_samples, n_labels); "
            f"got {y_true.ndim}-D arrays. Reshape a single binary label with "
            "y.reshape(-1, 1)."
        )
    for y, name in ((y_true, "y_true"), (y_pred, "y_pred")):
        values = np.unique(y)
        if not np.all(np.isin(values, [0, 1])):
            raise ValueError(
                f"{name} must be a binary indicator matrix (values 0 and 1 only); got "
                f"the values {values[:5].tolist()}."
            )
    y_true, y_pred = y_true.astype(bool), y_pred.astype(bool)
    positives = y_true.sum(axis=0)
    for j in np.flatnonzero((positives == 0) | (positives == y_true.shape[0])):
        only, rate = ("0s", "TPR") if positives[j] == 0 else ("1s", "TNR")
        raise ValueError(
            f"column {j} of y_true holds only {only}, so its {rate} (and balanced "
            f"accuracy) is undefined; drop the column, e.g. keep the columns where "
            "y_true.min(axis=0) != y_true.max(axis=0)."
        )
    return y_true, y_pred


def per_label_rates(y_true, y_pred):
    """True positive rate, true negative rate and balanced accuracy per label.

    Parameters
    ----------
    y_true : array-like or sparse matrix of shape (n_samples, n_labels)
        True binary indicators (0/1); every column must hold both values.
    y_pred : array-like or sparse matrix of shape (n_samples, n_labels)
        Predicted binary indicators.

    Returns
    -------
    rates : dict of str to ndarray of shape (n_labels,)
        ``"tpr"`` (recall of the positives), ``"tnr"`` (recall of the
        negatives), ``"balanced_accuracy"`` (``(tpr + tnr) / 2``) and
        ``"positive_rate"`` (share of positives in ``y_true``).

    See Also
    --------
    mean_balanced_accuracy : The mean of ``rates["balanced_accuracy"]``.

    Examples
    --------
    >>> from sklearn_clmle.metrics import per_label_rates
    >>> y_true = [[1, 0], [1, 1], [0, 0], [0, 0]]
    >>> y_pred = [[1, 0], [0, 1], [0, 1], [0, 0]]
    >>> rates = per_label_rates(y_true, y_pred)
    >>> rates["tpr"], rates["tnr"]
    (array([0.5, 1. ]), array([1.        , 0.66666667]))
    >>> rates["balanced_accuracy"], rates["positive_rate"]
    (array([0.75      , 0.83333333]), array([0.5 , 0.25]))
    """
    y_true, y_pred = _check_indicators(y_true, y_pred, "per_label_rates")
    positives = y_true.sum(axis=0)
    negatives = y_true.shape[0] - positives
    tpr = (y_true & y_pred).sum(axis=0) / positives
    tnr = (~y_true & ~y_pred).sum(axis=0) / negatives
    return {
        "tpr": tpr,
        "tnr": tnr,
        "balanced_accuracy": (tpr + tnr) / 2,
        "positive_rate": positives / y_true.shape[0],
    }


def mean_balanced_accuracy(y_true, y_pred):
    """Mean over labels of each label's balanced accuracy ``(TPR + TNR) / 2``.

    The attribute-prediction metric of the CLMLE paper (CelebA): every
    attribute counts the same however rare it is, and within an attribute
    the positives count as much as the negatives.

    Parameters
    ----------
    y_true : array-like or sparse matrix of shape (n_samples, n_labels) or (n_samples,)
        True binary indicators (0/1, every column holding both values); or
        1-D binary or multiclass labels, for which the result is
        :func:`sklearn.metrics.balanced_accuracy_score`.
    y_pred : array-like or sparse matrix of the same shape as ``y_true``
        Predictions.

    Returns
    -------
    score : float
        The mean balanced accuracy, in [0, 1].

    See Also
    --------
    per_label_rates : The rates of each label.

    Notes
    -----
    ``mean_balanced_accuracy_scorer`` in this module is
    ``make_scorer(mean_balanced_accuracy)``, for the ``scoring`` parameter
    of :class:`~sklearn.model_selection.GridSearchCV` and
    :func:`~sklearn.model_selection.cross_validate`.

    Examples
    --------
    >>> from sklearn_clmle.metrics import mean_balanced_accuracy
    >>> y_true = [[1, 0], [1, 1], [0, 0], [0, 0]]
    >>> y_pred = [[1, 0], [0, 1], [0, 1], [0, 0]]
    >>> round(mean_balanced_accuracy(y_true, y_pred), 4)
    0.7917
    >>> mean_balanced_accuracy([0, 1, 2, 2], [0, 1, 2, 1])
    0.8333...
    """
    if np.ndim(y_true) == 1 and np.ndim(y_pred) == 1 and not sp.issparse(y_true):
        return float(balanced_accuracy_score(y_true, y_pred))
    rates = per_label_rates(y_true, y_pred)
    return float(np.mean(rates["balanced_accuracy"]))


mean_balanced_accuracy_scorer = make_scorer(mean_balanced_accuracy)
"""Scorer of :func:`mean_balanced_accuracy` for ``GridSearchCV(scoring=...)``."""
