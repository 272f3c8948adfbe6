"""CrossEntropyClassifier: the cross-entropy baselines."""

import pickle

import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import recall_score

from sklearn_clmle import CrossEntropyClassifier

PARAMS = dict(max_epochs=75, embedding_dim=8, backbone_kwargs={"hidden_layer_sizes": (32,)},
              random_state=0, n_threads=1)


@pytest.fixture(scope="module")
def imbalanced():
    """Two overlapping blobs, 20:1, plus a balanced test set."""
    X, y = make_blobs([400, 20], centers=[[0, 0], [1.5, 0]], cluster_std=1.0,
                      random_state=0)
    Xt, yt = make_blobs([500, 500], centers=[[0, 0], [1.5, 0]], cluster_std=1.0,
                        random_state=1)
    return X, y, Xt, yt


def _minority_recall(clf, Xt, yt):
    return recall_score(yt, clf.predict(Xt), pos_label=1)


def test_adjustments_raise_minority_recall(imbalanced):
    """Both adjustments move the boundary toward the majority class."""
    X, y, Xt, yt = imbalanced
    plain = _minority_recall(CrossEntropyClassifier(**PARAMS).fit(X, y), Xt, yt)
    weighted = _minority_recall(
        CrossEntropyClassifier(class_weight="balanced", **PARAMS).fit(X, y), Xt, yt
    )
    adjusted = _minority_recall(
        CrossEntropyClassifier(logit_adjustment=1.0, **PARAMS).fit(X, y), Xt, yt
    )
    assert weighted > plain + 0.2
    assert adjusted > plain + 0.2


def test_balanced_equals_explicit_weights(imbalanced):
    X, y, Xt, _ = imbalanced
    counts = np.bincount(y)
    explicit = {c: len(y) / (2 * counts[c]) for c in (0, 1)}
    a = CrossEntropyClassifier(class_weight="balanced", **PARAMS).fit(X, y)
    b = CrossEntropyClassifier(class_weight=explicit, **PARAMS).fit(X, y)
    np.testing.assert_allclose(a.predict_proba(Xt), b.predict_proba(Xt), rtol=1e-5)


def test_unit_weights_equal_no_weights(imbalanced):
    X, y, Xt, _ = imbalanced
    a = CrossEntropyClassifier(**PARAMS).fit(X, y)
    b = CrossEntropyClassifier(class_weight={0: 1.0, 1: 1.0}, **PARAMS).fit(X, y)
    np.testing.assert_allclose(a.decision_function(Xt), b.decision_function(Xt),
                               rtol=1e-5, atol=1e-6)


def test_unknown_class_weight_label_is_an_error(imbalanced):
    X, y, _, _ = imbalanced
    with pytest.raises(ValueError, match="class_weight has labels"):
        CrossEntropyClassifier(class_weight={0: 1.0, 7: 2.0}, **PARAMS).fit(X, y)


def test_prior_and_history(imbalanced):
    X, y, _, _ = imbalanced
    clf = CrossEntropyClassifier(**PARAMS).fit(X, y)
    np.testing.assert_allclose(clf.class_prior_, [400 / 420, 20 / 420])
    assert clf.loss_curve_.shape == (75,) and clf.n_iter_ == 75
    assert clf.n_steps_ == 75 * 2  # 420 rows in batches of 240
    assert [row["epoch"] for row in clf.history_] == list(range(1, 76))
    assert clf.loss_curve_[-10:].mean() < clf.loss_curve_[:10].mean()
    assert clf.validation_scores_ is None and clf.best_epoch_ is None


def test_multiclass_outputs_and_pickle():
    X, y = make_blobs(300, centers=4, random_state=0)
    labels = np.array(["a", "b", "c", "d"])[y]
    clf = CrossEntropyClassifier(logit_adjustment=1.0, **PARAMS).fit(X, labels)
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert clf.decision_function(X).shape == (300, 4)
    np.testing.assert_array_equal(clf.classes_[proba.argmax(1)], clf.predict(X))
    assert clf.score(X, labels) > 0.9
    clone = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(clone.predict_proba(X), proba)


def test_same_seed_same_model(imbalanced):
    X, y, Xt, _ = imbalanced
    a = CrossEntropyClassifier(**PARAMS).fit(X, y).decision_function(Xt)
    b = CrossEntropyClassifier(**PARAMS).fit(X, y).decision_function(Xt)
    np.testing.assert_array_equal(a, b)


def test_divergence_is_a_clear_error_and_keeps_previous_fit(imbalanced):
    X, y, Xt, _ = imbalanced
    clf = CrossEntropyClassifier(**PARAMS).fit(X, y)
    before = clf.predict_proba(Xt)
    with pytest.raises(FloatingPointError, match="learning_rate"):
        clf.set_params(learning_rate=1e8).fit(X * 1e6, y)
    np.testing.assert_array_equal(clf.predict_proba(Xt), before)
