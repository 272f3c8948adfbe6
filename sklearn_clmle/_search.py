"""Nearest-centroid search on the unit sphere: brute, KD-tree, NN-descent.

Every backend answers the same question: for unit-norm queries, the ``k``
unit-norm centroids with the largest inner product, most similar first. The
similarities returned are always recomputed exactly from the indices found,
so backends differ only in *which* centroids they find.
"""

import numpy as np
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
NNDESCENT_EPSILON = 0.2
#: Brute search takes as candidates every centroid whose similarity reaches
#: a per-query threshold: the ``k + EXTRA_CANDIDATES``-th largest of the
#: maxima of about ``GROUP_WIDTH`` groups of centroids (groups of centroids
#: ``j, j + w, j + 2w, ...``). At least ``k + EXTRA_CANDIDATES`` centroids
#: reach it, and on clustered data few more do.
GROUP_WIDTH = 64
#: Candidates re-scored exactly per query beyond the N asked for, so that the
#: N-th exact similarity clears every centroid left out (see ``_select``)
#: and the exhaustive fallback is rare.
EXTRA_CANDIDATES = 2
#: Queries per block of brute search: as many as keep the block's
#: similarities near this many bytes (in cache), a power of two in
#: ``[BRUTE_MIN_ROWS, BRUTE_MAX_ROWS]``.
BRUTE_BLOCK_BYTES = 1 << 20
BRUTE_MIN_ROWS = 256
BRUTE_MAX_ROWS = 1024
#: Queries whose candidates are gathered at once for exact re-scoring (a
#: buffer of ``EXACT_ROWS * (k + EXTRA_CANDIDATES) * n_features`` floats).
EXACT_ROWS = 128
#: Similarity given to the padding centroids: below every real one.
_PAD = np.float32(-2.0)
_U32, _U64 = np.uint32, np.uint64
_SIGN = _U32(0x7FFFFFFF)


def _order_bits(bits):
    """Map uint32 float bits to keys that sort the floats from the largest down.

    Non-negative floats get ``0x7FFFFFFF - bits``, negative ones keep their
    bits (branch-free: the mask is ``0x7FFFFFFF`` where the sign bit is 0).
    The map is its own inverse; it is exact for every non-NaN float except
    ``-0.0``, which callers turn into ``0.0`` first.
    """
    return bits ^ (((bits >> _U32(31)) - _U32(1)) & _SIGN)


def _descending_key(sim):
    """uint32 keys that sort float32 similarities from the largest down."""
    return _order_bits((sim + np.float32(0.0)).view(_U32))  # -0.0 becomes 0.0


def _exact(q, centers, idx):
    """Inner products of each query with its rows of ``centers[idx]``.

    Computed row by row (einsum, not BLAS): a query's similarities never
    depend on the other queries of its block, so predictions on a subset
    equal those on the whole.
    """
    return np.einsum("nd,nkd->nk", q, np.take(centers, idx, axis=0))


def _exact_order(sim, idx, k):
    """The ``k`` best of each row: most similar first, then lower index."""
    key = (_descending_key(sim).astype(_U64) << _U64(32)) | idx.astype(_U64)
    key.sort(axis=1)
    key = key[:, :k]
    sim = _order_bits((key >> _U64(32)).astype(_U32)).view(np.float32)
    return sim.astype(np.float64), (key & _U64(0xFFFFFFFF)).astype(np.int64)


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


class _BrutePlan:
    """What brute search precomputes once per index and number of candidates.

    ``weights`` are the centroids padded with zero rows to ``groups * width``
    rows, so that the similarities of a block, ``weights @ q.T``, reshape
    into ``groups`` slabs of ``width`` rows whose element-wise maximum is
    the maximum of each group of centroids ``j, j + width, ...``.
    """

    def __init__(self, centers, kk):
        n, d = centers.shape
        self.n, self.kk = n, kk
        self.groups = max(1, -(-n // max(GROUP_WIDTH, 2 * kk)))
        self.width = -(-n // self.groups)
        n_pad = self.groups * self.width
        self.weights = np.zeros((n_pad, d), dtype=np.float32)
        self.weights[:n] = centers
        rows = BRUTE_BLOCK_BYTES // (4 * n_pad)
        rows = 1 << max(0, int(rows).bit_length() - 1)  # a power of two
        self.block = int(np.clip(rows, BRUTE_MIN_ROWS, BRUTE_MAX_ROWS))
        # Candidate keys pack (query, similarity, centroid) into 64 bits:
        # 32 bits of similarity, the rest for the query and centroid numbers;
        # ``batch`` is the most queries whose keys are sorted together.
        self.index_bits = int(n_pad).bit_length()
        self.batch = 1 << (32 - self.index_bits)
        self.block = min(self.block, self.batch)
        # |BLAS dot - einsum dot| <= 2 gamma_d for unit-norm float32 rows
        # (gamma_d ~ d * 2**-24, any summation order, FMA or not); twice
        # that, for the rounding of the norms.
        self.tolerance = 4.0 * d * 2.0 ** -24


def _flatnonzero(mask, words):
    """``np.flatnonzero`` of a sparse C-contiguous boolean array.

    The mask is read as 64-bit words first (``words`` is a boolean buffer of
    at least ``mask.size / 8``): only the few non-zero words are expanded,
    which is about twice as fast as numpy's element-wise scan when under a
    few percent of the entries are set.
    """
    if mask.size % 8:
        return np.flatnonzero(mask)
    w = mask.reshape(-1).view(_U64)
    hit = np.flatnonzero(np.not_equal(w, _U64(0), out=words[:w.size]))
    pos = np.flatnonzero(np.take(w, hit).view(bool))
    return (hit[pos >> 3] << 3) | (pos & 7)


def _candidate_keys(q, plan, work):
    """Candidate keys of the queries ``q``, searched in sub-blocks.

    For each sub-block of ``plan.block`` queries, one BLAS product gives the
    similarities ``S`` (centroids by queries, in cache); the maxima of the
    groups of centroids give each query a threshold that at least
    ``plan.kk`` centroids reach, and those centroids are the candidates.
    Each is then a uint64 key: query number, its BLAS similarity (largest
    first) and the centroid number, so that one sort orders them by query,
    then similarity, then centroid. The keys are made once for all
    sub-blocks: numpy calls on a few thousand elements cost more in thread
    hand-overs than in work. ``work`` holds the calling thread's buffers.
    """
    kk, B = plan.kk, min(plan.block, len(q))
    n_pad = plan.weights.shape[0]
    # Buffers of one full sub-block, reused: fresh arrays of a few MB cost
    # page faults on every block (and, freed, stall the other threads).
    buffers = work.get("candidates")
    if buffers is None or buffers[0].size < n_pad * B:
        buffers = work["candidates"] = (np.empty(n_pad * B, dtype=np.float32),
                                        np.empty(n_pad * B, dtype=bool),
                                        np.empty(n_pad * B // 8 + 1, dtype=bool))
    S_buf, mask_buf, words = buffers
    found = []  # (flat index in the sub-block, BLAS similarity, start, rows)
    for start in range(0, len(q), B):
        qs = q[start:start + B]
        nb = len(qs)
        S = S_buf[:n_pad * nb].reshape(n_pad, nb)
        np.matmul(plan.weights, qs.T, out=S)
        S[plan.n:] = _PAD
        if plan.groups > 1:
            top = S.reshape(plan.groups, -1).max(axis=0).reshape(plan.width, nb)
        else:
            top = S
        top = np.ascontiguousarray(top.T)  # rows of queries: a fast partition
        threshold = np.partition(top, top.shape[1] - kk, axis=1)[:, top.shape[1] - kk].copy()
        mask = np.greater_equal(S, threshold, out=mask_buf[:n_pad * nb].reshape(n_pad, nb))
        flat = _flatnonzero(mask, words)  # centroid * nb + query
        found.append((flat, S.reshape(-1)[flat], start, nb))
    full = [f for f in found if f[3] == B]
    keys = []
    if full:
        flat = np.concatenate([f for f, _, _, _ in full]) if len(full) > 1 else full[0][0]
        col, row = _divmod(flat, B)
        if len(full) > 1:
            row += np.repeat([s for _, _, s, _ in full], [f.size for f, _, _, _ in full])
        sim = np.concatenate([v for _, v, _, _ in full]) if len(full) > 1 else full[0][1]
        keys.append(_pack(plan, row, sim, col))
    for flat, sim, start, nb in found[len(full):]:  # the short last sub-block
        col, row = _divmod(flat, nb)
        keys.append(_pack(plan, row + start, sim, col))
    return np.concatenate(keys) if len(keys) > 1 else keys[0]


def _divmod(a, b):
    """``np.divmod`` of non-negative integers by a positive scalar, a few
    times faster: shifts for a power of two, else ``floor_divide`` (which
    numpy does with a precomputed multiplier, unlike ``divmod``)."""
    if b & (b - 1) == 0:
        shift = b.bit_length() - 1
        return a >> shift, a & (b - 1)
    quotient = a // b
    return quotient, a - quotient * b


def _pack(plan, row, sim, col):
    """uint64 keys (query ``row``, similarity largest first, centroid ``col``)."""
    bits = _U64(plan.index_bits)
    return ((row.astype(_U64) << (bits + _U64(32)))
            | (_descending_key(sim).astype(_U64) << bits) | col.astype(_U64))


def _exact_blocked(q, centers, cand, work):
    """:func:`_exact` of ``cand``, gathered ``EXACT_ROWS`` queries at a time
    into a reused buffer that stays in cache."""
    n, kk = cand.shape
    shape = (EXACT_ROWS, kk, centers.shape[1])
    gathered = work.get(shape)
    if gathered is None:
        gathered = work[shape] = np.empty(shape, dtype=np.float32)
    out = np.empty((n, kk), dtype=np.float32)
    for start in range(0, n, EXACT_ROWS):
        idx = cand[start:start + EXACT_ROWS]
        g = gathered[:len(idx)]
        np.take(centers, idx, axis=0, out=g, mode="clip")  # indices are valid
        np.einsum("nd,nkd->nk", q[start:start + len(idx)], g, out=out[start:start + len(idx)])
    return out


def _select(q, centers, plan, k, keys, work):
    """Exact top ``k`` of the queries ``q`` from their candidate ``keys``.

    The first ``plan.kk`` candidates of each query in BLAS order are
    re-scored exactly and ordered again. BLAS and exact similarities differ
    by at most ``plan.tolerance``, so a row is right when its ``k``-th exact
    similarity beats the ``plan.kk``-th BLAS one (which bounds every
    centroid left out) by more than that; the rare others are redone
    exactly over every centroid. The result is that of exact scoring of
    every centroid. Returns ``(sim, idx)`` of shape ``(len(q), k)``.
    """
    nb, kk, bits = len(q), plan.kk, _U64(plan.index_bits)
    keys.sort()
    # Where each query's keys start (it has at least kk of them).
    first = np.searchsorted(keys, np.arange(nb, dtype=_U64) << (bits + _U64(32)))
    best = keys[first[:, None] + np.arange(kk)]
    cand = (best & _U64((1 << plan.index_bits) - 1)).astype(np.intp)
    if kk < plan.n:
        bound = _order_bits(((best[:, -1] >> bits) & _U64(0xFFFFFFFF)).astype(_U32))
        bound = bound.view(np.float32)
    else:  # every centroid is a candidate
        bound = np.full(nb, -np.inf, dtype=np.float32)
    exact = _exact_blocked(q, centers, cand, work)
    sim, idx = exact[:, :k].astype(np.float64), cand[:, :k].astype(np.int64)
    # The candidates are in BLAS order; the exact similarities keep it but
    # where BLAS rounding swapped near-equal neighbours: those rows only
    # are ordered again.
    step = np.diff(exact, axis=1)
    out_of_order = (step > 0) | ((step == 0) & (np.diff(cand, axis=1) < 0))
    swapped = np.unique(np.flatnonzero(out_of_order) // (kk - 1)) if kk > 1 else []
    if len(swapped):
        sim[swapped], idx[swapped] = _exact_order(exact[swapped], cand[swapped], k)
    for r in np.flatnonzero(sim[:, -1] <= bound + plan.tolerance):
        sim[r], idx[r] = _exhaustive(q[r:r + 1], centers, k)
    return sim, idx


def _exhaustive(q, centers, k):
    """Exact top ``k`` over every centroid (same arithmetic as ``_exact``)."""
    idx = np.broadcast_to(np.arange(centers.shape[0]), (len(q), centers.shape[0]))
    return _exact_order(_exact(q, centers, idx), idx, k)


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

    def plan(self, k):
        """The brute-force plan for ``k`` neighbours (built once; None for the
        other backends, whose search structure it builds)."""
        if self._index is None:
            self._index = {} if self.algorithm == "brute" else self._build()
        if self.algorithm != "brute":
            return None
        kk = min(k + EXTRA_CANDIDATES, self.centers.shape[0])
        if kk not in self._index:
            self._index[kk] = _BrutePlan(self.centers, kk)
        return self._index[kk]

    def query(self, Q, k, work=None):
        """The ``k`` most similar centroids of each row of ``Q``.

        Parameters
        ----------
        Q : ndarray of shape (n_queries, n_features)
            Unit-norm queries.
        k : int
            In ``[1, n_centroids]``.
        work : dict, default=None
            Scratch buffers for brute search, reused across the calls of one
            thread; a fresh one when None.

        Returns
        -------
        sim : ndarray of shape (n_queries, k), float64
            Inner products, most similar first (equal ones by lower index).
        idx : ndarray of shape (n_queries, k), int64
            Centroid indices.
        """
        Q = np.ascontiguousarray(Q, dtype=np.float32)
        plan = self.plan(k)
        work = {} if work is None else work
        step = self.chunk_size if plan is None else min(self.chunk_size, plan.batch)
        sims, idxs = [], []
        for start in range(0, Q.shape[0], step):
            q = Q[start:start + step]
            if plan is not None:
                keys = _candidate_keys(q, plan, work)
                sim, idx = _select(q, self.centers, plan, k, keys, work)
            else:
                if self.algorithm == "kd_tree":
                    idx = self._index.query(q, k=k, return_distance=False)
                else:
                    wide = min(self.centers.shape[0], NNDESCENT_CANDIDATES * k)
                    idx, _ = self._index.query(q, k=wide, epsilon=NNDESCENT_EPSILON)
                    idx = _fill_missing(idx, q, self.centers, wide)
                sim, idx = _exact_order(_exact(q, self.centers, idx), idx, k)
            sims.append(sim)
            idxs.append(idx)
        if len(sims) == 1:
            return sims[0], idxs[0]
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
