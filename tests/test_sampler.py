import numpy as np
import pytest

from sklearn_clmle._clustering import ClassClusters
from sklearn_clmle._sampler import ClusterBatchSampler


def make_clusters(sizes_per_class, dim=8, seed=0, cluster_size=10):
    rng = np.random.default_rng(seed)
    y = np.concatenate([np.full(n, c) for c, n in enumerate(sizes_per_class)])
    X = rng.normal(size=(y.size, dim))
    return ClassClusters(X, y, cluster_size, random_state=0), y


def sampler_for(clusters, m=4, s=5, query_sampling="hardest", seed=0):
    return ClusterBatchSampler(clusters, m, s, query_sampling, np.random.default_rng(seed))


def test_batch_shape_and_membership():
    cl, _ = make_clusters([60, 30, 3])
    sp = sampler_for(cl, m=4, s=5)
    idx, batch_cluster, batch_clusters = sp.sample()
    assert idx.shape == (20,) and batch_cluster.shape == (20,)
    assert batch_clusters.shape == (4,) and np.unique(batch_clusters).size == 4
    np.testing.assert_array_equal(cl.labels[idx], batch_clusters[batch_cluster])


def test_small_cluster_sampled_with_replacement():
    cl, y = make_clusters([40, 3])
    sp = sampler_for(cl, m=2, s=7)
    tiny = int(np.flatnonzero(cl.cluster_class == 1)[0])
    for _ in range(20):
        idx, bc, clusters = sp.sample()
        if tiny in clusters:
            rows = idx[bc == np.flatnonzero(clusters == tiny)[0]]
            assert rows.size == 7 and set(rows) <= set(np.flatnonzero(y == 1))
            return
    pytest.fail("the minority cluster never entered a batch")


def test_query_is_hardest_cluster_of_its_class():
    cl, _ = make_clusters([50, 50])
    sp = sampler_for(cl, m=3, s=2)
    sp.loss_cache[:] = 0.1
    hard = 3  # a class-0 cluster (class 0 has clusters 0..4)
    sp.loss_cache[cl.members[cl.offsets[hard]:cl.offsets[hard + 1]]] = 5.0
    hard1 = 7
    sp.loss_cache[cl.members[cl.offsets[hard1]:cl.offsets[hard1 + 1]]] = 2.0
    queries = {sp.query_cluster() for _ in range(50)}
    assert queries == {hard, hard1}


def test_never_seen_clusters_come_first():
    cl, _ = make_clusters([50, 50])
    sp = sampler_for(cl, m=3, s=2)
    sp.loss_cache[:] = 9.0
    unseen = 2
    sp.loss_cache[cl.members[cl.offsets[unseen]:cl.offsets[unseen + 1]]] = np.nan
    queries = [sp.query_cluster() for _ in range(40)]
    assert unseen in queries
    assert all(q == unseen for q in queries if cl.cluster_class[q] == 0)


def test_update_caches_losses():
    cl, _ = make_clusters([30, 30])
    sp = sampler_for(cl)
    idx, _, _ = sp.sample()
    sp.update(idx, np.arange(idx.size, dtype=float))
    assert np.isfinite(sp.loss_cache[idx]).all()
    assert np.isnan(sp.loss_cache).sum() >= cl.labels.size - idx.size


def test_both_kinds_forced_in_when_nearest_are_one_class():
    cl, _ = make_clusters([100, 20])
    # Put class 1's clusters far away from everything of class 0.
    cl.centers[:] = 0.0
    cl.centers[:, 0] = 1.0
    cls1 = np.flatnonzero(cl.cluster_class == 1)
    cl.centers[cls1] = 0.0
    cl.centers[cls1, 1] = 1.0
    sp = sampler_for(cl, m=4, s=1)
    neighbours = sp.neighbours(0)
    kinds = cl.cluster_class[neighbours]
    assert neighbours[0] == 0 and (kinds == 1).any() and (kinds[1:] == 0).any()
    # A minority query gets a same-class cluster and an other-class cluster too.
    neighbours = sp.neighbours(int(cls1[0]))
    kinds = cl.cluster_class[neighbours]
    assert (kinds[1:] == 1).any() and (kinds == 0).any()


def test_plain_nearest_when_both_kinds_already_present():
    cl, _ = make_clusters([50, 50], seed=4)
    sp = sampler_for(cl, m=4, s=1)
    for q in range(cl.n_clusters):
        sim = cl.centers @ cl.centers[q]
        sim[q] = -np.inf
        top = np.argsort(-sim, kind="stable")[:3]
        if np.unique(cl.cluster_class[np.r_[q, top]]).size == 2 and (
            cl.cluster_class[top] == cl.cluster_class[q]
        ).any():
            assert set(sp.neighbours(q)[1:]) == set(top)


def test_fewer_clusters_than_m():
    cl, _ = make_clusters([10, 10])
    sp = sampler_for(cl, m=12, s=3)
    idx, bc, clusters = sp.sample()
    assert clusters.size == cl.n_clusters and idx.size == 3 * cl.n_clusters


def test_uniform_query_sampling_varies():
    cl, _ = make_clusters([100, 100])
    sp = sampler_for(cl, query_sampling="uniform")
    sp.loss_cache[:] = 0.0
    sp.loss_cache[cl.members[:10]] = 100.0
    assert len({sp.query_cluster() for _ in range(200)}) > 4
