"""sample_weight: in the loss, exact for unit weights, routed through pipelines."""

import numpy as np
import pytest
import sklearn
from _estimators import FAST_PARAMS
from imblearn.pipeline import Pipeline as ImbPipeline
from sklearn.datasets import make_classification
from sklearn.metrics import recall_score
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.class_weight import compute_sample_weight

from sklearn_clmle import (
    CLMLEEmbedder,
    CrossEntropyClassifier,
    KNearestClusterClassifier,
)

CE_PARAMS = dict(max_iter=60, embedding_dim=8, random_state=0, n_threads=1)


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(
        150, n_features=6, n_informative=4, n_classes=3, weights=[0.6, 0.3, 0.1],
        random_state=0,
    )
    w = np.random.default_rng(0).uniform(0.2, 3.0, y.size)
    return X, y, w


def test_unit_weights_equal_no_weights(data):
    X, y, _ = data
    ones = np.ones(y.size)
    a = CLMLEEmbedder(**FAST_PARAMS).fit(X, y).transform(X)
    b = CLMLEEmbedder(**FAST_PARAMS).fit(X, y, sample_weight=ones).transform(X)
    np.testing.assert_array_equal(a, b)
    a = CrossEntropyClassifier(**CE_PARAMS).fit(X, y).predict_proba(X)
    b = CrossEntropyClassifier(**CE_PARAMS).fit(X, y, sample_weight=ones).predict_proba(X)
    np.testing.assert_array_equal(a, b)


def test_weights_change_the_fit_and_only_their_ratios_matter(data):
    X, y, w = data
    base = CLMLEEmbedder(**FAST_PARAMS).fit(X, y).transform(X)
    weighted = CLMLEEmbedder(**FAST_PARAMS).fit(X, y, sample_weight=w).transform(X)
    scaled = CLMLEEmbedder(**FAST_PARAMS).fit(X, y, sample_weight=7.0 * w).transform(X)
    assert np.abs(base - weighted).max() > 1e-3
    np.testing.assert_allclose(weighted, scaled, atol=1e-4)


def test_balanced_sample_weight_equals_balanced_class_weight(data):
    X, y, _ = data
    by_class = CrossEntropyClassifier(class_weight="balanced", **CE_PARAMS).fit(X, y)
    by_row = CrossEntropyClassifier(**CE_PARAMS).fit(
        X, y, sample_weight=compute_sample_weight("balanced", y)
    )
    np.testing.assert_allclose(by_class.predict_proba(X), by_row.predict_proba(X), atol=1e-6)


def test_upweighting_the_minority_raises_its_recall():
    X, y = make_classification(
        600, n_features=8, n_informative=3, weights=[0.95], flip_y=0, class_sep=0.6,
        random_state=3,
    )
    params = dict(CE_PARAMS, max_iter=300)
    plain = CrossEntropyClassifier(**params).fit(X, y)
    heavy = CrossEntropyClassifier(**params).fit(X, y, sample_weight=np.where(y == 1, 19.0, 1.0))
    gain = recall_score(y, heavy.predict(X)) - recall_score(y, plain.predict(X))
    assert gain > 0.2


@pytest.mark.parametrize("bad, match", [
    (np.zeros(150), "non-zero"),
    (-np.ones(150), "Negative values"),
    (np.ones(149), "sample_weight.shape"),
    (np.full(150, np.nan), "NaN"),
])
def test_invalid_sample_weight(data, bad, match):
    X, y, _ = data
    for est in (CLMLEEmbedder(**FAST_PARAMS), CrossEntropyClassifier(**CE_PARAMS)):
        with pytest.raises(ValueError, match=match):
            est.fit(X, y, sample_weight=bad)


class RecordingEmbedder(CLMLEEmbedder):
    """Records the weights each fit received (class attribute: shared by clones)."""

    seen = []

    def fit(self, X, y, sample_weight=None):
        RecordingEmbedder.seen.append(None if sample_weight is None else np.asarray(sample_weight))
        return super().fit(X, y, sample_weight=sample_weight)


def _pipeline(kind, routing):
    embed = RecordingEmbedder(**FAST_PARAMS)
    scaler = StandardScaler()
    knc = KNearestClusterClassifier(n_neighbors=3, cluster_size=5, random_state=0)
    if routing:
        embed.set_fit_request(sample_weight=True)
        scaler.set_fit_request(sample_weight=False)
        knc.set_score_request(sample_weight=True)  # weighted accuracy in the search
    steps = [("scale", scaler), ("embed", embed), ("knc", knc)]
    return (ImbPipeline if kind == "imblearn" else Pipeline)(steps)


@pytest.mark.parametrize("kind", ["sklearn", "imblearn"])
def test_metadata_routing_in_pipeline_and_grid_search(data, kind):
    X, y, w = data
    with sklearn.config_context(enable_metadata_routing=True):
        RecordingEmbedder.seen = []
        pipe = _pipeline(kind, routing=True).fit(X, y, sample_weight=w)
        np.testing.assert_array_equal(RecordingEmbedder.seen, [w])
        direct = CLMLEEmbedder(**FAST_PARAMS).fit(
            StandardScaler().fit_transform(X), y, sample_weight=w
        )
        np.testing.assert_array_equal(
            pipe[:-1].transform(X), direct.transform(StandardScaler().fit(X).transform(X))
        )

        RecordingEmbedder.seen = []
        search = GridSearchCV(_pipeline(kind, routing=True), {"embed__a1": [0.1, 0.3]}, cv=2)
        search.fit(X, y, sample_weight=w)
        assert np.isfinite(search.cv_results_["mean_test_score"]).all()
        # 2 candidates x 2 folds, then the refit; each got its rows' weights.
        assert len(RecordingEmbedder.seen) == 5
        assert all(s.size < y.size for s in RecordingEmbedder.seen[:-1])
        assert all(np.isin(s, w).all() for s in RecordingEmbedder.seen)
        np.testing.assert_array_equal(RecordingEmbedder.seen[-1], w)


def test_step_parameter_syntax_without_routing(data):
    X, y, w = data
    RecordingEmbedder.seen = []
    _pipeline("sklearn", routing=False).fit(X, y, embed__sample_weight=w)
    np.testing.assert_array_equal(RecordingEmbedder.seen, [w])
