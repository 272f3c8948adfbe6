"""Cluster batch sampler of CLMLE (CLMLE paper, Sec. 3.3).

One batch: a class chosen uniformly at random; its query cluster (the one with
the highest mean cached loss, clusters never seen first); the M - 1 clusters
whose centroids have the largest inner product with the query centroid, with
at least one same-class and one other-class cluster when they exist; and
``samples_per_cluster`` examples drawn from each of the M clusters (with
replacement when a cluster is smaller).
"""

import numpy as np


class ClusterBatchSampler:
    """Draws CLMLE batches from a :class:`~sklearn_clmle._clustering.ClassClusters`.

    Parameters
    ----------
    clusters : ClassClusters
        Current clustering of the training set.
    clusters_per_batch : int
        M, the number of clusters in one batch (>= 2).
    samples_per_cluster : int
        s, examples drawn from each batch cluster.
    query_sampling : {"hardest", "uniform"}
        "hardest" is the paper; "uniform" picks the query cluster of the
        chosen class at random (the ablation).
    rng : numpy.random.Generator
    loss_cache : ndarray of shape (n_samples,), optional
        Cached per-sample losses (NaN = never seen); kept across rounds.
    """

    def __init__(self, clusters, clusters_per_batch, samples_per_cluster,
                 query_sampling, rng, loss_cache=None):
        self.clusters = clusters
        self.m = clusters_per_batch
        self.s = samples_per_cluster
        self.query_sampling = query_sampling
        self.rng = rng
        n = clusters.labels.shape[0]
        self.loss_cache = (
            np.full(n, np.nan, dtype=np.float64) if loss_cache is None else loss_cache
        )
        self.classes = np.unique(clusters.cluster_class)
        # Clusters of class c are contiguous: [class_start[c], class_stop[c]).
        cc = clusters.cluster_class
        self.class_start = np.searchsorted(cc, self.classes, side="left")
        self.class_stop = np.searchsorted(cc, self.classes, side="right")

    def cluster_losses(self, lo, hi):
        """Mean cached loss of clusters lo..hi-1 (+inf for never-seen ones)."""
        cl = self.clusters
        start, stop = cl.offsets[lo], cl.offsets[hi]
        vals = self.loss_cache[cl.members[start:stop]]
        seen = ~np.isnan(vals)
        bounds = cl.offsets[lo:hi] - start
        sums = np.add.reduceat(np.where(seen, vals, 0.0), bounds)
        counts = np.add.reduceat(seen.astype(np.int64), bounds)
        out = np.full(hi - lo, np.inf)
        np.divide(sums, counts, out=out, where=counts > 0)
        return out

    def query_cluster(self):
        """Choose a class uniformly, then its query cluster."""
        j = self.rng.integers(self.classes.size)
        lo, hi = self.class_start[j], self.class_stop[j]
        if self.query_sampling == "uniform" or hi - lo == 1:
            return int(self.rng.integers(lo, hi))
        losses = self.cluster_losses(lo, hi)
        best = np.flatnonzero(losses == losses.max())
        return int(lo + self.rng.choice(best))

    def neighbours(self, query):
        """The query and its M - 1 nearest clusters, both kinds forced in.

        The most similar other-class cluster and the most similar other
        same-class cluster are always taken when they exist (other-class
        first when only one slot is left); the remaining slots go to the most
        similar clusters. When the plain M - 1 nearest already hold both
        kinds this is exactly the M - 1 nearest.
        """
        cl = self.clusters
        sim = cl.centers @ cl.centers[query]
        sim[query] = -np.inf
        k = min(self.m - 1, cl.n_clusters - 1)
        same = cl.cluster_class == cl.cluster_class[query]
        same[query] = False
        forced = [
            int(np.flatnonzero(kind)[np.argmax(sim[kind])])
            for kind in (~same & np.isfinite(sim), same)
            if kind.any()
        ][:k]
        rest = np.argsort(-sim, kind="stable")
        rest = rest[~np.isin(rest, forced)][: k - len(forced)]
        chosen = np.concatenate([np.asarray(forced, dtype=np.int64), rest])
        chosen = chosen[np.argsort(-sim[chosen], kind="stable")]
        return np.concatenate([[query], chosen]).astype(np.int64)

    def sample(self):
        """One batch.

        Returns
        -------
        indices : ndarray of shape (n_batch,)
            Training-set rows.
        batch_cluster : ndarray of shape (n_batch,)
            Position of each row's cluster in ``clusters``, in ``[0, M)``.
        batch_clusters : ndarray of shape (M,)
            Global ids of the batch clusters (query first).
        """
        cl = self.clusters
        batch_clusters = self.neighbours(self.query_cluster())
        idx = []
        for k in batch_clusters:
            members = cl.members[cl.offsets[k]:cl.offsets[k + 1]]
            replace = members.size < self.s
            idx.append(self.rng.choice(members, self.s, replace=replace))
        indices = np.concatenate(idx)
        batch_cluster = np.repeat(np.arange(batch_clusters.size), self.s)
        return indices, batch_cluster, batch_clusters

    def update(self, indices, losses):
        """Cache the per-sample losses just computed."""
        self.loss_cache[indices] = losses
