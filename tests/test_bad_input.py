"""Bad input: every estimator (and the pipeline of the two) gives a clear error.

Each case checks the exception type and that the message names the problem.
Failed or interrupted fits leave a fitted estimator as it was, or unfitted.
"""

import numpy as np
import pytest
import torch
from _estimators import embedder, lmle
from _estimators import cross_entropy as _cross_entropy_factory
from _estimators import knc as classifier
from sklearn.datasets import make_classification
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import make_pipeline
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.validation import check_is_fitted

from sklearn_clmle import _classifier, _cross_entropy, _multilabel_training, _training

X, Y = make_classification(
    90, n_features=5, n_informative=3, n_redundant=0, n_classes=3,
    weights=[0.6, 0.3, 0.1], random_state=0,
)


def cross_entropy(**kw):
    return _cross_entropy_factory(**{"max_iter": 5, "backbone_kwargs": None, **kw})


def pipeline():
    return make_pipeline(embedder(), classifier())


MAKERS = {"embedder": embedder, "lmle": lmle, "classifier": classifier,
          "cross_entropy": cross_entropy, "pipeline": pipeline}


def _with(value, at=(0, 0), dtype=float):
    out = X.astype(dtype)
    out[at] = value
    return out


def _y_with_nan():
    y = Y.astype(float)
    y[3] = np.nan
    return y


FIT_CASES = {
    "nan": (_with(np.nan), Y, "X contains NaN"),
    "inf": (_with(np.inf), Y, "X contains infinity"),
    "-inf": (_with(-np.inf), Y, "X contains infinity"),
    "empty X": (np.empty((0, 5)), np.empty(0), "0 sample"),
    "one sample": (X[:1], Y[:1], "at least 2 classes"),
    "one class": (X, np.zeros(len(Y)), "at least 2 classes in y; got 1 class"),
    "mismatched lengths": (X, Y[:-1], "inconsistent numbers of samples: \\[90, 89\\]"),
    "3-D X": (X.reshape(90, 5, 1), Y, "dim 3"),
    "1-D X": (X[:, 0], Y, "Expected 2D array"),
    "string column": (_with("abc", dtype=object), Y, "real numbers.*'abc'"),
    "complex X": (X + 1j, Y, "real numbers.*Complex"),
    "y with NaN": (X, _y_with_nan(), "y contains NaN"),
    "continuous y": (X, np.linspace(0, 1, 90), "Unknown label type"),
    # LMLE takes single-label y only; the others take 0/1 indicator matrices.
    "multiclass-multioutput y": (
        X, np.column_stack([Y, Y]),
        "single-label targets only; got a multiclass-multioutput|binary indicator matrix",
    ),
    "y is None": (X, None, "requires y to be passed"),
}


@pytest.mark.parametrize("case", FIT_CASES)
@pytest.mark.parametrize("kind", MAKERS)
def test_fit_rejects(kind, case):
    X_bad, y_bad, match = FIT_CASES[case]
    with pytest.raises(ValueError, match=match):
        MAKERS[kind]().fit(X_bad, y_bad)


def test_a_class_with_one_sample_works():
    y = Y.copy()
    y[0] = 7  # class 7 has a single row
    for make in MAKERS.values():
        est = make().fit(X, y)
        out = est.transform(X) if hasattr(est, "transform") else est.predict_proba(X)
        assert np.isfinite(out).all() and out.shape[0] == len(X)


def _fitted(kind):
    return MAKERS[kind]().fit(X, Y)


def _method(kind):
    return "transform" if kind in ("embedder", "lmle") else "predict"


PREDICT_CASES = {
    "wrong n_features": (X[:, :3], ValueError, "X has 3 features, but \\w+ is expecting 5"),
    "nan": (_with(np.nan), ValueError, "X contains NaN"),
    "inf": (_with(np.inf), ValueError, "X contains infinity"),
    "empty X": (np.empty((0, 5)), ValueError, "0 sample"),
    "3-D X": (X.reshape(90, 5, 1), ValueError, "dim 3"),
}


@pytest.mark.parametrize("case", PREDICT_CASES)
@pytest.mark.parametrize("kind", MAKERS)
def test_transform_and_predict_reject(kind, case):
    X_bad, exc, match = PREDICT_CASES[case]
    est = _fitted(kind)
    with pytest.raises(exc, match=match):
        getattr(est, _method(kind))(X_bad)


@pytest.mark.parametrize("kind", MAKERS)
def test_unfitted_use(kind):
    with pytest.raises(NotFittedError, match="not fitted yet"):
        getattr(MAKERS[kind](), _method(kind))(X)


@pytest.mark.parametrize("kind", MAKERS)
def test_one_row_at_predict_time_works(kind):
    out = getattr(_fitted(kind), _method(kind))(X[:1])
    assert out.shape[0] == 1


BAD_PARAMS = [
    (embedder, dict(cluster_size=0)),
    (embedder, dict(cluster_size=-3)),
    (embedder, dict(cluster_size=2.5)),
    (embedder, dict(a1=-0.1)),
    (embedder, dict(a2=-1.0)),
    (embedder, dict(a1="big")),
    (embedder, dict(clusters_per_batch=1)),
    (embedder, dict(samples_per_cluster=0)),
    (embedder, dict(n_rounds=0)),
    (embedder, dict(embedding_dim=0)),
    (embedder, dict(learning_rate=0.0)),
    (embedder, dict(scale=0.0)),
    (embedder, dict(ce_weight=-1.0)),
    (embedder, dict(init="pretrained")),
    (embedder, dict(query_sampling="random")),
    (embedder, dict(n_threads=0)),
    (embedder, dict(inference_batch_size=0)),
    (lmle, dict(g1=-0.1)),
    (lmle, dict(g2="big")),
    (lmle, dict(g3=-1)),
    (lmle, dict(loss="contrastive")),
    (lmle, dict(batch_size=4)),
    (lmle, dict(subset_fraction=0.0)),
    (lmle, dict(subset_fraction=1.5)),
    (classifier, dict(n_neighbors=0)),
    (classifier, dict(n_neighbors=-1)),
    (classifier, dict(cluster_size=0)),
    (classifier, dict(cluster_size=-2)),
    (classifier, dict(scale=-1.0)),
    (classifier, dict(rule="knn")),
    (classifier, dict(algorithm="faiss")),
    (classifier, dict(chunk_size=0)),
    (classifier, dict(prior_adjustment=-1.0)),
    (classifier, dict(prior_adjustment="big")),
    (cross_entropy, dict(max_iter=0)),
    (cross_entropy, dict(logit_adjustment=-1.0)),
    (cross_entropy, dict(class_weight="auto")),
    # The training engine's parameters, shared by the three torch estimators.
    *[(make, params) for make in (embedder, lmle, cross_entropy) for params in (
        dict(validation_fraction=0.0),
        dict(validation_fraction=1.0),
        dict(n_iter_no_change=0),
        dict(tol=-1.0),
        dict(max_epochs=0),
        dict(lr_schedule="step"),
        dict(optimizer="adam"),
        dict(learning_rate="fast"),
        dict(augment="flip"),
        dict(augment=3),
        dict(early_stopping="yes"),
    )],
    (embedder, dict(warmup_epochs=-1)),
    (embedder, dict(iterations_per_round=0)),
    (embedder, dict(ce_loss="focal")),
    (lmle, dict(ce_loss="weighted")),
]


@pytest.mark.parametrize("make, params", BAD_PARAMS)
def test_invalid_parameter_names_the_parameter(make, params):
    name = next(iter(params))
    with pytest.raises(InvalidParameterError, match=f"The '{name}' parameter of"):
        make(**params).fit(X, Y)


def test_zero_margins_are_allowed():
    """a1 = a2 = 0: no margin, a valid (if weak) setting, e.g. as an ablation."""
    emb = embedder(a1=0.0, a2=0.0).fit(X, Y)
    assert emb.a1_ == 0.0 and not emb.a2_.any()


def test_margins_beyond_their_bound_are_clipped_with_a_warning():
    with pytest.warns(UserWarning, match="a1=9 exceeds its bound"):
        emb = embedder(a1=9.0).fit(X, Y)
    assert emb.a1_ == pytest.approx(emb.a1_max_)
    with pytest.warns(UserWarning, match="a2=1.9 exceeds its per-class bound"):
        emb = embedder(a2=1.9).fit(X, Y)
    np.testing.assert_allclose(emb.a2_, np.minimum(1.9, emb.a2_max_))


def _not_a_module(n_in, n_out):
    return "not a module"


BAD_SETUPS = [
    (embedder, dict(backbone="resnet"), ValueError, "backbone='resnet' is not a registered"),
    (embedder, dict(backbone=_not_a_module, backbone_kwargs=None), TypeError,
     "torch.nn.Module"),
    (embedder, dict(device="gpu0"), ValueError, "device='gpu0' is not a valid device"),
    (cross_entropy, dict(class_weight={9: 2.0}), ValueError, "class_weight has labels \\[9\\]"),
]
if not torch.cuda.is_available():
    BAD_SETUPS += [
        (make, dict(device="cuda"), ValueError, "device='cuda' was requested but CUDA is not")
        for make in (embedder, cross_entropy)
    ]


@pytest.mark.parametrize("make, params, exc, match", BAD_SETUPS)
def test_bad_backbone_device_or_weights(make, params, exc, match):
    with pytest.raises(exc, match=match):
        make(**params).fit(X, Y)


# -- failed and interrupted fits ---------------------------------------------

def _raiser(exc):
    def fail(*args, **kwargs):
        raise exc
    return fail


#: Where to break each estimator's fit, after validation and some work.
BREAK_POINTS = {
    "embedder": (_training, "run_phase"),
    "lmle": (_training, "run_phase"),
    "cross_entropy": (_cross_entropy, "run_phase"),
    "classifier": (_classifier, "CentroidIndex"),
}


def _state(est):
    return {k: v for k, v in vars(est).items() if k.endswith("_") or k.startswith("_")}


@pytest.mark.parametrize("exc", [KeyboardInterrupt(), RuntimeError("boom")],
                         ids=["KeyboardInterrupt", "RuntimeError"])
@pytest.mark.parametrize("kind", BREAK_POINTS)
def test_broken_fit_leaves_fitted_estimator_unchanged(kind, exc, monkeypatch):
    est = _fitted(kind)
    before = _state(est)
    out = getattr(est, _method(kind))(X)
    monkeypatch.setattr(*BREAK_POINTS[kind], _raiser(exc))
    y_other = np.where(Y == 2, 1, Y)  # another label set, and other features
    with pytest.raises(type(exc)):
        est.fit(X[:, :4], y_other)
    after = _state(est)
    assert after.keys() == before.keys()
    assert all(after[k] is before[k] for k in before)
    monkeypatch.undo()
    np.testing.assert_array_equal(getattr(est, _method(kind))(X), out)


@pytest.mark.parametrize("kind", BREAK_POINTS)
def test_broken_first_fit_leaves_estimator_unfitted(kind, monkeypatch):
    est = MAKERS[kind]()
    monkeypatch.setattr(*BREAK_POINTS[kind], _raiser(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        est.fit(X, Y)
    with pytest.raises(NotFittedError):
        check_is_fitted(est)
    assert not hasattr(est, "n_features_in_")


def test_pandas_nullable_columns():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(X, columns=list("abcde")).astype("Float64")
    assert embedder().fit(frame, Y).transform(frame).dtype == np.float32
    frame.iloc[0, 0] = pd.NA
    for make in MAKERS.values():
        with pytest.raises(ValueError, match="X contains NaN"):
            make().fit(frame, Y)


def test_n_neighbors_above_the_number_of_clusters_is_clipped_with_a_warning():
    with pytest.warns(UserWarning, match="n_neighbors=500 is more than the"):
        clf = classifier(n_neighbors=500).fit(X, Y)
    assert clf.n_neighbors_ == clf.cluster_centers_.shape[0]
    assert clf.predict(X).shape == Y.shape


# -- multi-label targets ---------------------------------------------------------

#: A multi-label indicator Y of the 90 rows: three columns, each with 0s and 1s.
Y_MULTI = np.column_stack([Y == 0, Y == 1, X[:, 0] > 0]).astype(np.int64)
#: The estimators that take a multi-label Y (LMLEEmbedder refuses any).
MULTILABEL_MAKERS = {k: MAKERS[k] for k in ("embedder", "classifier", "cross_entropy",
                                            "pipeline")}


def _multi_with(value, at=(4, 2), dtype=np.int64):
    out = Y_MULTI.astype(dtype)
    out[at] = value
    return out


def _multi_constant_column():
    out = Y_MULTI.copy()
    out[:, 1] = 0
    return out


MULTILABEL_FIT_CASES = {
    "constant column": (X, _multi_constant_column(),
                        "Column 1 of the multi-label y has the single value 0"),
    "non-binary value": (X, _multi_with(2), "column 2 holds \\[0, 1, 2\\]"),
    "negative value": (X, _multi_with(-1, at=(0, 0)), "column 0 holds \\[-1, 0, 1\\]"),
    "NaN": (X, _multi_with(np.nan, dtype=float), "Input y contains NaN"),
    "infinity": (X, _multi_with(np.inf, dtype=float), "Input y contains infinity"),
    "strings": (X, np.where(Y_MULTI == 1, "yes", "no").astype(object),
                "binary indicator matrix of 0s and 1s.*dtype object"),
    "mismatched lengths": (X, Y_MULTI[:-1], "inconsistent numbers of samples: \\[90, 89\\]"),
    "mismatched lengths, longer y": (X[:-5], Y_MULTI,
                                     "inconsistent numbers of samples: \\[85, 90\\]"),
}


@pytest.mark.parametrize("case", MULTILABEL_FIT_CASES)
@pytest.mark.parametrize("kind", MULTILABEL_MAKERS)
def test_multilabel_fit_rejects(kind, case):
    X_bad, y_bad, match = MULTILABEL_FIT_CASES[case]
    with pytest.raises(ValueError, match=match):
        MULTILABEL_MAKERS[kind]().fit(X_bad, y_bad)


def test_multilabel_embedder_refuses_init_input():
    with pytest.raises(ValueError, match="init='input' clusters the raw inputs.*"
                       "use init='warmup'"):
        embedder(init="input").fit(X, Y_MULTI)
    embedder(init="input").fit(X, Y)  # single-label y: accepted


def test_multilabel_classifier_on_an_embedding_of_another_width():
    Z = embedder().fit(X, Y_MULTI).transform(X)  # 3 blocks of 4 columns
    for n_labels in (2, 4):
        Y_other = np.column_stack([Y_MULTI, 1 - Y_MULTI[:, :1]])[:, :n_labels]
        with pytest.raises(ValueError, match=f"X is made of 3 unit-norm blocks of 4 "
                           f"columns.*but y has {n_labels} columns"):
            classifier().fit(Z, Y_other)


def test_multilabel_blocks_need_a_divisible_width():
    with pytest.raises(ValueError, match="multilabel_features='blocks'.*X has 5 columns, "
                       "not a multiple of the 3 columns of y"):
        classifier(multilabel_features="blocks").fit(X, Y_MULTI)


def test_multilabel_dict_class_weight():
    with pytest.raises(ValueError, match="class_weight as a dict names classes of a "
                       "single-label y"):
        cross_entropy(class_weight={0: 1.0, 1: 3.0}).fit(X, Y_MULTI)


@pytest.mark.parametrize("kind", MULTILABEL_MAKERS)
def test_multilabel_predict_rejects_wrong_n_features(kind):
    est = MULTILABEL_MAKERS[kind]().fit(X, Y_MULTI)
    with pytest.raises(ValueError, match="X has 3 features, but \\w+ is expecting 5"):
        getattr(est, _method(kind))(X[:, :3])


#: Where to break a multi-label fit (its own training loop for the embedder).
MULTILABEL_BREAK_POINTS = {
    "embedder": (_multilabel_training, "run_phase"),
    "cross_entropy": (_cross_entropy, "run_phase"),
    "classifier": (_classifier, "CentroidIndex"),
}


@pytest.mark.parametrize("kind", MULTILABEL_BREAK_POINTS)
def test_broken_multilabel_fit_leaves_fitted_estimator_unchanged(kind, monkeypatch):
    est = _fitted(kind)  # single-label
    before = _state(est)
    out = getattr(est, _method(kind))(X)
    monkeypatch.setattr(*MULTILABEL_BREAK_POINTS[kind], _raiser(RuntimeError("boom")))
    with pytest.raises(RuntimeError, match="boom"):
        est.fit(X, Y_MULTI)
    after = _state(est)
    assert after.keys() == before.keys()
    assert all(after[k] is before[k] for k in before)
    monkeypatch.undo()
    np.testing.assert_array_equal(getattr(est, _method(kind))(X), out)
