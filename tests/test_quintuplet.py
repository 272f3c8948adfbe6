"""LMLE: the quintuplet loss, the quintuplet table and sampler, LMLEEmbedder."""

import numpy as np
import pytest
import torch
from _estimators import FAST_PARAMS
from sklearn.pipeline import make_pipeline

from sklearn_clmle import (
    KNearestClusterClassifier,
    LMLEEmbedder,
    QuintupletLoss,
    load,
    save,
)
from sklearn_clmle._quintuplets import (
    QuintupletSampler,
    quintuplet_table,
    stratified_half,
)

LMLE_FAST = {k: v for k, v in FAST_PARAMS.items()}


def t(rows):
    return torch.tensor(rows, dtype=torch.float64)


# -- the loss ------------------------------------------------------------------

def test_hand_computed():
    # Quintuplet 1: D(a,p+)=0, D(a,p-)=2, D(a,p--)=4, D(a,n)=2.
    # Quintuplet 2: D(a,p+)=2, D(a,p-)=0, D(a,p--)=2, D(a,n)=4.
    a = t([[1, 0], [1, 0]])
    pp = t([[1, 0], [0, 1]])
    pm = t([[0, 1], [1, 0]])
    pmm = t([[-1, 0], [0, 1]])
    n = t([[0, -1], [-1, 0]])
    loss = QuintupletLoss(g1=1.0, g2=0.5, g3=0.5)
    # 1: eps=[1+0-2]=0, tau=[.5+2-4]=0, sigma=[.5+4-2]=2.5
    # 2: eps=[1+2-0]=3, tau=[.5+0-2]=0, sigma=[.5+2-4]=0
    np.testing.assert_allclose(loss.per_sample(a, pp, pm, pmm, n).numpy(), [2.5, 3.0])
    assert loss(a, pp, pm, pmm, n).item() == pytest.approx(2.75)
    w = t([1.0, 3.0])
    assert loss(a, pp, pm, pmm, n, sample_weight=w).item() == pytest.approx((2.5 + 9) / 4)
    assert QuintupletLoss(0.0, 0.0, 0.0)(a, a, a, a, n).item() == 0.0


def _reference(parts, g1, g2, g3):
    a, pp, pm, pmm, n = (p.numpy() for p in parts)
    D = lambda u, v: ((u - v) ** 2).sum(axis=1)  # noqa: E731
    return (np.maximum(0, g1 + D(a, pp) - D(a, pm)) + np.maximum(0, g2 + D(a, pm) - D(a, pmm))
            + np.maximum(0, g3 + D(a, pmm) - D(a, n)))


@pytest.mark.parametrize("seed", range(3))
def test_matches_the_formula(seed):
    g = torch.Generator().manual_seed(seed)
    parts = [torch.nn.functional.normalize(torch.randn(7, 4, generator=g, dtype=torch.float64),
                                           dim=1) for _ in range(5)]
    got = QuintupletLoss(0.2, 0.3, 0.4).per_sample(*parts).numpy()
    np.testing.assert_allclose(got, _reference(parts, 0.2, 0.3, 0.4))


def test_gradcheck_and_zero_weight_batch():
    g = torch.Generator().manual_seed(0)
    parts = [torch.nn.functional.normalize(torch.randn(5, 3, generator=g, dtype=torch.float64),
                                           dim=1).requires_grad_() for _ in range(5)]
    loss = QuintupletLoss(0.5, 0.5, 0.5)
    assert torch.autograd.gradcheck(lambda *p: loss(*p), tuple(parts))
    zero = loss(*parts, sample_weight=torch.zeros(5, dtype=torch.float64))
    zero.backward()
    assert zero.item() == 0.0 and all(torch.isfinite(p.grad).all() for p in parts)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_any_float_dtype(dtype):
    parts = [torch.nn.functional.normalize(torch.randn(6, 4), dim=1).to(dtype) for _ in range(5)]
    out = QuintupletLoss(0.1, 0.1, 0.1)(*parts)
    assert out.dtype == dtype and torch.isfinite(out)


@pytest.mark.parametrize("args, exc, match", [
    ((t([[1.0]]),) * 4 + (t([1.0]),), ValueError, "negative must be a 2-D"),
    ((t([[1.0]]),) * 4 + (t([[1.0], [2.0]]),), ValueError, "negative has shape"),
    ((torch.ones(2, 2, dtype=torch.long),) * 5, TypeError, "floating point"),
])
def test_bad_inputs(args, exc, match):
    with pytest.raises(exc, match=match):
        QuintupletLoss()(*args)


def test_bad_sample_weight():
    parts = (t([[1.0, 0.0]]),) * 5
    with pytest.raises(ValueError, match="sample_weight must be a tensor of shape \\(1,\\)"):
        QuintupletLoss()(*parts, sample_weight=t([1.0, 2.0]))


# -- the table and the sampler ---------------------------------------------------

def _circle(degrees):
    rad = np.deg2rad(degrees)
    return np.c_[np.cos(rad), np.sin(rad)].astype(np.float32)


#: Class 0: clusters 0 (0, 10 deg) and 1 (40, 50 deg); class 1: cluster 2
#: (90, 100 deg); class 2: cluster 3 (200 deg, alone).
ANGLES = [0, 10, 40, 50, 90, 100, 200]
Y = np.array([0, 0, 0, 0, 1, 1, 2])
CLUSTERS = np.array([0, 0, 1, 1, 2, 2, 3])


def test_table_on_a_hand_made_set():
    table, has_p_minus = quintuplet_table(_circle(ANGLES), Y, CLUSTERS, np.arange(7))
    # anchor 0 deg: p+ = 10 (row 1), p- = 40 (row 2), p-- = 50 (row 3), n = 90 (row 4)
    np.testing.assert_array_equal(table[0], [0, 1, 2, 3, 4])
    # anchor 50 deg: p+ = 40, p- = 10, p-- = 0, n = 90
    np.testing.assert_array_equal(table[3], [3, 2, 1, 0, 4])
    # anchor 90 deg: alone in its class's only cluster pair; no other cluster of
    # class 1, so p- is absent (the anchor stands in); p-- = 100; n = 50.
    np.testing.assert_array_equal(table[4], [4, 5, 4, 5, 3])
    # anchor 200 deg: a singleton cluster and class: p+ = p-- = itself; n = 100.
    np.testing.assert_array_equal(table[6], [6, 6, 6, 6, 5])
    np.testing.assert_array_equal(has_p_minus, [1, 1, 1, 1, 0, 0, 0])


def test_table_members_satisfy_their_definitions():
    rng = np.random.default_rng(0)
    F = rng.normal(size=(40, 3)).astype(np.float32)
    F /= np.linalg.norm(F, axis=1, keepdims=True)
    y = rng.integers(0, 3, 40)
    clusters = y * 10 + rng.integers(0, 2, 40)
    subset = stratified_half(y, 0.5, rng)
    table, has_p_minus = quintuplet_table(F, y, clusters, subset)
    D = lambda i, j: float(((F[i] - F[j]) ** 2).sum())  # noqa: E731
    for (a, pp, pm, pmm, n), has in zip(table, has_p_minus):
        others = [j for j in subset if j != a]
        same_cl = [j for j in others if clusters[j] == clusters[a]]
        same_y = [j for j in others if y[j] == y[a]]
        other_cl = [j for j in same_y if clusters[j] != clusters[a]]
        diff_y = [j for j in others if y[j] != y[a]]
        assert pp == a if not same_cl else D(a, pp) == pytest.approx(max(D(a, j) for j in same_cl))
        assert has == bool(other_cl)
        if other_cl:
            assert D(a, pm) == pytest.approx(min(D(a, j) for j in other_cl))
        assert pmm == a if not same_y else D(a, pmm) == pytest.approx(max(D(a, j) for j in same_y))
        assert D(a, n) == pytest.approx(min(D(a, j) for j in diff_y))
        assert {pp, pm, pmm, n} <= set(subset.tolist()) | {a}


def test_subset_keeps_every_class_and_batches_are_class_balanced():
    y = np.r_[np.zeros(50, int), np.ones(5, int), np.full(1, 2)]
    rng = np.random.default_rng(0)
    subset = stratified_half(y, 0.5, rng)
    np.testing.assert_array_equal(np.bincount(y[subset]), [25, 3, 1])
    F = rng.normal(size=(56, 4)).astype(np.float32)
    F /= np.linalg.norm(F, axis=1, keepdims=True)
    sampler = QuintupletSampler(F, y, y * 2 + (np.arange(56) % 2), 0.5, rng)
    for n_anchors in (3, 7, 48):
        table, _ = sampler.sample(n_anchors)
        counts = np.bincount(y[table[:, 0]], minlength=3)
        assert counts.sum() == n_anchors and counts.max() - counts.min() <= 1
        assert np.isin(table[:, 0], sampler.subset).all()


# -- the estimator -----------------------------------------------------------------

def lmle(**kw):
    return LMLEEmbedder(**{**LMLE_FAST, **kw})


def test_bounds_auto_margins_and_clipping(data):
    X, y = data
    emb = lmle(cluster_size=20).fit(X, y)
    counts = np.bincount(y)
    assert emb.g1_max_ == pytest.approx(2 * np.sin(np.pi * 20 / 300))
    np.testing.assert_allclose(emb.g2_max_, 2 * np.sin(np.pi * np.maximum(counts - 20, 0) / 300))
    assert emb.g3_max_ == pytest.approx(2 * np.sin(np.pi / 3))
    assert emb.g1_ == pytest.approx(emb.g1_max_ / 2)
    np.testing.assert_allclose(emb.g2_, emb.g2_max_ / 2)
    with pytest.warns(UserWarning, match="g3=5 exceeds its bound"):
        clipped = lmle(g3=5.0).fit(X, y)
    assert clipped.g3_ == pytest.approx(clipped.g3_max_)


@pytest.mark.parametrize("loss", ["quintuplet", "triplet"])
def test_fit_transform_reproducible_and_lmle_knn(data, loss):
    X, y = data
    a = lmle(loss=loss).fit(X, y)
    Z = a.transform(X)
    assert Z.shape == (300, FAST_PARAMS["embedding_dim"])
    np.testing.assert_allclose(np.linalg.norm(Z, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(Z, lmle(loss=loss).fit(X, y).transform(X))
    losses = [row["loss"] for row in a.history_ if row["phase"] == "train"]
    assert np.isfinite(losses).all() and sum(
        row["steps"] for row in a.history_ if row["phase"] == "train") == 10
    # LMLE-kNN: the embedder and the Eq. 3 rule in one pipeline (learning
    # itself is checked in test_learns_a_separable_problem).
    pipe = make_pipeline(lmle(loss=loss),
                         KNearestClusterClassifier(rule="lmle", cluster_size=5, random_state=0))
    pred = pipe.fit(X, y).predict(X)
    assert pred.shape == y.shape and np.isin(pred, y).all()
    assert pipe.predict_proba(X).shape == (300, 3)


def test_learns_a_separable_problem():
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(3, 8)) * 4
    y = np.repeat([0, 1, 2], [150, 40, 10])
    X = centers[y] + rng.normal(size=(200, 8))
    emb = LMLEEmbedder(n_rounds=4, iterations_per_round=30, warmup_iterations=0,
                       init="input", random_state=0, n_threads=1).fit(X, y)
    clf = KNearestClusterClassifier(rule="lmle", random_state=0).fit(emb.transform(X), y)
    assert (clf.predict(emb.transform(X)) == y).mean() > 0.95
    assert emb.history_[-1]["loss"] < emb.history_[0]["loss"]


def test_save_load_round_trip(data, tmp_path):
    X, y = data
    emb = lmle().fit(X, y)
    save(emb, tmp_path / "lmle.zip")
    back = load(tmp_path / "lmle.zip")
    np.testing.assert_array_equal(back.transform(X), emb.transform(X))
    np.testing.assert_array_equal(back.g2_, emb.g2_)
