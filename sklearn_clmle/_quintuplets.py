"""Quintuplet lookup table and class-balanced anchor batches (LMLE Sec. 3.1-3.2).

Between rounds, a random half of the training rows (at least one per class)
is drawn, and for every anchor in it the table stores, among that half:

- ``p_plus``: its farthest neighbour in its own cluster (itself when the
  cluster has no other member there, i.e. distance 0);
- ``p_minus``: its nearest neighbour of the same class in another cluster
  (absent when the class has one cluster there);
- ``p_minus2``: its farthest neighbour of the same class (itself when alone);
- ``negative``: its nearest neighbour of another class.

Distances are those of the unit-norm features, ``D = 2 - 2 cos``; they are
computed for blocks of anchors against the whole half, at most
``CHUNK_ELEMENTS`` similarities at a time (the cost is O(n^2 d) per round).
Batches draw the same number of anchors from every class.
"""

import numpy as np

from sklearn_clmle._clustering import CHUNK_ELEMENTS

#: Columns of a quintuplet row.
ANCHOR, P_PLUS, P_MINUS, P_MINUS2, NEGATIVE = range(5)


def stratified_half(y, fraction, rng):
    """Sorted indices of ``ceil(fraction * n_c)`` random rows of every class."""
    picked = []
    for c in np.unique(y):
        members = np.flatnonzero(y == c)
        k = max(1, int(np.ceil(fraction * members.size)))
        picked.append(rng.choice(members, k, replace=False))
    return np.sort(np.concatenate(picked))


def quintuplet_table(features, y, cluster_labels, subset):
    """Quintuplets of every anchor in ``subset`` (global row indices).

    Returns
    -------
    table : ndarray of shape (len(subset), 5), int64
        Columns anchor, p_plus, p_minus, p_minus2, negative (row indices of
        ``features``); an absent ``p_minus`` holds the anchor.
    has_p_minus : ndarray of shape (len(subset),), bool
    """
    F = np.ascontiguousarray(features[subset], dtype=np.float32)
    ys, cs = y[subset], cluster_labels[subset]
    n = subset.size
    table = np.empty((n, 5), dtype=np.int64)
    has_p_minus = np.empty(n, dtype=bool)
    step = max(1, CHUNK_ELEMENTS // max(1, n))
    for start in range(0, n, step):
        rows = np.arange(start, min(start + step, n))
        sim = F[rows] @ F.T  # (chunk, n)
        same_class = ys[rows, None] == ys[None, :]
        same_cluster = cs[rows, None] == cs[None, :]
        not_self = np.ones_like(same_class)
        not_self[np.arange(rows.size), rows] = False
        # Farthest = least similar; nearest = most similar (unit vectors).
        p_plus = _arg(sim, same_cluster & not_self, np.argmin, rows)
        p_minus2 = _arg(sim, same_class & not_self, np.argmin, rows)
        other_cluster = same_class & ~same_cluster
        p_minus = _arg(sim, other_cluster, np.argmax, rows)
        negative = _arg(sim, ~same_class, np.argmax, rows)
        table[rows] = subset[np.stack([rows, p_plus, p_minus, p_minus2, negative], axis=1)]
        has_p_minus[rows] = other_cluster.any(axis=1)
    return table, has_p_minus


def _arg(sim, mask, pick, fallback):
    """``pick`` (argmin/argmax) of ``sim`` over ``mask`` per row; ``fallback`` if empty."""
    fill = np.inf if pick is np.argmin else -np.inf
    out = pick(np.where(mask, sim, fill), axis=1)
    return np.where(mask.any(axis=1), out, fallback)


class QuintupletSampler:
    """A round's quintuplet table and its class-balanced batches.

    Parameters
    ----------
    features : ndarray of shape (n_samples, d)
        Unit-norm features of the training rows (the current embedding).
    y : ndarray of shape (n_samples,)
        Encoded classes.
    cluster_labels : ndarray of shape (n_samples,)
        Cluster of every row.
    subset_fraction : float
        Share of each class's rows the table is computed on (paper: 0.5).
    rng : numpy.random.Generator
    """

    def __init__(self, features, y, cluster_labels, subset_fraction, rng):
        self.rng = rng
        self.subset = subset = stratified_half(y, subset_fraction, rng)
        table, has_p_minus = quintuplet_table(features, y, cluster_labels, subset)
        anchor_class = y[table[:, ANCHOR]]
        order = np.argsort(anchor_class, kind="stable")
        self.table, self.has_p_minus = table[order], has_p_minus[order]
        self.classes, self.starts, self.counts = np.unique(
            anchor_class[order], return_index=True, return_counts=True
        )

    def sample(self, n_anchors):
        """``n_anchors`` quintuplets, the same number per class (up to one).

        Returns rows of the table (shape (n_anchors, 5)) and their
        ``has_p_minus`` flags.
        """
        n_classes = self.classes.size
        extra = self.rng.choice(n_classes, n_anchors % n_classes, replace=False)
        per_class = np.r_[np.repeat(np.arange(n_classes), n_anchors // n_classes), extra]
        which = self.rng.permutation(per_class)
        pos = self.starts[which] + self.rng.integers(0, self.counts[which])
        return self.table[pos], self.has_p_minus[pos]
