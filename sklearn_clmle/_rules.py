"""Decision rules over retrieved clusters: CLMLE Eq. 10 and LMLE Eq. 3.

Input for each query: the similarities ``s`` (inner products on the unit
sphere) of its N retrieved centroids and their classes. Output: one score per
class, computed without per-query Python loops.

- ``"clmle"`` (CLMLE paper, Eq. 10, in log form):
  ``score_c = scale * min_{m: c(m)=c} s_m - log sum_{k: c(k)!=c} exp(scale * s_k)``.
- ``"lmle"`` (LMLE paper, Eq. 3, with D the squared Euclidean distance):
  ``score_c = min_{k: c(k)!=c} D_k - max_{m: c(m)=c} D_m
  = 2 * (min_{m: c(m)=c} s_m - max_{k: c(k)!=c} s_k)`` on the unit sphere.
  It is the ``scale -> infinity`` limit of Eq. 10 (up to the factor).

When no other class is among the N (the "all neighbours of one class" case),
the competitor is taken to sit at the antipode (similarity -1). A class with no
retrieved cluster gets ``absent_score(rule, scale, N)``, strictly below any
score a retrieved class can reach.
"""

import numpy as np


def absent_score(rule, scale, n_neighbors):
    """Score of a class with no retrieved cluster: below every attainable score."""
    if rule == "lmle":
        return -5.0  # attainable scores lie in [-4, 4]
    # scale * min s >= -scale and the log-sum-exp <= scale + log N.
    return -2.0 * scale - np.log(n_neighbors) - 1.0


def _segments(sim, cls, n_classes):
    """Group each row's neighbours by class.

    Returns the flat segment layout: ``seg_row``/``seg_cls`` per segment,
    ``starts`` into the flat (row, class)-sorted arrays, and the flat arrays.
    """
    n, k = sim.shape
    order = np.argsort(cls, axis=1, kind="stable")
    cls_s = np.take_along_axis(cls, order, axis=1)
    sim_s = np.take_along_axis(sim, order, axis=1)
    key = (np.arange(n)[:, None] * n_classes + cls_s).ravel()
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    seg_key = key[starts]
    return seg_key // n_classes, seg_key % n_classes, starts, sim_s.ravel()


def _pad(values, seg_row, n, fill):
    """Put per-segment values in an (n, max segments per row) array."""
    counts = np.bincount(seg_row, minlength=n)
    width = max(1, counts.max(initial=1))
    first = np.r_[0, np.cumsum(counts)[:-1]]
    col = np.arange(seg_row.size) - first[seg_row]
    out = np.full((n, width), fill, dtype=np.float64)
    out[seg_row, col] = values
    return out, col


def _exclusive(padded, op, identity):
    """For each column, ``op`` over all *other* columns of the row."""
    n = padded.shape[0]
    ident = np.full((n, 1), identity)
    prefix = op.accumulate(np.hstack([ident, padded[:, :-1]]), axis=1)
    suffix = op.accumulate(np.hstack([ident, padded[:, :0:-1]]), axis=1)[:, ::-1]
    return op(prefix, suffix)


def class_scores(sim, cls, n_classes, rule="clmle", scale=1.0):
    """Per-class scores of Eq. 10 (``rule="clmle"``) or Eq. 3 (``"lmle"``).

    Parameters
    ----------
    sim : ndarray of shape (n_queries, N)
        Similarities of the retrieved centroids.
    cls : ndarray of shape (n_queries, N)
        Encoded class of each retrieved centroid, in ``[0, n_classes)``.
    n_classes : int
    rule : {"clmle", "lmle"}
    scale : float
        Inverse temperature of Eq. 10 (ignored by ``"lmle"``).

    Returns
    -------
    scores : ndarray of shape (n_queries, n_classes)
        Absent classes hold :func:`absent_score`.
    nearest : ndarray of shape (n_queries, n_classes)
        Largest similarity of each class among the retrieved (-inf when
        absent); used to break ties.
    """
    n, k = sim.shape
    seg_row, seg_cls, starts, flat = _segments(sim, cls, n_classes)
    own_min = np.minimum.reduceat(flat, starts)
    own_max = np.maximum.reduceat(flat, starts)
    if rule == "lmle":
        padded, col = _pad(own_max, seg_row, n, -np.inf)
        other_max = _exclusive(padded, np.maximum, -np.inf)[seg_row, col]
        other_max = np.where(np.isfinite(other_max), other_max, -1.0)
        seg_score = 2.0 * (own_min - other_max)
    else:
        x = scale * flat
        seg_id = np.repeat(np.arange(starts.size), np.diff(np.r_[starts, flat.size]))
        seg_top = np.maximum.reduceat(x, starts)
        seg_lse = seg_top + np.log(np.add.reduceat(np.exp(x - seg_top[seg_id]), starts))
        padded, col = _pad(seg_lse, seg_row, n, -np.inf)
        other_lse = _exclusive(padded, np.logaddexp, -np.inf)[seg_row, col]
        other_lse = np.where(np.isfinite(other_lse), other_lse, -scale)
        seg_score = scale * own_min - other_lse
    scores = np.full((n, n_classes), absent_score(rule, scale, k))
    scores[seg_row, seg_cls] = seg_score
    nearest = np.full((n, n_classes), -np.inf)
    nearest[seg_row, seg_cls] = own_max
    return scores, nearest


def break_ties(scores, nearest, class_counts):
    """Index of the best class per row, ties broken without label bias.

    Among classes with the highest score: the one whose nearest retrieved
    cluster is most similar; then the rarer class in the training data; only
    then the lower class index.
    """
    cand = scores == scores.max(axis=1, keepdims=True)
    for key in (nearest, -np.asarray(class_counts, dtype=np.float64)[None, :]):
        keyed = np.where(cand, key, -np.inf)
        cand &= keyed == keyed.max(axis=1, keepdims=True)
    return np.argmax(cand, axis=1)


def scores_to_proba(scores, present):
    """Softmax of the scores over the retrieved classes; absent classes get 0."""
    z = np.where(present, scores, -np.inf)
    z = z - z.max(axis=1, keepdims=True)
    e = np.where(present, np.exp(z), 0.0)
    return e / e.sum(axis=1, keepdims=True)
