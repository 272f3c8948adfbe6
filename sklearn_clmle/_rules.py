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


def _max_of_others(values):
    """For every class (axis 0), the maximum of the *other* classes (exact).

    Arrays here are (n_classes, n_queries): reductions over the classes then
    run along contiguous rows of queries, which is many times faster than
    over a short last axis.
    """
    top = values.max(axis=0)
    is_top = values == top
    second = np.where(is_top, -np.inf, values).max(axis=0)
    unique_top = is_top & (is_top.sum(axis=0) == 1)
    return np.where(unique_top, second, top), top, second, is_top, unique_top


def _lse_of_others(lse):
    """For every class (axis 0), the log-sum-exp of the *other* classes' ``lse``.

    ``lse`` holds ``-inf`` for absent classes; the result is ``-inf`` where no
    other class is present. Each class's sum is shifted by the largest of the
    others, so nothing overflows or underflows whatever the scale: a class
    below the maximum sums ``exp(lse - max)`` over all classes (at least 1)
    less its own term, which loses no precision because what remains holds
    the maximum's ``exp(0) = 1``; a unique maximum sums the others directly,
    shifted by the second largest. Classes with equal ``lse`` get bit-equal
    results (no dependence on label order), so exact ties stay exact.
    """
    _, top, second, is_top, unique_top = _max_of_others(lse)
    with np.errstate(divide="ignore"):
        e = np.exp(lse - top)
        rest = e.sum(axis=0) - e
        below = np.where(is_top, -np.inf, lse) - np.where(second > -np.inf, second, 0.0)
        rest_top = np.exp(below).sum(axis=0)
        return np.where(unique_top, second + np.log(rest_top), top + np.log(rest))


def class_scores(sim, cls, n_classes, rule="clmle", scale=1.0):
    """Per-class scores of Eq. 10 (``rule="clmle"``) or Eq. 3 (``"lmle"``).

    Vectorised over queries and classes: per-class minima, maxima and sums
    of the retrieved go through one flat (class, query) index, the
    competitors' terms through maxima over the classes; no loop over
    queries or classes.

    Parameters
    ----------
    sim : ndarray of shape (n_queries, N)
        Similarities of the retrieved centroids (in any order).
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
    sim = np.asarray(sim, dtype=np.float64)
    n, k = sim.shape
    shape = (n_classes, n)  # class-major; transposed on return
    cell = (np.asarray(cls) * n + np.arange(n)[:, None]).ravel()
    values = sim.ravel()
    nearest = np.full(shape, -np.inf)
    np.maximum.at(nearest.ravel(), cell, values)
    own_min = np.full(shape, np.inf)
    np.minimum.at(own_min.ravel(), cell, values)
    present = nearest > -np.inf
    if rule == "lmle":
        other_max = _max_of_others(nearest)[0]
        other_max = np.where(other_max > -np.inf, other_max, -1.0)
        seg_score = 2.0 * (own_min - other_max)
    else:
        # scale > 0, so scale * (max s) is the maximum of scale * s.
        top = scale * nearest
        terms = np.exp(scale * values - top.ravel()[cell])
        with np.errstate(divide="ignore"):
            lse = top + np.log(np.bincount(cell, terms, n * n_classes).reshape(shape))
        other_lse = _lse_of_others(lse)
        other_lse = np.where(other_lse > -np.inf, other_lse, -scale)
        seg_score = scale * own_min - other_lse
    scores = np.where(present, seg_score, absent_score(rule, scale, k))
    return scores.T, nearest.T


def break_ties(scores, nearest, class_counts):
    """Index of the best class per row, ties broken without label bias.

    Among classes with the highest score: the one whose nearest retrieved
    cluster is most similar; then the rarer class in the training data; only
    then the lower class index.
    """
    best = np.argmax(scores, axis=1)
    top = np.take_along_axis(scores, best[:, None], axis=1)
    tied = np.flatnonzero((scores == top).sum(axis=1) > 1)
    if tied.size:
        cand = scores[tied] == top[tied]
        for key in (nearest[tied], -np.asarray(class_counts, dtype=np.float64)[None, :]):
            keyed = np.where(cand, key, -np.inf)
            cand &= keyed == keyed.max(axis=1, keepdims=True)
        best[tied] = np.argmax(cand, axis=1)
    return best


def scores_to_proba(scores, present):
    """Softmax of the scores over the retrieved classes; absent classes get 0."""
    z = np.where(present, scores, -np.inf)
    z = z - z.max(axis=1, keepdims=True)
    e = np.where(present, np.exp(z), 0.0)
    return e / e.sum(axis=1, keepdims=True)
