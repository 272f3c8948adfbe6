"""Nearest-centroid search on the unit sphere: brute, KD-tree, NN-descent.

Every backend answers the same question: for unit-norm queries, the ``k``
unit-norm centroids with the largest inner product, most similar first. The
similarities returned are always recomputed exactly from the indices found,
so backends differ only in *which* centroids they find.
"""

import numpy as np
import torch
from sklearn.neighbors import KDTree

#: ``algorithm="auto"`` uses brute force up to this many centroids and
#: NN-descent above it. In ``benchmarks/results/search_backends.md`` (64-d,
#: 10,000 queries) brute force was exact and faster than NN-descent's build
#: plus query at every measured size up to 200,000 centroids (5.9 s against
#: 10.7 + 7.7 s there, with NN-descent recall 0.79); the KD-tree was slower than
#: brute force at every size.
AUTO_BRUTE_MAX_CENTROIDS = 200_000
#: Below this many centroids NN-descent falls back to brute force (its graph
#: construction is unreliable on tiny sets).
NNDESCENT_MIN_CENTROIDS = 64
#: NN-descent fetches this many times N candidates with this search epsilon
#: and keeps the N most similar by exact inner product; the recall this gives
#: is in ``benchmarks/results/search_backends.md``.
NNDESCENT_CANDIDATES = 3
#: Brute search switches from numpy's partial sort to ``torch.topk`` from this
#: many centroids: ``benchmarks/results/topk.md`` (blocks of 1,024 queries,
#: 64-d) has them level near 500 centroids and torch clearly ahead from 1,000.
TORCH_TOPK_MIN_CENTROIDS = 1_000
NNDESCENT_EPSILON = 0.2


def _top_k(sim, k):
    """Column indices of the ``k`` largest entries per row, sorted (stable)."""
    if k < sim.shape[1]:
        part = np.argpartition(-sim, k - 1, axis=1)[:, :k]
    else:
        part = np.broadcast_to(np.arange(sim.shape[1]), sim.shape).copy()
    vals = np.take_along_axis(sim, part, axis=1)
    # Most similar first; equal similarities by centroid index.
    order = np.lexsort((part, -vals), axis=1)
    return np.take_along_axis(part, order, axis=1)


def _brute_top_k(q, centers, k):
    """Exact top-k by inner product: one matrix product and ``torch.topk``.

    ``torch.topk`` (multi-threaded) is several times faster than numpy's
    partial sort; rows where equal similarities straddle the k-th place, the
    only case where it may pick another index than ``_top_k``, are redone
    with ``_top_k`` so that ties always go to the lower centroid index.
    """
    s = torch.from_numpy(q) @ torch.from_numpy(centers).T
    extra = int(k < s.shape[1])  # the (k+1)-th value shows a tie at the border
    sim, idx = torch.topk(s, k + extra, dim=1)
    sim, idx, s = sim.numpy(), idx.numpy(), s.numpy()
    straddle = sim[:, k - 1] == sim[:, -1] if extra else np.zeros(len(s), bool)
    sim, idx = sim[:, :k], idx[:, :k]
    order = np.lexsort((idx, -sim), axis=1)
    idx = np.take_along_axis(idx, order, axis=1)
    sim = np.take_along_axis(sim, order, axis=1)
    if straddle.any():
        idx[straddle] = _top_k(s[straddle], k)
        sim[straddle] = np.take_along_axis(s[straddle], idx[straddle], axis=1)
    return sim, idx


class CentroidIndex:
    """Search structure over unit-norm centroids.

    Parameters
    ----------
    centers : ndarray of shape (n_centroids, n_features)
        Unit-norm centroids.
    algorithm : {"brute", "kd_tree", "nndescent", "auto"}
    chunk_size : int
        Queries per block in brute search; memory is
        ``chunk_size * n_centroids`` similarities.
    random_state : int or None
        Seed of NN-descent.
    """

    def __init__(self, centers, algorithm, chunk_size, random_state=None):
        self.centers = np.ascontiguousarray(centers, dtype=np.float32)
        self.chunk_size = chunk_size
        self.random_state = random_state
        n = self.centers.shape[0]
        if algorithm == "auto":
            algorithm = "nndescent" if n > AUTO_BRUTE_MAX_CENTROIDS else "brute"
        if algorithm == "nndescent" and n < NNDESCENT_MIN_CENTROIDS:
            algorithm = "brute"
        self.algorithm = algorithm
        self._index = None

    def _build(self):
        if self.algorithm == "kd_tree":
            return KDTree(self.centers)
        if self.algorithm == "nndescent":
            from pynndescent import NNDescent  # slow import: only when asked

            index = NNDescent(
                self.centers, metric="euclidean", random_state=self.random_state,
                n_neighbors=min(30, self.centers.shape[0] - 1),
            )
            index.prepare()
            return index
        return None

    def query(self, Q, k):
        """The ``k`` most similar centroids of each row of ``Q``.

        Returns
        -------
        sim : ndarray of shape (n_queries, k), float64
            Inner products, most similar first.
        idx : ndarray of shape (n_queries, k)
            Centroid indices.
        """
        Q = np.ascontiguousarray(Q, dtype=np.float32)
        if self._index is None and self.algorithm != "brute":
            self._index = self._build()
        sims, idxs = [], []
        for start in range(0, Q.shape[0], self.chunk_size):
            q = Q[start:start + self.chunk_size]
            if self.algorithm == "brute" and self.centers.shape[0] >= TORCH_TOPK_MIN_CENTROIDS:
                _, idx = _brute_top_k(q, self.centers, k)
            elif self.algorithm == "brute":
                idx = _top_k(q @ self.centers.T, k)
            elif self.algorithm == "kd_tree":
                idx = self._index.query(q, k=k, return_distance=False)
            else:
                wide = min(self.centers.shape[0], NNDESCENT_CANDIDATES * k)
                idx, _ = self._index.query(q, k=wide, epsilon=NNDESCENT_EPSILON)
                idx = _fill_missing(idx, q, self.centers, wide)
            # Similarities of the retrieved, recomputed row by row (einsum, not
            # BLAS): a query's scores never depend on the other queries of its
            # block, so predictions on a subset equal those on the whole.
            sim = np.einsum("nd,nkd->nk", q, self.centers[idx]).astype(np.float64)
            order = np.lexsort((idx, -sim), axis=1)[:, :k]
            sims.append(np.take_along_axis(sim, order, axis=1))
            idxs.append(np.take_along_axis(idx, order, axis=1).astype(np.int64))
        if not sims:
            return np.empty((0, k)), np.empty((0, k), dtype=np.int64)
        return np.concatenate(sims), np.concatenate(idxs)

    def __getstate__(self):
        # Never pickle the search structure: it is rebuilt on first use.
        state = self.__dict__.copy()
        state["_index"] = None
        return state


def _fill_missing(idx, q, centers, k):
    """Replace the -1 entries NN-descent can return by brute-force answers."""
    bad = (idx < 0).any(axis=1)
    if bad.any():
        s = q[bad] @ centers.T
        idx = idx.copy()
        idx[bad] = _top_k(s, k)
    return idx
