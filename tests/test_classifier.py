import math
import pickle

import numpy as np
import pytest
from _estimators import FAST_PARAMS
from imblearn.over_sampling import SMOTE
from imblearn.pipeline import Pipeline as ImbPipeline
from sklearn.datasets import make_blobs, make_classification
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV
from sklearn.preprocessing import StandardScaler

from sklearn_clmle import CLMLEEmbedder, KNearestClusterClassifier
from sklearn_clmle._clustering import normalize_rows


@pytest.fixture(scope="module")
def data():
    return make_classification(
        400, n_features=6, n_informative=4, n_classes=3, weights=[0.6, 0.3, 0.1],
        random_state=0,
    )


def brute_force_eq10(X_train, y_train, X_query, n_neighbors, scale=1.0):
    """Eq. 10 with every training sample as a cluster, one query at a time."""
    A, Q = normalize_rows(X_train), normalize_rows(X_query)
    out = []
    for q in Q:
        s = A @ q
        nn = np.argsort(-s, kind="stable")[:n_neighbors]
        best, best_c = -np.inf, None
        for c in np.unique(y_train[nn]):
            own = s[nn][y_train[nn] == c]
            other = s[nn][y_train[nn] != c]
            lse = math.log(np.exp(scale * other).sum()) if other.size else -scale
            score = scale * own.min() - lse
            if score > best:
                best, best_c = score, c
        out.append(best_c)
    return np.array(out)


@pytest.mark.parametrize("n_neighbors, scale", [(1, 1.0), (7, 1.0), (15, 5.0)])
def test_cluster_size_one_matches_brute_force(data, n_neighbors, scale):
    X, y = data
    clf = KNearestClusterClassifier(n_neighbors, cluster_size=1, scale=scale,
                                    prior_adjustment=0.0).fit(X, y)
    assert clf.cluster_centers_.shape == X.shape
    np.testing.assert_array_equal(
        clf.predict(X[:80] + 0.1), brute_force_eq10(X, y, X[:80] + 0.1, n_neighbors, scale)
    )


def test_clusters_and_attributes(data):
    X, y = data
    clf = KNearestClusterClassifier(cluster_size=30, n_neighbors=500).fit(X, y)
    counts = np.bincount(y)
    np.testing.assert_array_equal(clf.class_counts_, counts)
    np.testing.assert_array_equal(clf.n_clusters_per_class_, np.maximum(1, counts // 30))
    assert clf.n_neighbors_ == clf.cluster_centers_.shape[0]  # clipped
    np.testing.assert_allclose(np.linalg.norm(clf.cluster_centers_, axis=1), 1.0, rtol=1e-5)
    assert clf.algorithm_ == "brute"
    assert clf.cluster_size_ == 30


def test_prediction_is_among_retrieved_classes(data):
    X, y = data
    clf = KNearestClusterClassifier(3, cluster_size=10).fit(X, y)
    _, idx = clf.kneighbors(X)
    retrieved = clf.cluster_classes_[idx]
    pred = clf.predict(X)
    assert all(p in r for p, r in zip(pred, retrieved))
    one_class = (retrieved == retrieved[:, :1]).all(axis=1)
    np.testing.assert_array_equal(pred[one_class], retrieved[one_class, 0])


def test_proba_and_decision_function(data):
    X, y = data
    clf = KNearestClusterClassifier(5, cluster_size=10).fit(X, y)
    proba = clf.predict_proba(X)
    dec = clf.decision_function(X)
    assert proba.shape == dec.shape == (400, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    _, idx = clf.kneighbors(X)
    for row, ids in zip(proba, clf._cluster_class[idx]):
        assert (row[np.setdiff1d(np.arange(3), ids)] == 0).all()
    np.testing.assert_array_equal(clf.classes_[proba.argmax(axis=1)], clf.predict(X))
    assert roc_auc_score(y, proba, multi_class="ovr") > 0.5


def test_binary_decision_function_is_one_dimensional():
    X, y = make_classification(300, n_features=5, weights=[0.85], random_state=1)
    clf = KNearestClusterClassifier(10, cluster_size=10).fit(X, y)
    dec = clf.decision_function(X)
    assert dec.shape == (300,)
    assert roc_auc_score(y, dec) > 0.7
    np.testing.assert_array_equal((dec > 0).astype(int), clf.predict(X))


def test_lmle_rule_brute_force(data):
    X, y = data
    clf = KNearestClusterClassifier(6, cluster_size=1, rule="lmle").fit(X, y)
    A, Q = normalize_rows(X), normalize_rows(X[:50] * 1.3 + 0.2)
    expected = []
    for q in Q:
        d = ((A - q) ** 2).sum(axis=1)
        nn = np.argsort(d, kind="stable")[:6]
        scores = {}
        for c in np.unique(y[nn]):
            other = d[nn][y[nn] != c]
            scores[c] = (other.min() if other.size else 4.0) - d[nn][y[nn] == c].max()
        expected.append(max(scores, key=scores.get))
    np.testing.assert_array_equal(clf.predict(X[:50] * 1.3 + 0.2), expected)


def test_ties_do_not_favour_lowest_label():
    # Two classes, mirror images: each query is equidistant from both.
    X = np.array([[1.0, 0.5], [1.0, 0.5], [1.0, -0.5], [1.0, -0.5], [1.0, -0.5]])
    y = np.array([0, 0, 1, 1, 1])
    clf = KNearestClusterClassifier(2, cluster_size=2).fit(X, y)
    # Class 0 has 2 samples, class 1 has 3: the exact tie goes to the rarer class.
    assert clf.predict([[1.0, 0.0]])[0] == 0
    clf = KNearestClusterClassifier(2, cluster_size=2).fit(X, 1 - y)
    assert clf.predict([[1.0, 0.0]])[0] == 1


def test_backends_agree(data):
    X, y = data
    preds = {
        alg: KNearestClusterClassifier(5, cluster_size=5, algorithm=alg, random_state=0)
        .fit(X, y)
        .predict(X)
        for alg in ("brute", "kd_tree", "auto")
    }
    np.testing.assert_array_equal(preds["brute"], preds["kd_tree"])
    np.testing.assert_array_equal(preds["brute"], preds["auto"])


def test_nndescent_agrees_with_brute_on_thousands_of_centroids():
    pytest.importorskip("pynndescent")
    X, y = make_blobs(3000, n_features=8, centers=12, cluster_std=3.0, random_state=0)
    Q = X[:1000] + np.random.default_rng(0).normal(scale=0.5, size=(1000, 8))
    brute = KNearestClusterClassifier(20, cluster_size=1).fit(X, y)
    approx = KNearestClusterClassifier(
        20, cluster_size=1, algorithm="nndescent", random_state=0
    ).fit(X, y)
    assert approx.algorithm_ == "nndescent"
    agreement = (brute.predict(Q) == approx.predict(Q)).mean()
    assert agreement >= 0.99, agreement


def test_pickle_roundtrip(data):
    X, y = data
    clf = KNearestClusterClassifier(5, cluster_size=10, algorithm="kd_tree").fit(X, y)
    proba = clf.predict_proba(X)
    loaded = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(loaded.predict_proba(X), proba)


def test_string_labels_and_pandas(data):
    pd = pytest.importorskip("pandas")
    X, y = data
    df = pd.DataFrame(X, columns=[f"c{i}" for i in range(6)])
    labels = np.array(["rare", "mid", "common"])[y]
    clf = KNearestClusterClassifier(5, cluster_size=10).fit(df, pd.Series(labels))
    np.testing.assert_array_equal(clf.classes_, ["common", "mid", "rare"])
    assert set(clf.predict(df)) <= set(labels)
    np.testing.assert_array_equal(clf.feature_names_in_, df.columns)


def test_after_embedder_in_pipelines(data):
    X, y = data
    pipe = ImbPipeline([
        ("scale", StandardScaler()),
        ("smote", SMOTE(random_state=0)),
        ("embed", CLMLEEmbedder(**FAST_PARAMS)),
        ("knc", KNearestClusterClassifier(5, cluster_size=10)),
    ])
    grid = GridSearchCV(
        pipe, {"knc__n_neighbors": [1, 5]}, scoring="balanced_accuracy", cv=2
    ).fit(X, y)
    assert grid.best_params_["knc__n_neighbors"] in (1, 5)
    np.testing.assert_allclose(grid.predict_proba(X).sum(axis=1), 1.0)


def test_kneighbors(data):
    X, y = data
    clf = KNearestClusterClassifier(4, cluster_size=10).fit(X, y)
    dist, idx = clf.kneighbors(X[:5])
    assert dist.shape == idx.shape == (5, 4)
    assert (np.diff(dist, axis=1) >= 0).all()
    expected = np.linalg.norm(normalize_rows(X[:5])[:, None] - clf.cluster_centers_[idx], axis=2)
    np.testing.assert_allclose(dist, expected, atol=1e-5)
    with pytest.raises(ValueError, match="n_neighbors must be in"):
        clf.kneighbors(X[:5], n_neighbors=10_000)


@pytest.mark.parametrize("tau", [0.5, 1.0])
def test_prior_adjustment_adds_minus_tau_log_prior_to_retrieved_classes(data, tau):
    X, y = data
    plain = KNearestClusterClassifier(5, cluster_size=10, prior_adjustment=0.0,
                                      random_state=0).fit(X, y)
    adjusted = KNearestClusterClassifier(5, cluster_size=10, prior_adjustment=tau,
                                         random_state=0).fit(X, y)
    assert plain.prior_adjustment_ == 0.0 and adjusted.prior_adjustment_ == tau
    prior = np.bincount(y) / y.size
    a, b = plain.decision_function(X), adjusted.decision_function(X)
    _, idx = plain.kneighbors(X)
    retrieved = np.zeros(a.shape, dtype=bool)
    np.put_along_axis(retrieved, plain._cluster_class[idx], True, axis=1)
    np.testing.assert_allclose((b - a)[retrieved], np.broadcast_to(
        -tau * np.log(prior), a.shape)[retrieved])
    np.testing.assert_array_equal(b[~retrieved], a[~retrieved])
    # predict follows the adjusted scores; the rarest class gains.
    rare = np.argmin(prior)
    assert (adjusted.predict(X) == rare).sum() >= (plain.predict(X) == rare).sum()


def test_prior_adjustment_auto_per_rule(data):
    X, y = data
    assert KNearestClusterClassifier(cluster_size=10).fit(X, y).prior_adjustment_ == 1.0
    assert KNearestClusterClassifier(cluster_size=10, rule="lmle").fit(
        X, y).prior_adjustment_ == 0.0


def test_threaded_prediction_equals_single_threaded():
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    X = rng.normal(size=(6_000, 16)).astype(np.float32)
    y = rng.integers(0, 5, X.shape[0])
    clf = KNearestClusterClassifier(n_neighbors=10, cluster_size=4, random_state=0).fit(X, y)
    Q = rng.normal(size=(3_000, 16)).astype(np.float32)
    with threadpool_limits(1):
        serial = clf.predict_proba(Q), clf.kneighbors(Q)
    with threadpool_limits(2):
        threaded = clf.predict_proba(Q), clf.kneighbors(Q)
    np.testing.assert_array_equal(serial[0], threaded[0])
    np.testing.assert_array_equal(serial[1][1], threaded[1][1])
    np.testing.assert_array_equal(serial[1][0], threaded[1][0])
