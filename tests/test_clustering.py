import numpy as np
import pytest
import torch

import sklearn_clmle._clustering as clustering
from sklearn_clmle._clustering import (
    ClassClusters,
    equal_size_spherical_kmeans,
    n_clusters_for,
)


@pytest.mark.parametrize("n, l", [(1, 200), (7, 3), (50, 7), (199, 200), (200, 200),
                                  (399, 200), (401, 200), (1000, 13), (123, 1)])
def test_size_guarantee(n, l):
    rng = np.random.default_rng(n)
    X = rng.normal(size=(n, 5))
    k = n_clusters_for(n, l)
    assert k == max(1, n // l)
    labels, centers = equal_size_spherical_kmeans(X, k, random_state=0)
    sizes = np.bincount(labels, minlength=k)
    assert sizes.sum() == n and sizes.size == k
    assert set(np.unique(sizes)) <= {n // k, n // k + 1}
    if n >= l:
        assert sizes.min() >= l and sizes.max() < 2 * l
    np.testing.assert_allclose(np.linalg.norm(centers, axis=1), 1.0, rtol=1e-5)


def test_recovers_separated_equal_groups():
    rng = np.random.default_rng(0)
    directions = np.eye(4)
    X = np.repeat(directions, 30, axis=0) + 0.05 * rng.normal(size=(120, 4))
    labels, _ = equal_size_spherical_kmeans(X, 4, random_state=0)
    truth = np.repeat(np.arange(4), 30)
    # Each found cluster is exactly one true group.
    for k in range(4):
        assert np.unique(truth[labels == k]).size == 1


def test_unequal_natural_groups_still_equal_sizes():
    rng = np.random.default_rng(1)
    X = np.r_[np.tile([1.0, 0.0], (90, 1)), np.tile([0.0, 1.0], (10, 1))]
    X += 0.01 * rng.normal(size=X.shape)
    labels, _ = equal_size_spherical_kmeans(X, 2, random_state=0)
    assert np.bincount(labels).tolist() == [50, 50]


def test_duplicates_and_zero_rows():
    X = np.zeros((10, 3))
    labels, centers = equal_size_spherical_kmeans(X, 3, random_state=0)
    assert sorted(np.bincount(labels).tolist()) == [3, 3, 4]
    assert np.isfinite(centers).all()


def test_reproducible():
    X = np.random.default_rng(2).normal(size=(300, 6))
    a = equal_size_spherical_kmeans(X, 7, random_state=3)
    b = equal_size_spherical_kmeans(X, 7, random_state=3)
    np.testing.assert_array_equal(a[0], b[0])


def test_bad_n_clusters():
    with pytest.raises(ValueError, match="n_clusters"):
        equal_size_spherical_kmeans(np.ones((3, 2)), 4)


def test_class_clusters_layout():
    rng = np.random.default_rng(3)
    y = np.r_[np.zeros(45, int), np.ones(9, int), np.full(1, 2)]
    X = rng.normal(size=(y.size, 4))
    cl = ClassClusters(X, y, cluster_size=10, n_classes=3, random_state=0)
    assert cl.cluster_class.tolist() == [0, 0, 0, 0, 1, 2]
    # Every point's cluster belongs to its class; members/offsets index them.
    np.testing.assert_array_equal(cl.cluster_class[cl.labels], y)
    for k in range(cl.n_clusters):
        members = cl.members[cl.offsets[k]:cl.offsets[k + 1]]
        assert (cl.labels[members] == k).all()
    assert cl.sizes().tolist() == [12, 11, 11, 11, 9, 1]


def _objective(X, labels, centers):
    X = clustering.normalize_rows(X.astype(np.float32))
    return float(np.einsum("nd,nd->n", X, centers[labels]).mean())


def test_large_class_stops_on_the_objective_plateau(monkeypatch):
    # A "large" class (above LARGE_CLASS_ROWS) stops once the objective stops
    # rising: fewer Lloyd rounds, the same sizes, about the same objective.
    X = np.random.default_rng(0).normal(size=(3_000, 8))
    k = 60
    calls = {"n": 0}
    assign = clustering._assign

    def counting(*args, **kwargs):
        calls["n"] += 1
        return assign(*args, **kwargs)

    monkeypatch.setattr(clustering, "_assign", counting)
    monkeypatch.setattr(clustering, "TOL", 0.0)
    full = clustering.equal_size_spherical_kmeans(X, k, tol=0.0, random_state=0)
    full_rounds, calls["n"] = calls["n"], 0
    monkeypatch.setattr(clustering, "LARGE_CLASS_ROWS", 1_000)
    labels, centers = clustering.equal_size_spherical_kmeans(X, k, tol=0.0, random_state=0)
    assert calls["n"] < full_rounds == clustering.MAX_ITER
    sizes = np.bincount(labels, minlength=k)
    assert set(np.unique(sizes)) <= {3_000 // k, 3_000 // k + 1}
    assert _objective(X, labels, centers) == pytest.approx(_objective(X, *full), rel=0.01)


def test_large_class_is_seeded_from_a_sample(monkeypatch):
    monkeypatch.setattr(clustering, "LARGE_CLASS_ROWS", 100)
    X = np.arange(2_000 * 2, dtype=np.float32).reshape(2_000, 2)
    sample = clustering._seed_points(X, 20, np.random.default_rng(0))
    assert sample.shape == (max(100, clustering.SEED_SAMPLE_PER_CLUSTER * 20), 2)
    assert np.unique(sample[:, 0]).size == sample.shape[0]  # distinct rows of X
    # A class at most that large seeds from all of its rows.
    small = clustering._seed_points(X[:100], 5, np.random.default_rng(0))
    np.testing.assert_array_equal(small, X[:100])


def test_cpu_device_is_the_default_path():
    X = np.random.default_rng(1).normal(size=(500, 6))
    a = clustering.equal_size_spherical_kmeans(X, 9, random_state=2)
    b = clustering.equal_size_spherical_kmeans(X, 9, random_state=2, device=torch.device("cpu"))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


@pytest.mark.cuda
def test_clustering_on_cuda_keeps_sizes_and_agrees():
    X = np.random.default_rng(2).normal(size=(20_000, 16)).astype(np.float32)
    y = np.repeat(np.arange(2), 10_000)
    cpu = ClassClusters(X, y, 100, random_state=0)
    gpu = ClassClusters(X, y, 100, random_state=0, device=torch.device("cuda"))
    np.testing.assert_array_equal(np.sort(cpu.sizes()), np.sort(gpu.sizes()))
    assert np.mean(cpu.labels == gpu.labels) > 0.9
