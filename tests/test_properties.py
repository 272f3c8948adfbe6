"""Property tests: random small valid problems always fit and give finite output.

Few classes, tiny classes (down to one row), duplicate rows, constant
features, wide value ranges and label kinds are drawn by hypothesis. Inputs
on a scale of 1e3 are what a user gets without a scaler: there SGD may
diverge, and the only acceptable failure is the clear FloatingPointError
that says so (tests/test_bad_input.py covers invalid input).
"""

import contextlib

import numpy as np
from _estimators import FAST_PARAMS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.pipeline import make_pipeline

from sklearn_clmle import (
    CLMLEEmbedder,
    CrossEntropyClassifier,
    KNearestClusterClassifier,
)

SETTINGS = settings(
    max_examples=25, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)


@st.composite
def problems(draw):
    """(X, y) of 2-4 classes with 1-12 rows each, 1-6 features."""
    sizes = draw(st.lists(st.integers(1, 12), min_size=2, max_size=4))
    n_features = draw(st.integers(1, 6))
    seed = draw(st.integers(0, 2**16))
    scale = draw(st.sampled_from([1e-3, 1.0, 1e3]))
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(sum(sizes), n_features)) * scale
    if draw(st.booleans()):  # duplicate rows, within and across classes
        n_dup = draw(st.integers(1, X.shape[0]))
        X[rng.integers(0, X.shape[0], n_dup)] = X[rng.integers(0, X.shape[0])]
    if draw(st.booleans()):  # a constant feature
        X[:, draw(st.integers(0, n_features - 1))] = draw(st.sampled_from([0.0, 5.0]))
    labels = draw(st.sampled_from([
        np.arange(len(sizes)), np.array(["b", "a", "c", "d"][:len(sizes)]),
        np.array([-3, 10, 7, 0][:len(sizes)]),
    ]))
    y = np.repeat(labels, sizes)
    order = rng.permutation(y.size)
    return X[order], y[order]


@contextlib.contextmanager
def diverges_only_if_unscaled(X):
    """Fitting must succeed on data of moderate scale; on raw data of scale
    ~1e3 a FloatingPointError naming the cure is allowed."""
    try:
        yield
    except FloatingPointError as exc:
        assert np.abs(X).max() > 100, "diverged on moderately scaled data"
        assert "StandardScaler" in str(exc) and "max_grad_norm" in str(exc)


def _check_classifier_output(est, X, y):
    pred = est.predict(X)
    assert pred.shape == y.shape and np.isin(pred, np.unique(y)).all()
    proba = est.predict_proba(X)
    assert proba.shape == (len(y), np.unique(y).size)
    assert np.isfinite(proba).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)


@SETTINGS
@given(problems())
def test_embedder_fits_and_embeds(problem):
    X, y = problem
    emb = CLMLEEmbedder(**FAST_PARAMS)
    with diverges_only_if_unscaled(X):
        emb.fit(X, y)
    if not hasattr(emb, "module_"):
        return
    Z = emb.transform(X)
    assert Z.shape == (len(y), FAST_PARAMS["embedding_dim"])
    assert np.isfinite(Z).all()
    np.testing.assert_allclose(np.linalg.norm(Z, axis=1), 1.0, atol=1e-5)
    assert emb.cluster_labels_.shape == y.shape
    assert np.isfinite(emb.cluster_centers_).all()


@SETTINGS
@given(problems(), st.integers(1, 6), st.sampled_from(["clmle", "lmle"]))
def test_classifier_fits_and_predicts(problem, n_neighbors, rule):
    X, y = problem
    clf = KNearestClusterClassifier(n_neighbors, cluster_size=3, rule=rule, random_state=0)
    _check_classifier_output(clf.fit(X, y), X, y)


@SETTINGS
@given(problems())
def test_pipeline_and_cross_entropy_fit_and_predict(problem):
    X, y = problem
    pipe = make_pipeline(CLMLEEmbedder(**FAST_PARAMS),
                         KNearestClusterClassifier(3, cluster_size=2, random_state=0))
    ce = CrossEntropyClassifier(max_iter=3, embedding_dim=4, random_state=0, n_threads=1)
    for est in (pipe, ce):
        with diverges_only_if_unscaled(X):
            est.fit(X, y)
            _check_classifier_output(est, X, y)
