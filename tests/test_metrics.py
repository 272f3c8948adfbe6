"""sklearn_clmle.metrics: verification protocol and multi-label balanced accuracy."""

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose, assert_array_equal
from scipy.spatial.distance import cdist
from sklearn.datasets import make_multilabel_classification
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score, roc_curve
from sklearn.metrics.pairwise import cosine_similarity
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.multioutput import MultiOutputClassifier

from sklearn_clmle import metrics
from sklearn_clmle.metrics import (
    make_pairs,
    mean_balanced_accuracy,
    mean_balanced_accuracy_scorer,
    pair_similarity,
    per_label_rates,
    rank1_identification,
    true_accept_rate,
    verification_accuracy,
    verification_roc_curve,
)

ROOT = Path(__file__).resolve().parents[1]


def _scored_pairs(n_pairs=400, seed=0, decimals=None):
    """Genuine scores shifted above impostor scores; rounding makes ties."""
    rng = np.random.RandomState(seed)
    is_same = rng.rand(n_pairs) < 0.5
    scores = rng.randn(n_pairs) + 1.5 * is_same
    if decimals is not None:
        scores = np.round(scores, decimals)
    return is_same, scores


# -- make_pairs -----------------------------------------------------------------------


def test_make_pairs_genuine_and_impostor_halves_without_duplicates():
    y = np.repeat(np.arange(8), [2, 3, 5, 8, 10, 12, 20, 40])
    pairs, is_same = make_pairs(y, 301, random_state=0)
    assert pairs.shape == (301, 2) and pairs.dtype == np.int64
    assert is_same.shape == (301,) and is_same.dtype == bool
    assert is_same.sum() == 150  # n_pairs // 2 genuine, the rest impostor
    assert np.all((y[pairs[:, 0]] == y[pairs[:, 1]]) == is_same)
    assert np.all(pairs[:, 0] != pairs[:, 1])
    assert pairs.min() >= 0 and pairs.max() < y.size
    unordered = {tuple(sorted(p)) for p in pairs.tolist()}
    assert len(unordered) == 301
    # Genuine and impostor pairs are mixed, not one block after the other.
    assert 0 < is_same[:150].sum() < 150


def test_make_pairs_accepts_any_labels():
    y = np.array(["ann", "bob", "ann", "cy", "bob"])
    pairs, is_same = make_pairs(y, 4, random_state=1)
    assert np.all((y[pairs[:, 0]] == y[pairs[:, 1]]) == is_same)


def test_make_pairs_is_reproducible_from_random_state():
    y = np.repeat(np.arange(5), 10)
    first = make_pairs(y, 50, random_state=3)
    second = make_pairs(y, 50, random_state=np.random.RandomState(3))
    other = make_pairs(y, 50, random_state=4)
    assert_array_equal(first[0], second[0])
    assert_array_equal(first[1], second[1])
    assert not np.array_equal(first[0], other[0])


def test_make_pairs_takes_every_distinct_pair_when_exactly_enough():
    y = np.array([0, 0, 0, 1, 1])  # 4 genuine pairs, 6 impostor pairs exist
    pairs, is_same = make_pairs(y, 8, random_state=0)
    genuine = {tuple(sorted(p)) for p in pairs[is_same].tolist()}
    assert genuine == {(0, 1), (0, 2), (1, 2), (3, 4)}


def test_make_pairs_warns_and_repeats_when_too_few_distinct_pairs():
    y = np.array([0, 0, 1])  # 1 genuine pair, 2 impostor pairs exist
    with pytest.warns(UserWarning, match="only 1 distinct genuine pairs exist"), \
            pytest.warns(UserWarning, match="only 2 distinct impostor pairs exist"):
        pairs, is_same = make_pairs(y, 6, random_state=0)
    assert is_same.sum() == 3
    assert {tuple(sorted(p)) for p in pairs[is_same].tolist()} == {(0, 1)}
    assert {tuple(sorted(p)) for p in pairs[~is_same].tolist()} == {(0, 2), (1, 2)}


@pytest.mark.parametrize(
    "y, n_pairs, error, match",
    [
        ([1, 1, 1], 4, ValueError, "at least 2 classes"),
        ([0, 1, 2], 4, ValueError, "class with at least 2 rows"),
        ([0, 0, 1], 1, ValueError, "n_pairs must be >= 2"),
        ([0, 0, 1], 4.0, TypeError, "n_pairs must be an int"),
    ],
)
def test_make_pairs_errors(y, n_pairs, error, match):
    with pytest.raises(error, match=match):
        make_pairs(y, n_pairs)


# -- pair_similarity ------------------------------------------------------------------


def test_pair_similarity_hand_checked():
    X = [[3.0, 4.0], [6.0, 8.0], [0.0, 0.0], [-4.0, 3.0]]
    pairs = [[0, 1], [0, 2], [0, 3], [1, 3]]
    assert_allclose(pair_similarity(X, pairs), [1.0, 0.0, 0.0, 0.0], atol=1e-12)
    assert_allclose(pair_similarity(X, pairs, metric="euclidean"),
                    [-5.0, -5.0, -np.sqrt(50), -np.sqrt(125)])


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_pair_similarity_matches_pairwise(metric):
    rng = np.random.RandomState(0)
    X = rng.randn(30, 5).astype(np.float32)
    pairs = rng.randint(30, size=(200, 2))
    scores = pair_similarity(X, pairs, metric=metric)
    X64 = X.astype(np.float64)
    full = cosine_similarity(X64) if metric == "cosine" else -cdist(X64, X64)
    assert scores.dtype == np.float64 and scores.shape == (200,)
    assert_allclose(scores, full[pairs[:, 0], pairs[:, 1]], atol=1e-12)


@pytest.mark.parametrize(
    "pairs, match",
    [
        ([[0, 1, 2]], r"shape \(n_pairs, 2\)"),
        ([0, 1], r"shape \(n_pairs, 2\)"),
        ([[0.0, 1.0]], "integer array"),
        ([[0, 3]], "row index 3, outside.*n_samples=3"),
        ([[-1, 0]], "row index -1, outside.*n_samples=3"),
    ],
)
def test_pair_similarity_bad_pairs(pairs, match):
    with pytest.raises(ValueError, match=match):
        pair_similarity(np.eye(3), pairs)


def test_pair_similarity_unknown_metric():
    with pytest.raises(ValueError, match="metric must be one of"):
        pair_similarity(np.eye(3), [[0, 1]], metric="manhattan")


# -- verification ROC, TAR @ FAR ----------------------------------------------------------


def test_verification_roc_curve_is_roc_curve_without_dropping():
    is_same, scores = _scored_pairs(decimals=1)
    far, tar, thresholds = verification_roc_curve(is_same.astype(int), scores)
    expected = roc_curve(is_same, scores, drop_intermediate=False)
    for got, want in zip((far, tar, thresholds), expected):
        assert_array_equal(got, want)
    assert thresholds.size == np.unique(scores).size + 1


@pytest.mark.parametrize(
    "is_same, match",
    [
        ([True, True, True], r"only genuine \(True\) pairs"),
        ([0, 0, 0], r"only impostor \(False\) pairs"),
        ([0, 1, 2], "must hold booleans"),
    ],
)
def test_verification_needs_both_kinds_of_pairs(is_same, match):
    for function in (verification_roc_curve, true_accept_rate, verification_accuracy):
        with pytest.raises(ValueError, match=match):
            function(is_same, [0.1, 0.2, 0.3])


def test_verification_length_mismatch():
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        verification_roc_curve([True, False], [0.1, 0.2, 0.3])


def _brute_force_tar(is_same, scores, far):
    """Largest TAR over every threshold ``score >= t`` with FAR <= far."""
    best = 0.0
    for t in np.concatenate([np.unique(scores), [np.inf]]):
        accepted = scores >= t
        if accepted[~is_same].mean() <= far:
            best = max(best, accepted[is_same].mean())
    return best


@pytest.mark.parametrize("decimals", [None, 1])
def test_true_accept_rate_matches_brute_force_and_roc(decimals):
    is_same, scores = _scored_pairs(decimals=decimals)
    far = [0.5, 0.29, 0.1, 0.05, 0.01]
    tar = true_accept_rate(is_same, scores, far=far)
    assert tar.shape == (5,)
    fpr, tpr, _ = roc_curve(is_same, scores, drop_intermediate=False)
    for f, t in zip(far, tar):
        assert t == pytest.approx(_brute_force_tar(is_same, scores, f))
        assert t == pytest.approx(tpr[fpr <= f].max())
    assert np.all(np.diff(tar) <= 0)


def test_true_accept_rate_hand_checked_with_ties():
    # Impostors 0.5 and 0.5 tie: accepting one accepts both, so at FAR 1/4
    # the threshold must lie above 0.5 and the genuine 0.5 is rejected too.
    is_same = [1, 1, 1, 0, 0, 0, 0]
    scores = [0.9, 0.5, 0.3, 0.5, 0.5, 0.2, 0.1]
    assert true_accept_rate(is_same, scores, far=0.25) == pytest.approx(1 / 3)
    assert true_accept_rate(is_same, scores, far=0.49) == pytest.approx(1 / 3)
    assert true_accept_rate(is_same, scores, far=0.5) == pytest.approx(1.0)  # t = 0.3


def test_true_accept_rate_scalar_far_gives_a_float():
    is_same, scores = _scored_pairs()
    tar = true_accept_rate(is_same, scores, far=0.1)
    assert isinstance(tar, float)
    assert tar == true_accept_rate(is_same, scores, far=[0.1])[0]


def test_true_accept_rate_warns_below_one_impostor():
    is_same, scores = _scored_pairs(n_pairs=100)
    n_impostor = int((~is_same).sum())
    with pytest.warns(UserWarning, match=f"only {n_impostor} impostor pairs"):
        tar = true_accept_rate(is_same, scores, far=[0.1, 1e-3])
    at_zero = np.mean(scores[is_same] > scores[~is_same].max())
    assert tar[1] == pytest.approx(at_zero)


@pytest.mark.parametrize("far", [0.0, 1.0, -0.1, 1.5, np.nan, [0.1, 1.0], "high", []])
def test_true_accept_rate_bad_far(far):
    is_same, scores = _scored_pairs(n_pairs=50)
    with pytest.raises(ValueError, match="far must"):
        true_accept_rate(is_same, scores, far=far)


# -- verification accuracy --------------------------------------------------------------------


def _brute_force_accuracy(is_same, scores, n_folds, random_state):
    folds = StratifiedKFold(n_folds, shuffle=True, random_state=random_state)
    accuracies = []
    for train, test in folds.split(scores, is_same):
        values = np.unique(scores[train])
        candidates = [-np.inf] + [(a + b) / 2 for a, b in zip(values[:-1], values[1:])]
        candidates.append(np.inf)
        best_t, best_acc = None, -1.0
        for t in candidates:  # in increasing order: the lowest best one is kept
            acc = np.mean((scores[train] >= t) == is_same[train])
            if acc > best_acc:
                best_t, best_acc = t, acc
        accuracies.append(np.mean((scores[test] >= best_t) == is_same[test]))
    return np.mean(accuracies), np.std(accuracies)


@pytest.mark.parametrize("decimals", [None, 1])
def test_verification_accuracy_matches_brute_force(decimals):
    is_same, scores = _scored_pairs(n_pairs=300, decimals=decimals)
    mean, std = verification_accuracy(is_same, scores, random_state=0)
    assert isinstance(mean, float) and isinstance(std, float)
    want = _brute_force_accuracy(is_same, scores, 10, 0)
    assert mean == pytest.approx(want[0]) and std == pytest.approx(want[1])
    assert 0.7 < mean < 0.9  # two unit Gaussians 1.5 apart: about 0.77


def test_verification_accuracy_separable_and_reproducible():
    is_same = np.repeat([True, False], 20)
    scores = np.where(is_same, 1.0, -1.0) + np.linspace(0, 0.5, 40)
    assert verification_accuracy(is_same, scores, random_state=0) == (1.0, 0.0)
    noisy = _scored_pairs(n_pairs=200)
    first = verification_accuracy(*noisy, n_folds=5, random_state=1)
    assert first == verification_accuracy(*noisy, n_folds=5, random_state=1)


def test_verification_accuracy_errors():
    is_same, scores = _scored_pairs(n_pairs=12)
    with pytest.raises(ValueError, match="needs at least 10 genuine and 10 impostor"):
        verification_accuracy(is_same, scores)
    with pytest.raises(ValueError, match="n_folds must be >= 2"):
        verification_accuracy(is_same, scores, n_folds=1)


# -- rank-1 identification --------------------------------------------------------------------


def test_rank1_identification_hand_checked():
    gallery = [[1.0, 0.0], [0.0, 1.0], [10.0, 10.0]]
    labels = ["a", "b", "c"]
    probes = [[0.9, 0.1], [0.2, 0.8], [1.0, 1.1], [5.0, 5.0]]
    truth = ["a", "b", "b", "z"]  # "z" is not enrolled: always a miss
    # Cosine: [1, 1.1] points nearly along [10, 10] ("c"): a miss.
    assert rank1_identification(gallery, labels, probes, truth) == pytest.approx(2 / 4)
    # Euclidean: [1, 1.1] is nearest [0, 1] ("b"): a hit.
    assert rank1_identification(gallery, labels, probes, truth,
                                metric="euclidean") == pytest.approx(3 / 4)
    assert rank1_identification(gallery, labels, probes[:2], truth[:2]) == 1.0


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_rank1_identification_matches_brute_force_over_chunks(metric):
    rng = np.random.RandomState(0)
    centres = rng.randn(20, 8)
    gallery_labels = np.repeat(np.arange(20), 3)
    gallery = centres[gallery_labels] + 0.8 * rng.randn(60, 8)
    probe_labels = rng.randint(20, size=2500)  # three chunks of 1024
    probes = centres[probe_labels] + 0.8 * rng.randn(2500, 8)
    distance = cdist(probes, gallery, "cosine" if metric == "cosine" else "euclidean")
    want = np.mean(gallery_labels[distance.argmin(axis=1)] == probe_labels)
    got = rank1_identification(gallery, gallery_labels, probes, probe_labels, metric=metric)
    assert got == pytest.approx(want)
    assert 0.3 < got < 1.0


@pytest.mark.parametrize(
    "args, match",
    [
        ((np.ones((3, 2)), [0, 1, 2], np.ones((2, 3)), [0, 1]), "gallery has 2 features"),
        ((np.ones((0, 2)), [], np.ones((2, 2)), [0, 1]), "gallery is empty"),
        ((np.ones((3, 2)), [0, 1, 2], np.ones((0, 2)), []), "probes is empty"),
        ((np.ones((3, 2)), [0, 1], np.ones((2, 2)), [0, 1]),
         "gallery has 3 rows but gallery_labels has 2"),
        ((np.ones((3, 2)), [0, 1, 2], np.ones((2, 2)), [0]),
         "probes has 2 rows but probe_labels has 1"),
    ],
)
def test_rank1_identification_errors(args, match):
    with pytest.raises(ValueError, match=match):
        rank1_identification(*args)


def test_rank1_identification_unknown_metric():
    with pytest.raises(ValueError, match="metric must be one of"):
        rank1_identification(np.eye(2), [0, 1], np.eye(2), [0, 1], metric="l1")


# -- multi-label --------------------------------------------------------------------------------


def _indicators(seed=0, n=200, n_labels=6):
    rng = np.random.RandomState(seed)
    rates = np.linspace(0.5, 0.05, n_labels)
    y_true = (rng.rand(n, n_labels) < rates).astype(int)
    flip = rng.rand(n, n_labels) < 0.2
    return y_true, np.where(flip, 1 - y_true, y_true)


def test_per_label_rates_hand_checked():
    y_true = [[1, 0, 1], [1, 1, 0], [0, 0, 1], [0, 0, 0]]
    y_pred = [[1, 0, 0], [0, 1, 0], [0, 1, 1], [0, 0, 1]]
    rates = per_label_rates(y_true, y_pred)
    assert set(rates) == {"tpr", "tnr", "balanced_accuracy", "positive_rate"}
    assert_allclose(rates["tpr"], [1 / 2, 1, 1 / 2])
    assert_allclose(rates["tnr"], [1, 2 / 3, 1 / 2])
    assert_allclose(rates["balanced_accuracy"], [3 / 4, 5 / 6, 1 / 2])
    assert_allclose(rates["positive_rate"], [1 / 2, 1 / 4, 1 / 2])
    assert mean_balanced_accuracy(y_true, y_pred) == pytest.approx((3 / 4 + 5 / 6 + 1 / 2) / 3)


def test_mean_balanced_accuracy_is_the_mean_of_sklearn_per_column():
    y_true, y_pred = _indicators()
    per_column = [balanced_accuracy_score(y_true[:, j], y_pred[:, j])
                  for j in range(y_true.shape[1])]
    assert_allclose(per_label_rates(y_true, y_pred)["balanced_accuracy"], per_column)
    assert mean_balanced_accuracy(y_true, y_pred) == pytest.approx(np.mean(per_column))
    sparse = mean_balanced_accuracy(sp.csr_matrix(y_true), sp.csr_matrix(y_pred))
    assert sparse == pytest.approx(np.mean(per_column))
    boolean = mean_balanced_accuracy(y_true.astype(bool), y_pred.astype(bool))
    assert boolean == pytest.approx(np.mean(per_column))


@pytest.mark.parametrize(
    "y_true, y_pred",
    [([0, 1, 1, 0, 1], [0, 1, 0, 0, 1]), ([0, 1, 2, 2, 1, 0], [0, 2, 2, 1, 1, 0]),
     (["cat", "dog", "dog"], ["cat", "cat", "dog"])],
)
def test_mean_balanced_accuracy_on_1d_is_sklearns(y_true, y_pred):
    assert mean_balanced_accuracy(y_true, y_pred) == pytest.approx(
        balanced_accuracy_score(y_true, y_pred))


@pytest.mark.parametrize(
    "y_true, y_pred, match",
    [
        (np.eye(3, dtype=int), np.eye(3, dtype=int)[:, :2], "same shape"),
        ([0, 1, 1], [[0], [1], [1]], "same shape"),
        ([[0, 2], [1, 0]], [[0, 1], [1, 0]], r"y_true must be a binary indicator.*\[0, 1, 2\]"),
        ([[0, 1], [1, 0]], [[0.5, 1], [1, 0]], "y_pred must be a binary indicator"),
        ([[0, 1], [1, 1], [0, 1]], [[0, 1], [1, 1], [0, 0]],
         "column 1 of y_true holds only 1s, so its TNR.*drop the column"),
        ([[0, 0], [1, 0], [0, 0]], [[0, 1], [1, 1], [0, 0]],
         "column 1 of y_true holds only 0s, so its TPR.*drop the column"),
    ],
)
def test_mean_balanced_accuracy_errors(y_true, y_pred, match):
    with pytest.raises(ValueError, match=match):
        mean_balanced_accuracy(y_true, y_pred)


def test_per_label_rates_needs_2d():
    with pytest.raises(ValueError, match=r"reshape\(-1, 1\)"):
        per_label_rates([0, 1, 1], [0, 1, 0])


def test_scorer_in_grid_search_on_multilabel_targets():
    X, Y = make_multilabel_classification(n_samples=120, n_features=6, n_classes=3,
                                          random_state=0)
    assert np.all((Y.mean(axis=0) > 0.1) & (Y.mean(axis=0) < 0.9))
    model = MultiOutputClassifier(LogisticRegression())
    search = GridSearchCV(model, {"estimator__C": [0.01, 1.0]}, cv=3,
                          scoring=mean_balanced_accuracy_scorer, error_score="raise")
    search.fit(X, Y)
    assert 0.5 < search.best_score_ <= 1.0
    assert search.score(X, Y) == pytest.approx(mean_balanced_accuracy(Y, search.predict(X)))
    with pytest.raises(ValueError):  # what the scorer is for
        GridSearchCV(model, {"estimator__C": [1.0]}, cv=3, scoring="balanced_accuracy",
                     error_score="raise").fit(X, Y)


def test_public_names_are_documented():
    api = (ROOT / "docs" / "api.rst").read_text()
    for name in metrics.__all__:
        assert name in api, name
        obj = getattr(metrics, name)
        if callable(obj) and name != "mean_balanced_accuracy_scorer":
            assert "\n    Examples\n    --------\n    >>> " in obj.__doc__, name
