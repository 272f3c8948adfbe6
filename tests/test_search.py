import pickle

import numpy as np
import pytest

from sklearn_clmle._clustering import normalize_rows
from sklearn_clmle._search import CentroidIndex


def unit(rng, n, d):
    return normalize_rows(rng.normal(size=(n, d)).astype(np.float32))


@pytest.fixture(scope="module")
def centers_and_queries():
    rng = np.random.default_rng(0)
    return unit(rng, 500, 8), unit(rng, 120, 8)


def brute_reference(C, Q, k):
    s = Q.astype(np.float64) @ C.T.astype(np.float64)
    idx = np.argsort(-s, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(s, idx, axis=1), idx


@pytest.mark.parametrize("algorithm", ["brute", "kd_tree"])
def test_exact_backends_match_reference(centers_and_queries, algorithm):
    C, Q = centers_and_queries
    sim, idx = CentroidIndex(C, algorithm, 1024).query(Q, 15)
    ref_sim, ref_idx = brute_reference(C, Q, 15)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_allclose(sim, ref_sim, atol=1e-6)
    assert (np.diff(sim, axis=1) <= 0).all()


def test_chunking_changes_nothing(centers_and_queries):
    C, Q = centers_and_queries
    a = CentroidIndex(C, "brute", 7).query(Q, 10)
    b = CentroidIndex(C, "brute", 4096).query(Q, 10)
    np.testing.assert_array_equal(a[1], b[1])


def test_k_equal_to_all_centroids(centers_and_queries):
    C, Q = centers_and_queries
    sim, idx = CentroidIndex(C[:12], "brute", 100).query(Q, 12)
    assert (np.sort(idx, axis=1) == np.arange(12)).all()


def test_equal_similarities_ordered_by_index():
    C = np.tile(np.array([[1.0, 0.0]], dtype=np.float32), (6, 1))
    _, idx = CentroidIndex(C, "brute", 10).query(np.array([[1.0, 0.0]]), 4)
    np.testing.assert_array_equal(idx, [[0, 1, 2, 3]])


def test_auto_and_tiny_nndescent_use_brute():
    C = unit(np.random.default_rng(1), 20, 4)
    assert CentroidIndex(C, "auto", 10).algorithm == "brute"
    assert CentroidIndex(C, "nndescent", 10).algorithm == "brute"


def test_index_is_not_pickled(centers_and_queries):
    C, Q = centers_and_queries
    index = CentroidIndex(C, "kd_tree", 64)
    before = index.query(Q, 5)
    assert index._index is not None
    loaded = pickle.loads(pickle.dumps(index))
    assert loaded._index is None
    np.testing.assert_array_equal(loaded.query(Q, 5)[1], before[1])


@pytest.mark.parametrize("n_centroids, k", [(3_000, 20), (700, 5), (300, 64)])
def test_grouped_brute_search_is_exact(n_centroids, k):
    # Enough centroids for the group maxima to prune, in several blocks.
    rng = np.random.default_rng(n_centroids)
    C, Q = unit(rng, n_centroids, 16), unit(rng, 700, 16)
    index = CentroidIndex(C, "brute", 4096)
    plan = index.plan(k)
    assert plan.groups > 1 and len(Q) > plan.block
    sim, idx = index.query(Q, k)
    ref_sim, ref_idx = brute_reference(C, Q, k)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_allclose(sim, ref_sim, atol=1e-6)


def test_duplicated_centroids_tie_by_lower_index_across_groups():
    # 300 copies of one direction among random centroids: the top k are
    # all copies (equal similarities straddle the k-th place), in index order.
    rng = np.random.default_rng(3)
    C = unit(rng, 2_000, 8)
    copies = np.sort(rng.choice(2_000, 300, replace=False))
    C[copies] = C[copies[0]]
    Q = np.vstack([C[copies[0]], unit(rng, 50, 8)])
    sim, idx = CentroidIndex(C, "brute", 64).query(Q, 20)
    np.testing.assert_array_equal(idx[0], copies[:20])
    assert (sim[0] == sim[0, 0]).all()
    ref_idx = np.argsort(-np.einsum("nd,md->nm", Q, C), axis=1, kind="stable")[:, :20]
    np.testing.assert_array_equal(idx[1:], ref_idx[1:])


def test_query_results_do_not_depend_on_the_block():
    rng = np.random.default_rng(4)
    C, Q = unit(rng, 1_500, 12), unit(rng, 300, 12)
    index = CentroidIndex(C, "brute", 4096)
    whole = index.query(Q, 10)
    for part in (slice(0, 1), slice(7, 8), slice(13, 250)):
        sim, idx = index.query(Q[part], 10)
        np.testing.assert_array_equal(sim, whole[0][part])
        np.testing.assert_array_equal(idx, whole[1][part])


def test_rows_near_the_border_are_redone_exhaustively():
    # With a tolerance wider than every gap, every row takes the exhaustive
    # path, which must give the same (exact) answer.
    rng = np.random.default_rng(5)
    C, Q = unit(rng, 1_000, 8), unit(rng, 40, 8)
    fast = CentroidIndex(C, "brute", 4096)
    slow = CentroidIndex(C, "brute", 4096)
    slow.plan(7).tolerance = 10.0
    np.testing.assert_array_equal(slow.query(Q, 7)[1], fast.query(Q, 7)[1])
    np.testing.assert_array_equal(slow.query(Q, 7)[0], fast.query(Q, 7)[0])
    np.testing.assert_array_equal(fast.query(Q, 7)[1], brute_reference(C, Q, 7)[1])
