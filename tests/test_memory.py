"""Bounded memory: per-batch casting and densifying, chunked search and clustering.

numpy allocations are traced by ``tracemalloc``, so its peak during a call
shows whether a full-size copy of the input (or an n x K matrix) was made.
"""

import tracemalloc

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from _estimators import FAST_PARAMS
from sklearn.datasets import make_classification

import sklearn_clmle._clustering as clustering
from sklearn_clmle import CLMLEEmbedder, KNearestClusterClassifier
from sklearn_clmle._training import Rows

FAST = dict(FAST_PARAMS, embedding_dim=8, clusters_per_batch=4)


def _traced_peak(fn):
    """Result of ``fn()`` and the peak of numpy/Python allocations during it."""
    tracemalloc.start()
    try:
        result = fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak


def test_sparse_is_densified_one_batch_at_a_time(data, monkeypatch):
    X, y = data
    X = sp.csr_matrix(np.where(np.abs(X) > 1, X, 0.0))
    shapes = []
    for cls in (sp.csr_matrix, sp.csr_array):
        for name in ("toarray", "todense"):
            original = getattr(cls, name)

            def recording(self, *args, _original=original, **kwargs):
                out = _original(self, *args, **kwargs)
                shapes.append(out.shape)
                return out

            monkeypatch.setattr(cls, name, recording)
    emb = CLMLEEmbedder(**FAST, inference_batch_size=32).fit(X, y)
    # Training batches: clusters_per_batch * samples_per_cluster = 4 * 20 rows.
    assert shapes and max(s[0] for s in shapes) <= 80
    shapes.clear()
    Z = emb.transform(X)
    assert Z.shape == (300, 8)
    assert shapes and max(s[0] for s in shapes) <= 32


def test_sparse_with_input_init_is_refused(data):
    X, y = data
    with pytest.raises(ValueError, match="init='input'.*dense X.*init='warmup'"):
        CLMLEEmbedder(**FAST, init="input").fit(sp.csr_matrix(X), y)


def test_float64_is_cast_per_batch(data):
    X, y = data
    X32 = X.astype(np.float32)
    emb = CLMLEEmbedder(**FAST, inference_batch_size=64).fit(X32, y)
    np.testing.assert_allclose(emb.transform(X), emb.transform(X32), rtol=1e-6, atol=1e-7)

    cpu = torch.device("cpu")
    rows = Rows(X, cpu)
    assert rows.X is X  # kept as given, no float32 copy
    chunks = torch.cat(list(rows.chunks(64))).numpy()
    np.testing.assert_array_equal(chunks, X32)
    np.testing.assert_array_equal(rows.take([5, 1, 7]).numpy(), X32[[5, 1, 7]])
    # Float32 input, C- or F-ordered, is not copied either.
    assert np.shares_memory(Rows(X32, cpu).X.numpy(), X32)
    X_f = np.asfortranarray(X32)
    assert Rows(X_f, cpu).X is X_f
    np.testing.assert_array_equal(Rows(X_f, cpu).take([3, 0]).numpy(), X32[[3, 0]])


def test_transform_traced_memory_is_output_plus_a_batch():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20_000, 64))  # float64, 10 MB; a float32 copy is 5 MB
    y = rng.integers(0, 2, X.shape[0])
    emb = CLMLEEmbedder(**FAST, inference_batch_size=512).fit(X[:300], y[:300])
    Z, peak = _traced_peak(lambda: emb.transform(X))
    assert peak < Z.nbytes + X.nbytes / 8  # a float32 copy of X would be X.nbytes / 2


def test_predict_traced_memory_is_bounded():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2_000, 16)).astype(np.float32)
    y = rng.integers(0, 4, X.shape[0])
    clf = KNearestClusterClassifier(cluster_size=20, chunk_size=256, random_state=0)
    clf.fit(X, y)
    Q = rng.normal(size=(40_000, 16)).astype(np.float32)  # 2.56 MB
    # Output plus one block of 256 queries (about 0.5 MB): no normalised copy
    # of Q, no (n_queries, n_classes) scores.
    pred, peak = _traced_peak(lambda: clf.predict(Q))
    assert peak < pred.nbytes + Q.nbytes / 3
    proba, peak = _traced_peak(lambda: clf.predict_proba(Q))
    assert peak < proba.nbytes + Q.nbytes / 3
    (dist, _), peak = _traced_peak(lambda: clf.kneighbors(Q))
    assert peak < 2 * dist.nbytes + Q.nbytes / 3


@pytest.mark.parametrize("n_classes", [2, 4])
def test_predictions_do_not_depend_on_chunk_size(n_classes):
    X, y = make_classification(
        600, n_features=8, n_informative=5, n_classes=n_classes, random_state=1
    )
    Q = X[:257] * 1.1 + 0.05
    small = KNearestClusterClassifier(cluster_size=15, chunk_size=7, random_state=0).fit(X, y)
    large = KNearestClusterClassifier(
        cluster_size=15, chunk_size=10_000, random_state=0
    ).fit(X, y)
    np.testing.assert_array_equal(small.predict(Q), large.predict(Q))
    np.testing.assert_array_equal(small.predict_proba(Q), large.predict_proba(Q))
    np.testing.assert_array_equal(small.decision_function(Q), large.decision_function(Q))
    for a, b in zip(small.kneighbors(Q, 3), large.kneighbors(Q, 3)):
        np.testing.assert_array_equal(a, b)


def _mean_similarity(X, labels, centers):
    X = clustering.normalize_rows(X.astype(np.float32))
    return float(np.einsum("nd,nd->n", X, centers[labels]).mean())


@pytest.mark.parametrize("n, k, candidates", [(4_000, 200, 8), (2_001, 100, 2)])
def test_chunked_clustering_keeps_sizes_and_quality(monkeypatch, n, k, candidates):
    X = np.random.default_rng(n).normal(size=(n, 12))
    dense, dense_peak = _traced_peak(
        lambda: clustering.equal_size_spherical_kmeans(X, k, random_state=0)
    )
    # A tiny budget sends the class through the chunked candidate lists (a
    # few rows per chunk); 2 candidates force many refreshes of full ones.
    monkeypatch.setattr(clustering, "CHUNK_ELEMENTS", 1_000)
    monkeypatch.setattr(clustering, "N_CANDIDATES", candidates)
    (labels, centers), peak = _traced_peak(
        lambda: clustering.equal_size_spherical_kmeans(X, k, random_state=0)
    )
    sizes = np.bincount(labels, minlength=k)
    assert sizes.sum() == n and set(np.unique(sizes)) <= {n // k, n // k + 1}
    quality = _mean_similarity(X, labels, centers)
    assert quality == pytest.approx(_mean_similarity(X, *dense), rel=0.01)
    # One float32 copy of X, the candidate lists and O(n) arrays: a fraction
    # of the dense path, which holds the (n, K) similarity matrix.
    assert peak < dense_peak / 2 and peak < n * k * 4


def test_chunked_assignment_matches_dense():
    rng = np.random.default_rng(0)
    X = clustering.normalize_rows(rng.normal(size=(1_500, 8)).astype(np.float32))
    centers = clustering.normalize_rows(rng.normal(size=(25, 8)).astype(np.float32))
    caps = clustering._capacities(1_500, 25)
    dense = clustering._capacity_assign(X @ centers.T, caps)
    for m in (1, 3, 8):
        chunked = clustering._capacity_assign_chunked(X, centers, caps, m=m)
        np.testing.assert_array_equal(np.bincount(chunked, minlength=25), caps)
        assert np.mean(chunked == dense) > 0.99


@pytest.mark.cuda
def test_device_copy_is_cast_float32():
    X = np.random.default_rng(0).normal(size=(1_000, 5))
    rows = Rows(X, torch.device("cuda"))
    assert rows.X.device.type == "cuda" and rows.X.dtype == torch.float32
    np.testing.assert_array_equal(rows.X.cpu().numpy(), X.astype(np.float32))
    np.testing.assert_array_equal(rows.take([2, 0]).cpu().numpy(), X[[2, 0]].astype(np.float32))


def test_cuda_without_index_resolves_to_the_current_device(monkeypatch):
    # torch.device("cuda") != torch.device("cuda:0"), while a tensor's device is
    # always indexed: an index-less device made Rows.take pin a CUDA tensor.
    from sklearn_clmle._runtime import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 1)
    for device in ("auto", "cuda", torch.device("cuda"), None):
        assert resolve_device(device) == torch.device("cuda", 1)
    assert resolve_device("cuda:0") == torch.device("cuda", 0)


def test_to_device_leaves_accelerator_tensors_unpinned():
    from sklearn_clmle._rows import to_device

    meta = torch.device("meta")  # an accelerator stand-in: pinning it raises
    t = torch.empty(4, 3, device=meta)
    out = to_device(t[:, 0], meta)
    assert out.device == meta and out.shape == (4,)
    col = np.arange(12.0).reshape(4, 3)[:, 1]  # on the CPU a strided view is taken as given
    np.testing.assert_array_equal(to_device(col, torch.device("cpu")).numpy(), col)
