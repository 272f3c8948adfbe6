import math

import numpy as np
import pytest

from sklearn_clmle._rules import absent_score, break_ties, class_scores, scores_to_proba


def reference(sim, cls, n_classes, rule, scale):
    """Eq. 10 / Eq. 3 with Python loops, straight from the papers."""
    n, k = sim.shape
    out = np.full((n, n_classes), absent_score(rule, scale, k))
    for i in range(n):
        for c in set(cls[i].tolist()):
            own = sim[i][cls[i] == c]
            other = sim[i][cls[i] != c]
            if rule == "lmle":
                d_own = 2 - 2 * own  # squared Euclidean on the unit sphere
                d_other = 2 - 2 * other if other.size else np.array([4.0])
                out[i, c] = d_other.min() - d_own.max()
            else:
                lse = (
                    math.log(sum(math.exp(scale * s) for s in other))
                    if other.size else -scale
                )
                out[i, c] = scale * own.min() - lse
    return out


@pytest.mark.parametrize("rule", ["clmle", "lmle"])
@pytest.mark.parametrize("scale", [1.0, 7.5])
@pytest.mark.parametrize("seed", range(3))
def test_matches_reference(rule, scale, seed):
    rng = np.random.default_rng(seed)
    n, k, C = 40, 9, 5
    sim = np.sort(rng.uniform(-1, 1, (n, k)), axis=1)[:, ::-1]
    cls = rng.integers(0, C, (n, k))
    cls[0] = 2  # a row whose neighbours are all of one class
    scores, nearest = class_scores(sim, cls, C, rule, scale)
    np.testing.assert_allclose(scores, reference(sim, cls, C, rule, scale), atol=1e-12)
    for i in range(n):
        for c in range(C):
            expected = sim[i][cls[i] == c].max() if (cls[i] == c).any() else -np.inf
            assert nearest[i, c] == expected


def test_absent_classes_below_every_present_score():
    rng = np.random.default_rng(1)
    for rule, scale in [("clmle", 1.0), ("clmle", 30.0), ("lmle", 1.0)]:
        sim = rng.uniform(-1, 1, (200, 6))
        sim[:, 0] = -1.0  # extreme values
        sim[:, 1] = 1.0
        cls = rng.integers(0, 4, (200, 6))
        scores, nearest = class_scores(sim, cls, 6, rule, scale)
        present = np.isfinite(nearest)
        assert scores[present].min() > absent_score(rule, scale, 6)
        assert (scores[~present] == absent_score(rule, scale, 6)).all()


def test_large_scale_agrees_with_lmle():
    rng = np.random.default_rng(2)
    sim = rng.uniform(-1, 1, (500, 10))
    cls = rng.integers(0, 3, (500, 10))
    hard, nearest = class_scores(sim, cls, 3, "lmle")
    soft, _ = class_scores(sim, cls, 3, "clmle", scale=1e4)
    present = np.isfinite(nearest)
    np.testing.assert_allclose(soft[present] / 1e4, hard[present] / 2, atol=1e-3)


def test_eq10_prefers_class_whose_least_similar_cluster_wins():
    # Class 0 has one very close and one far cluster; class 1 two medium ones.
    sim = np.array([[0.95, 0.6, 0.5, -0.2]])
    cls = np.array([[0, 1, 1, 0]])
    scores, _ = class_scores(sim, cls, 2, "clmle", 1.0)
    # Class 0: min own -0.2 against LSE(0.6, 0.5); class 1: 0.5 against LSE(0.95, -0.2).
    assert scores[0, 1] > scores[0, 0]


def test_ties_break_by_nearest_then_rarer_class_not_label():
    scores = np.array([[1.0, 1.0], [1.0, 1.0], [0.5, 1.0]])
    nearest = np.array([[0.2, 0.9], [0.5, 0.5], [0.9, 0.1]])
    # Row 0: nearest cluster decides (class 1); row 1: rarer class (class 0 here).
    np.testing.assert_array_equal(break_ties(scores, nearest, [10, 50]), [1, 0, 1])
    # Swapping which class is rarer swaps the answer of the pure tie.
    np.testing.assert_array_equal(break_ties(scores, nearest, [50, 10]), [1, 1, 1])


def test_proba_rows_sum_to_one_and_absent_zero():
    rng = np.random.default_rng(3)
    sim = rng.uniform(-1, 1, (100, 5))
    cls = rng.integers(0, 6, (100, 5))
    scores, nearest = class_scores(sim, cls, 6)
    proba = scores_to_proba(scores, np.isfinite(nearest))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert (proba[~np.isfinite(nearest)] == 0).all()
    np.testing.assert_array_equal(proba.argmax(axis=1), scores.argmax(axis=1))
