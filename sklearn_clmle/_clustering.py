"""Equal-size spherical k-means, per class (CLMLE paper, Eqs. 6-7).

The CLMLE paper clusters every class c of L_c samples into
K_c = floor(L_c / l) clusters of the same size l on the unit sphere. Plain
spherical k-means gives very unequal clusters, so the assignment step here is
capacity constrained: cluster k may take at most ``capacity[k]`` points, with
the capacities chosen so that sizes differ by at most one.

Size guarantee
--------------
For a class of ``n`` points and ``K = max(1, n // cluster_size)`` clusters,
every cluster gets ``n // K`` or ``n // K + 1`` points. Hence with ``n >=
cluster_size`` every size lies in ``[cluster_size, 2 * cluster_size)``; with
``n < cluster_size`` the class is one cluster of all its ``n`` points.

Memory
------
No (n, K) or (n, n) array larger than ``CHUNK_ELEMENTS`` entries is built.
A class with ``n * K <= CHUNK_ELEMENTS`` is assigned from its dense (n, K)
similarity matrix. A larger class computes its similarities in row chunks of
``CHUNK_ELEMENTS // K`` rows and keeps short candidate lists: first each
point's nearest cluster, then, for a point whose listed clusters are all
full, its ``N_CANDIDATES`` most similar clusters that still have room
(recomputed in chunks). The deferred acceptance runs on these lists and
makes the same proposals as the dense path, so the assignment is the same up
to ties in the similarities. The seeding, the centroid update and the
normalisation work on O(n) memory beyond one copy of the class's points.

Scale
-----
A Lloyd round costs ``n * K`` similarities: about ``n**2 / l`` for a class,
so the large classes dominate. Classes of more than ``LARGE_CLASS_ROWS``
rows are seeded from a random sample and stop their rounds once the k-means
objective has stopped rising (``OBJECTIVE_TOL``); smaller classes are
clustered exactly as before. The similarities (matrix products, maxima and
top-k) run on the training device when it is given (a GPU); the deferred
acceptance runs on the host, on O(n) arrays.
"""

import numpy as np
import scipy.sparse as sp
import torch

_EPS = 1e-12

#: Most similarities (entries of a points x clusters or points x points
#: block) held at a time: 2**22 float32 values, 16 MiB. Classes with
#: ``n * K`` above it take the chunked candidate-list assignment.
CHUNK_ELEMENTS = 1 << 22
#: Candidate clusters kept per point by the chunked assignment.
N_CANDIDATES = 8
#: Default assignment/update rounds of the k-means, and its stopping
#: fraction of points that changed cluster.
MAX_ITER = 20
TOL = 1e-2
#: Large classes, of more than this many rows, where a Lloyd round costs
#: seconds: they are seeded by k-means++ on a random sample of
#: ``max(LARGE_CLASS_ROWS, SEED_SAMPLE_PER_CLUSTER * K)`` rows (k-means++ is K
#: sequential passes over the points it seeds from), and their Lloyd rounds
#: also stop once the k-means objective (the mean cosine of a point to its
#: centroid) gains less than ``OBJECTIVE_TOL`` of itself in a round.
#: Warm-started, a few percent of an embedding's points keep changing
#: clusters (so ``TOL`` rarely stops them) while the objective barely moves;
#: ``benchmarks/results/cluster_scale.md``: warm 5.0x faster at 100k rows,
#: objective 0.9292 against 0.9299.
LARGE_CLASS_ROWS = 10_000
SEED_SAMPLE_PER_CLUSTER = 8
OBJECTIVE_TOL = 1e-4


def normalize_rows(X):
    """Return ``X`` with rows scaled to unit L2 norm (zero rows stay zero)."""
    X = np.asarray(X)
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return X / np.maximum(norms, _EPS)


def _normalize_inplace(X):
    """Scale the rows of the float array ``X`` to unit norm in place, in chunks.

    Same values as :func:`normalize_rows`, without its full-size temporaries.
    """
    step = max(1, CHUNK_ELEMENTS // max(1, X.shape[1]))
    for start in range(0, X.shape[0], step):
        block = X[start:start + step]
        block /= np.maximum(np.linalg.norm(block, axis=1, keepdims=True), _EPS)
    return X


def n_clusters_for(n_samples, cluster_size):
    """Number of clusters K = max(1, floor(n_samples / cluster_size))."""
    return max(1, int(n_samples) // int(cluster_size))


#: ``cluster_size="auto"`` aims at this many clusters for an average class.
AUTO_CLUSTERS_PER_CLASS = 4
#: The paper's samples per cluster, the smallest size ``"auto"`` picks.
PAPER_SAMPLES_PER_CLUSTER = 20
#: The paper's cluster size, the largest that ``"auto"`` picks.
PAPER_CLUSTER_SIZE = 200


def resolve_cluster_size(cluster_size, n_samples, n_classes):
    """``cluster_size`` as an int; ``"auto"`` is ``clip(L // (4 C), 20, 200)``."""
    if cluster_size != "auto":
        return int(cluster_size)
    target = n_samples // (AUTO_CLUSTERS_PER_CLASS * n_classes)
    return int(np.clip(target, PAPER_SAMPLES_PER_CLUSTER, PAPER_CLUSTER_SIZE))


def _capacities(n, k):
    """Sizes that differ by at most one and sum to ``n``."""
    caps = np.full(k, n // k, dtype=np.int64)
    caps[: n % k] += 1
    return caps


def _capacity_assign(sim, caps):
    """Assign each row of ``sim`` (n, K) to a column, at most ``caps[k]`` per column.

    Deferred acceptance: every unassigned point proposes to its most similar
    cluster that still has room; each cluster keeps its most similar proposers
    up to its remaining capacity. A round either places every proposer or
    fills at least one cluster, so it ends after at most K rounds; each round
    is a handful of vectorised array operations.
    """
    n, k = sim.shape
    labels = np.full(n, -1, dtype=np.int64)
    room = caps.copy()
    unassigned = np.arange(n)
    while unassigned.size:
        # The first round reads ``sim`` itself (no cluster is full yet); later
        # rounds index the rejected rows, which makes a (smaller) copy.
        s = sim if unassigned.size == n else sim[unassigned]
        full = room == 0
        if full.any():
            s[:, full] = -np.inf
        choice = np.argmax(s, axis=1)
        score = s[np.arange(unassigned.size), choice]
        unassigned = _accept(choice, score, unassigned, room, labels)
    return labels


def _accept(choice, score, unassigned, room, labels):
    """One round of proposals: ``unassigned[i]`` proposes to ``choice[i]``.

    Each cluster keeps its most similar proposers (ties: earlier first) up
    to its ``room``; ``labels`` and ``room`` are updated in place. Returns
    the rejected proposers, ordered by (cluster, -score).
    """
    order = np.lexsort((-score, choice))
    chosen_sorted = choice[order]
    first = np.searchsorted(chosen_sorted, chosen_sorted, side="left")
    rank = np.arange(order.size) - first
    accept = rank < room[chosen_sorted]
    accepted = order[accept]
    labels[unassigned[accepted]] = choice[accepted]
    room -= np.bincount(choice[accepted], minlength=room.size)
    return unassigned[order[~accept]]


def _assign(X, centers, caps, device=None):
    """Capacity-constrained assignment of the unit rows ``X`` to ``centers``.

    Dense when ``n * K <= CHUNK_ELEMENTS``, else on candidate lists built in
    chunks (:func:`_capacity_assign_chunked`); both make the same proposals.
    The similarities are computed on ``device`` (default: the CPU).
    """
    n, k = X.shape[0], centers.shape[0]
    if n * k <= CHUNK_ELEMENTS:
        if _on_cpu(device):
            return _capacity_assign(X @ centers.T, caps)
        return _capacity_assign(_to_host(_tensor(X, device) @ _tensor(centers, device).T),
                                caps)
    return _capacity_assign_chunked(X, centers, caps, device=device)


def _on_cpu(device):
    return device is None or torch.device(device).type == "cpu"


def _tensor(a, device):
    """A float32 numpy block as a torch tensor on ``device`` (zero copy on the CPU)."""
    t = torch.from_numpy(np.ascontiguousarray(a))
    return t if _on_cpu(device) else t.to(device, non_blocking=True)


def _to_host(t):
    return t.cpu().numpy() if t.device.type != "cpu" else t.numpy()


def _top_candidates(X, centers, m, rows=None, cols=None, device=None):
    """Each row's ``m`` most similar centers, most similar first, in chunks.

    Only ``X[rows]`` (default: all rows) and ``centers[cols]`` (default: all)
    are considered; at most ``CHUNK_ELEMENTS`` similarities exist at a time.
    Returns ``idx`` (int64, center indices; ``len(centers)`` pads rows when
    fewer than ``m`` centers are considered) and ``sim`` (float32, -inf pads),
    both of shape (n_rows, m); equal similarities are ordered by index.
    The products and the top-k run on ``device`` (default: the CPU).
    """
    k = centers.shape[0]
    C = centers if cols is None else centers[cols]
    width = min(m, C.shape[0])
    n = X.shape[0] if rows is None else rows.size
    idx = np.full((n, m), k, dtype=np.int64)
    sim = np.full((n, m), -np.inf, dtype=np.float32)
    C_t = _tensor(C.T, device)
    step = max(1, CHUNK_ELEMENTS // C.shape[0])
    for start in range(0, n, step):
        stop = min(start + step, n)
        xb = X[start:stop] if rows is None else X[rows[start:stop]]
        s = _tensor(xb, device) @ C_t
        # Unsorted top-k is several times faster than sorted on the CPU; the
        # (rows, m) result is then sorted by (-similarity, index).
        v, j = torch.topk(s, width, dim=1, sorted=False)
        v, j = _to_host(v), _to_host(j)
        if cols is not None:
            j = cols[j]
        order = np.lexsort((j, -v), axis=1)
        idx[start:stop, :width] = np.take_along_axis(j, order, axis=1)
        sim[start:stop, :width] = np.take_along_axis(v, order, axis=1)
    return idx, sim


def _nearest(X, centers, device=None):
    """Each row's most similar center (lowest index on ties) and similarity.

    The (rows, K) products of every chunk are written into one reused
    buffer: allocating a fresh block per chunk costs the CPU page faults
    on every chunk (``benchmarks/results/cluster_scale.md``).
    """
    n, k = X.shape[0], centers.shape[0]
    idx = np.empty(n, dtype=np.int64)
    sim = np.empty(n, dtype=np.float32)
    C_t = _tensor(centers.T, device)
    step = min(n, max(1, CHUNK_ELEMENTS // k))
    buf = torch.empty((step, k), dtype=torch.float32, device=C_t.device)
    for start in range(0, n, step):
        xb = _tensor(X[start:start + step], device)
        s = buf[:xb.shape[0]]
        torch.matmul(xb, C_t, out=s)
        v, j = torch.max(s, dim=1)  # the first maximal index, as np.argmax
        idx[start:start + step] = _to_host(j)
        sim[start:start + step] = _to_host(v)
    return idx, sim


def _capacity_assign_chunked(X, centers, caps, m=None, device=None):
    """:func:`_capacity_assign` for the unit rows ``X`` without the (n, K) matrix.

    Every point keeps a list of its most similar clusters and proposes to
    the first of them with room, which is its most similar cluster with
    room: the proposals of the dense version. The list starts as the nearest
    cluster alone; a point whose listed clusters are all full gets the ``m``
    (``N_CANDIDATES``) most similar clusters that still have room before it
    proposes again.
    """
    m = N_CANDIDATES if m is None else m
    n, k = X.shape[0], centers.shape[0]
    # First proposals from each point's nearest cluster alone; a rejected
    # point finds that cluster full and gets its candidate list then, among
    # the clusters with room (most points never need one).
    cand = np.full((n, m), k, dtype=np.int32)
    cand_sim = np.full((n, m), -np.inf, dtype=np.float32)
    cand[:, 0], cand_sim[:, 0] = _nearest(X, centers, device)
    labels = np.full(n, -1, dtype=np.int64)
    room = caps.copy()
    padded_room = np.zeros(k + 1, dtype=room.dtype)  # index k: padding, never room
    unassigned = np.arange(n)
    while unassigned.size:
        padded_room[:k] = room
        c = cand[unassigned]
        has_room = padded_room[c] > 0
        stuck = ~has_room.any(axis=1)
        if stuck.any():
            rows = unassigned[stuck]
            new_idx, new_sim = _top_candidates(
                X, centers, m, rows=rows, cols=np.flatnonzero(room > 0), device=device
            )
            cand[rows], cand_sim[rows] = new_idx, new_sim
            c[stuck] = new_idx
            has_room[stuck] = padded_room[new_idx] > 0
        pos = np.argmax(has_room, axis=1)
        choice = c[np.arange(unassigned.size), pos]
        score = cand_sim[unassigned, pos]
        unassigned = _accept(choice, score, unassigned, room, labels)
    return labels


def _seed_points(X, k, rng):
    """The points k-means++ seeds from: all of them, or a random sample.

    A class of more than ``max(LARGE_CLASS_ROWS, SEED_SAMPLE_PER_CLUSTER *
    k)`` rows is seeded from a uniform sample of that size (k-means++ makes
    ``k`` passes over its points; the Lloyd rounds then use every point).
    """
    size = max(LARGE_CLASS_ROWS, SEED_SAMPLE_PER_CLUSTER * k)
    if X.shape[0] <= size:
        return X
    return X[np.sort(rng.choice(X.shape[0], size, replace=False))]


def _init_centers(X, k, rng):
    """Spherical k-means++ seeding (distance 1 - cosine similarity)."""
    n = X.shape[0]
    centers = np.empty((k, X.shape[1]), dtype=X.dtype)
    centers[0] = X[rng.integers(n)]
    closest = np.clip(1.0 - X @ centers[0], 0.0, None)
    for j in range(1, k):
        total = closest.sum()
        if total <= 0:  # all remaining points coincide with a center
            idx = rng.integers(n)
        else:
            idx = rng.choice(n, p=closest / total)
        centers[j] = X[idx]
        closest = np.minimum(closest, np.clip(1.0 - X @ centers[j], 0.0, None))
    return centers


def equal_size_spherical_kmeans(X, n_clusters, *, init_labels=None, max_iter=MAX_ITER,
                                tol=TOL, random_state=None, device=None):
    """Spherical k-means with clusters of (near) equal size.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Points; rows are L2-normalised here.
    n_clusters : int
        Number of clusters, ``1 <= n_clusters <= n_samples``.
    init_labels : ndarray of shape (n_samples,), default=None
        A previous assignment to start from (its centroids on ``X`` seed the
        first round); None seeds with spherical k-means++.
    max_iter : int, default=20
        Maximum number of assignment/update rounds.
    tol : float, default=1e-2
        Stop once at most this fraction of the points changes cluster.
    random_state : int, RandomState or Generator, default=None
        Seed of the k-means++ initialisation.
    device : torch.device, default=None
        Where the similarities are computed (None: the CPU); the deferred
        acceptance runs on the host either way.

    Returns
    -------
    labels : ndarray of shape (n_samples,)
        Cluster of each point; sizes are ``n // K`` or ``n // K + 1``.
    centers : ndarray of shape (n_clusters, n_features)
        Unit-norm centroids (Eq. 7 of the CLMLE paper).

    Notes
    -----
    Memory: one float32 copy of ``X`` plus O(n_samples) arrays; the
    assignment never holds more than ``CHUNK_ELEMENTS`` similarities at a
    time (see the module docstring).
    """
    # One float32 copy, normalised in place (same values as normalize_rows).
    X = _normalize_inplace(np.array(X, dtype=np.float32))
    return _kmeans_unit(X, n_clusters, init_labels, max_iter, tol, random_state, device)


def _kmeans_unit(X, n_clusters, init_labels, max_iter, tol, random_state, device=None):
    """:func:`equal_size_spherical_kmeans` on float32 rows already of unit norm."""
    rng = _as_generator(random_state)
    n = X.shape[0]
    if not 1 <= n_clusters <= n:
        raise ValueError(f"n_clusters must be in [1, {n}], got {n_clusters}.")
    if n_clusters == 1:
        labels = np.zeros(n, dtype=np.int64)
        return labels, normalize_rows(X.mean(axis=0, keepdims=True))
    caps = _capacities(n, n_clusters)
    if init_labels is None:
        centers = _init_centers(_seed_points(X, n_clusters, rng), n_clusters, rng)
    else:
        centers = normalize_rows(_segment_mean(X, np.asarray(init_labels), n_clusters))
    labels, objective = None, None
    for _ in range(max_iter):
        new = _assign(X, centers, caps, device)
        changed = n if labels is None else np.count_nonzero(new != labels)
        labels = new
        centers = normalize_rows(_segment_mean(X, labels, n_clusters))
        if changed <= tol * n:
            break
        if n > LARGE_CLASS_ROWS:
            previous, objective = objective, _mean_similarity(X, labels, centers)
            if previous is not None and objective - previous <= OBJECTIVE_TOL * abs(previous):
                break
    return labels, centers


def _mean_similarity(X, labels, centers):
    """The k-means objective: mean inner product of a row and its centroid (chunked)."""
    step = max(1, CHUNK_ELEMENTS // max(1, X.shape[1]))
    total = 0.0
    for start in range(0, X.shape[0], step):
        block = X[start:start + step]
        total += float(np.einsum("nd,nd->", block, centers[labels[start:start + step]],
                                 dtype=np.float64))
    return total / max(1, X.shape[0])


def _segment_mean(X, labels, k):
    """Mean of the rows of each cluster, as one sparse-indicator matrix product."""
    n = labels.shape[0]
    indicator = sp.csr_matrix(
        (np.ones(n, dtype=X.dtype), (labels, np.arange(n))), shape=(k, n)
    )
    counts = np.bincount(labels, minlength=k)[:, None]
    return np.asarray(indicator @ X) / np.maximum(counts, 1).astype(X.dtype)


def _as_generator(random_state):
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(np.iinfo(np.int32).max))
    return np.random.default_rng(random_state)


class ClassClusters:
    """Equal-size spherical clusters of every class, with global cluster ids.

    Parameters
    ----------
    features : ndarray of shape (n_samples, n_features)
        Points to cluster (normalised onto the unit sphere here).
    y : ndarray of shape (n_samples,)
        Encoded class of each point, integers in ``[0, n_classes)``.
    cluster_size : int
        Target size ``l``; class c gets ``max(1, L_c // l)`` clusters.
    previous : ClassClusters, default=None
        Clustering of the same samples from the previous round; each class
        whose number of clusters is unchanged starts from its old assignment
        ("a running index of clusters", refreshed on the latest features).
    random_state : int, Generator or None
        Seed of the k-means++ initialisations.
    device : torch.device, default=None
        Where the similarities are computed (None: the CPU).

    Attributes
    ----------
    labels : ndarray of shape (n_samples,)
        Global cluster id of every point; ids of one class are contiguous.
    centers : ndarray of shape (n_clusters, n_features)
        Unit-norm centroids.
    cluster_class : ndarray of shape (n_clusters,)
        Encoded class of each cluster.
    members : ndarray of shape (n_samples,)
        Sample indices sorted by cluster; cluster k's members are
        ``members[offsets[k]:offsets[k + 1]]``.
    offsets : ndarray of shape (n_clusters + 1,)

    Notes
    -----
    Memory: one class is clustered at a time, on a float32 copy of its rows
    (normalised in place); no points x clusters similarity matrix larger than
    ``CHUNK_ELEMENTS`` entries is built (see the module docstring).
    """

    def __init__(self, features, y, cluster_size, *, n_classes=None, previous=None,
                 random_state=None, device=None):
        rng = _as_generator(random_state)
        y = np.asarray(y)
        n_classes = int(y.max()) + 1 if n_classes is None else n_classes
        labels = np.empty(y.shape[0], dtype=np.int64)
        centers, cluster_class = [], []
        start = 0
        for c in range(n_classes):
            idx = np.flatnonzero(y == c)
            if idx.size == 0:
                continue
            k = n_clusters_for(idx.size, cluster_size)
            init = None
            if previous is not None:
                old = previous.labels[idx]
                old = old - old.min()
                if old.max() == k - 1:  # same clusters as before: refresh them
                    init = old
            # features[idx] is this class's own copy: cast and normalise it
            # in place rather than making a second one.
            points = _normalize_inplace(features[idx].astype(np.float32, copy=False))
            lab, cen = _kmeans_unit(points, k, init, MAX_ITER, TOL, rng, device)
            del points
            labels[idx] = lab + start
            centers.append(cen)
            cluster_class.append(np.full(k, c, dtype=np.int64))
            start += k
        self.labels = labels
        self.centers = np.concatenate(centers).astype(np.float32)
        self.cluster_class = np.concatenate(cluster_class)
        self.members = np.argsort(labels, kind="stable")
        self.offsets = np.concatenate(
            [[0], np.cumsum(np.bincount(labels, minlength=start))]
        )

    @property
    def n_clusters(self):
        return self.centers.shape[0]

    def sizes(self):
        """Number of points in each cluster."""
        return np.diff(self.offsets)
