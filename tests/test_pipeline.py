"""CLMLEEmbedder and KNearestClusterClassifier inside (imblearn) pipelines."""

import numpy as np
import pytest
from _estimators import FAST_PARAMS
from imblearn.over_sampling import SMOTE
from imblearn.pipeline import Pipeline as ImbPipeline
from imblearn.under_sampling import RandomUnderSampler
from sklearn.datasets import make_classification
from sklearn.metrics import accuracy_score
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_clmle import CLMLEEmbedder, KNearestClusterClassifier

N_CLASSES = 3


@pytest.fixture(scope="module")
def data():
    """Small imbalanced 3-class problem (168 / 48 / 24 rows)."""
    X, y = make_classification(
        240, n_features=8, n_informative=5, n_redundant=1, n_classes=N_CLASSES,
        weights=[0.7, 0.2, 0.1], class_sep=1.5, random_state=0,
    )
    return X, y


def cv_splitter():
    return StratifiedKFold(3, shuffle=True, random_state=0)


def make_pipeline(kind, embedder=CLMLEEmbedder, classifier=KNearestClusterClassifier):
    """Scaler -> [resampler] -> embedder -> classifier, as imblearn or sklearn Pipeline."""
    steps = [("scale", StandardScaler())]
    if kind == "smote":
        steps.append(("smote", SMOTE(random_state=0)))
    elif kind == "under":
        steps.append(("under", RandomUnderSampler(random_state=0)))
    steps += [
        ("embed", embedder(**FAST_PARAMS)),
        ("knc", classifier(5, cluster_size=5, random_state=0)),
    ]
    return Pipeline(steps) if kind == "sklearn" else ImbPipeline(steps)


def expected_training_counts(kind, y):
    """Class counts the embedder should be fitted on after resampling ``y``."""
    counts = np.bincount(y)
    if kind == "smote":
        return np.full_like(counts, counts.max())
    if kind == "under":
        return np.full_like(counts, counts.min())
    return counts


PIPELINE_KINDS = ["smote", "none", "under", "sklearn"]


@pytest.mark.parametrize("kind", PIPELINE_KINDS)
def test_pipeline_fit_predict_proba_score(data, kind):
    """Fit, predict, predict_proba and score through every pipeline flavour.

    The embedder and the classifier must also be trained on the resampled
    class counts (oversampled, undersampled or untouched).
    """
    X, y = data
    pipe = make_pipeline(kind).fit(X, y)
    pred = pipe.predict(X)
    assert pred.shape == (X.shape[0],)
    assert set(np.unique(pred)) <= set(np.unique(y))
    np.testing.assert_array_equal(pipe.classes_, np.arange(N_CLASSES))

    proba = pipe.predict_proba(X)
    assert proba.shape == (X.shape[0], N_CLASSES)
    assert np.all(proba >= 0)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)

    score = pipe.score(X, y)
    assert score == pytest.approx(accuracy_score(y, pred))
    assert 0.0 <= score <= 1.0

    expected = expected_training_counts(kind, y)
    np.testing.assert_array_equal(pipe["knc"].class_counts_, expected)
    assert pipe["embed"].cluster_labels_.shape == (expected.sum(),)


@pytest.mark.parametrize("kind", PIPELINE_KINDS)
def test_pipeline_cross_val_balanced_accuracy(data, kind):
    """cross_val_score(scoring="balanced_accuracy") is finite, in [0, 1], above chance."""
    X, y = data
    scores = cross_val_score(
        make_pipeline(kind), X, y, cv=cv_splitter(),
        scoring="balanced_accuracy", error_score="raise",
    )
    assert scores.shape == (3,)
    assert np.all(np.isfinite(scores))
    assert np.all((scores >= 0) & (scores <= 1))
    assert scores.mean() > 1 / N_CLASSES


def _grid_search(X, y, n_jobs):
    grid = {
        "embed__a1": [0.1, 0.5],
        "embed__a2": [0.05],
        "knc__n_neighbors": [1, 5],
    }
    search = GridSearchCV(
        make_pipeline("smote"), grid, scoring="balanced_accuracy", cv=cv_splitter(),
        n_jobs=n_jobs, refit=True, error_score="raise",
    )
    return search.fit(X, y), grid


def test_grid_search_serial_and_parallel_agree(data):
    """GridSearchCV over embed__a1, embed__a2, knc__n_neighbors with n_jobs=1 and 2.

    The best parameters are a grid point, the refitted best estimator
    predicts, and the CV scores do not depend on n_jobs (everything is
    seeded and single-threaded, so CPU results are reproducible across
    processes).
    """
    X, y = data
    serial, grid = _grid_search(X, y, n_jobs=1)
    parallel, _ = _grid_search(X, y, n_jobs=2)

    for search in (serial, parallel):
        assert set(search.best_params_) == set(grid)
        for name, value in search.best_params_.items():
            assert value in grid[name]
        assert len(search.cv_results_["params"]) == 4
        scores = search.cv_results_["mean_test_score"]
        assert np.all(np.isfinite(scores)) and np.all((scores >= 0) & (scores <= 1))
        pred = search.best_estimator_.predict(X)
        assert pred.shape == (X.shape[0],)
        np.testing.assert_array_equal(search.predict(X), pred)
        np.testing.assert_allclose(search.predict_proba(X).sum(axis=1), 1.0)

    for key in ("mean_test_score", "split0_test_score", "split1_test_score",
                "split2_test_score"):
        np.testing.assert_array_equal(
            serial.cv_results_[key], parallel.cv_results_[key], err_msg=key
        )
    assert serial.best_params_ == parallel.best_params_
    np.testing.assert_array_equal(
        serial.best_estimator_.predict_proba(X), parallel.best_estimator_.predict_proba(X)
    )


#: Calls seen by the recording estimators below: (estimator, method, rows).
#: Module level because cross_val_score clones the estimators.
CALLS = []


class RecordingEmbedder(CLMLEEmbedder):
    """CLMLEEmbedder that logs the rows passed to fit and transform."""

    def fit(self, X, y):
        CALLS.append(("embed", "fit", np.array(X, copy=True)))
        return super().fit(X, y)

    def transform(self, X):
        CALLS.append(("embed", "transform", np.array(X, copy=True)))
        return super().transform(X)


class RecordingClassifier(KNearestClusterClassifier):
    """KNearestClusterClassifier that logs the rows passed to fit and predict."""

    def fit(self, X, y):
        CALLS.append(("knc", "fit", np.array(X, copy=True)))
        return super().fit(X, y)

    def predict(self, X):
        CALLS.append(("knc", "predict", np.array(X, copy=True)))
        return super().predict(X)


def _contains_rows(haystack, needles):
    """Whether every row of ``needles`` occurs (up to float noise) in ``haystack``."""
    d = np.abs(needles[:, None, :] - haystack[None, :, :]).max(axis=2)
    return d.min(axis=1) < 1e-9


def test_resampling_only_on_training_folds(data):
    """SMOTE oversamples the training folds only; test folds reach the model untouched.

    Per fold, the embedder must be fitted on more rows than the training fold
    (the SMOTE-balanced count), containing every training row and no test
    row, and at predict time both the embedder and the classifier must see
    exactly the scaled test-fold rows, in order.
    """
    X, y = data
    CALLS.clear()
    cv = cv_splitter()
    folds = list(cv.split(X, y))
    pipe = make_pipeline("smote", RecordingEmbedder, RecordingClassifier)
    cross_val_score(
        pipe, X, y, cv=cv, scoring="balanced_accuracy", n_jobs=1, error_score="raise"
    )

    # Per fold: embed.fit, embed.transform (fit_transform), knc.fit,
    # then scoring: embed.transform, knc.predict.
    per_fold = 5
    assert [(who, what) for who, what, _ in CALLS] == [
        ("embed", "fit"), ("embed", "transform"), ("knc", "fit"),
        ("embed", "transform"), ("knc", "predict"),
    ] * len(folds)

    for i, (train, test) in enumerate(folds):
        calls = CALLS[i * per_fold:(i + 1) * per_fold]
        scaler = StandardScaler().fit(X[train])
        X_train, X_test = scaler.transform(X[train]), scaler.transform(X[test])
        n_resampled = N_CLASSES * np.bincount(y[train]).max()

        fit_rows = calls[0][2]
        assert fit_rows.shape == (n_resampled, X.shape[1])
        assert n_resampled > train.size
        assert _contains_rows(fit_rows, X_train).all()
        assert not _contains_rows(fit_rows, X_test).any()
        # fit_transform embeds the same (resampled) rows it was fitted on.
        np.testing.assert_array_equal(calls[1][2], fit_rows)
        assert calls[2][2].shape == (n_resampled, FAST_PARAMS["embedding_dim"])

        # Predict time: exactly the test fold, not resampled, in order.
        np.testing.assert_allclose(calls[3][2], X_test, rtol=0, atol=1e-12)
        assert calls[4][2].shape == (test.size, FAST_PARAMS["embedding_dim"])


@pytest.mark.parametrize("kind", ["smote", "sklearn"])
def test_pipeline_without_classifier_transforms_to_unit_norm(data, kind):
    """``pipe[:-1].transform`` skips the sampler and returns unit-norm embeddings."""
    X, y = data
    pipe = make_pipeline(kind).fit(X, y)
    Z = pipe[:-1].transform(X)
    assert Z.shape == (X.shape[0], FAST_PARAMS["embedding_dim"])
    np.testing.assert_allclose(np.linalg.norm(Z, axis=1), 1.0, atol=1e-5)
    expected = pipe["embed"].transform(pipe["scale"].transform(X))
    np.testing.assert_array_equal(Z, expected)


@pytest.mark.parametrize("kind", ["smote", "sklearn"])
def test_pipeline_set_output_pandas(data, kind):
    """``set_output(transform="pandas")`` carries feature names through the embedder."""
    pd = pytest.importorskip("pandas")
    X, y = data
    index = pd.RangeIndex(1000, 1000 + X.shape[0])
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])], index=index)
    pipe = make_pipeline(kind).set_output(transform="pandas").fit(df, y)

    names = [f"clmleembedder{i}" for i in range(FAST_PARAMS["embedding_dim"])]
    Z = pipe[:-1].transform(df)
    assert isinstance(Z, pd.DataFrame)
    assert list(Z.columns) == names
    pd.testing.assert_index_equal(Z.index, index)
    np.testing.assert_allclose(np.linalg.norm(Z.to_numpy(), axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(pipe[:-1].get_feature_names_out(), names)
    np.testing.assert_array_equal(pipe["embed"].feature_names_in_, df.columns)
    np.testing.assert_array_equal(pipe["knc"].feature_names_in_, names)

    pred = pipe.predict(df)
    assert pred.shape == (X.shape[0],)
    np.testing.assert_array_equal(pred, make_pipeline(kind).fit(X, y).predict(X))
