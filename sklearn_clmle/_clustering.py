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
"""

import numpy as np
import scipy.sparse as sp

_EPS = 1e-12


def normalize_rows(X):
    """Return ``X`` with rows scaled to unit L2 norm (zero rows stay zero)."""
    X = np.asarray(X)
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return X / np.maximum(norms, _EPS)


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
        # Within each chosen cluster, most similar proposers first (stable).
        order = np.lexsort((-score, choice))
        chosen_sorted = choice[order]
        first = np.searchsorted(chosen_sorted, chosen_sorted, side="left")
        rank = np.arange(order.size) - first
        accept = rank < room[chosen_sorted]
        accepted = order[accept]
        labels[unassigned[accepted]] = choice[accepted]
        room -= np.bincount(choice[accepted], minlength=k)
        unassigned = unassigned[order[~accept]]
    return labels


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


def equal_size_spherical_kmeans(X, n_clusters, *, init_labels=None, max_iter=20,
                                tol=1e-2, random_state=None):
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

    Returns
    -------
    labels : ndarray of shape (n_samples,)
        Cluster of each point; sizes are ``n // K`` or ``n // K + 1``.
    centers : ndarray of shape (n_clusters, n_features)
        Unit-norm centroids (Eq. 7 of the CLMLE paper).
    """
    rng = _as_generator(random_state)
    X = normalize_rows(np.asarray(X, dtype=np.float32))
    n = X.shape[0]
    if not 1 <= n_clusters <= n:
        raise ValueError(f"n_clusters must be in [1, {n}], got {n_clusters}.")
    if n_clusters == 1:
        labels = np.zeros(n, dtype=np.int64)
        return labels, normalize_rows(X.mean(axis=0, keepdims=True))
    caps = _capacities(n, n_clusters)
    if init_labels is None:
        centers = _init_centers(X, n_clusters, rng)
    else:
        centers = normalize_rows(_segment_mean(X, np.asarray(init_labels), n_clusters))
    labels = None
    for _ in range(max_iter):
        new = _capacity_assign(X @ centers.T, caps)
        changed = n if labels is None else np.count_nonzero(new != labels)
        labels = new
        centers = normalize_rows(_segment_mean(X, labels, n_clusters))
        if changed <= tol * n:
            break
    return labels, centers


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
    """

    def __init__(self, features, y, cluster_size, *, n_classes=None, previous=None,
                 random_state=None):
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
            lab, cen = equal_size_spherical_kmeans(
                features[idx], k, init_labels=init, random_state=rng
            )
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
