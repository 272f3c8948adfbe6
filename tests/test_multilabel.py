"""Multi-label targets (CLMLE Sec. 5): the embedder, its network, k-NC, CE, the pipeline."""

import pickle

import numpy as np
import pytest
import torch
from _estimators import FAST_PARAMS, cross_entropy, embedder, knc, lmle
from scipy.special import expit
from sklearn.datasets import make_multilabel_classification
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import check_random_state
from torch.nn import functional as F

import sklearn_clmle
from sklearn_clmle import CLMLEEmbedder
from sklearn_clmle._holdout import train_validation_split
from sklearn_clmle._multihead import BlockLinear, MultiHeadNet, multihead_net
from sklearn_clmle._steps import BinaryCrossEntropyTerm
from sklearn_clmle._training import _strata
from sklearn_clmle.metrics import mean_balanced_accuracy, mean_balanced_accuracy_scorer

X, Y = make_multilabel_classification(200, n_features=8, n_classes=3, random_state=0)
X = X.astype(np.float32)
A, D = Y.shape[1], FAST_PARAMS["embedding_dim"]
#: Labels of unequal frequency (about 55%, 30% and 15% positive), for the weights.
Y_IMB = np.column_stack([Y[:, 0], Y[:, 1] & Y[:, 2], Y[:, 0] & Y[:, 1] & Y[:, 2]])


@pytest.fixture(scope="module")
def emb():
    return embedder().fit(X, Y)


@pytest.fixture(scope="module")
def Z(emb):
    return emb.transform(X)


@pytest.fixture(scope="module")
def clf(Z):
    return knc().fit(Z, Y)


@pytest.fixture(scope="module")
def ce():
    return cross_entropy().fit(X, Y)


def _blocks(Z):
    return [Z[:, a * D:(a + 1) * D] for a in range(A)]


# -- CLMLEEmbedder -------------------------------------------------------------


def test_imbalanced_labels_are_imbalanced():
    """The fixture the weighting tests rely on: three distinct positive rates."""
    rates = Y_IMB.mean(axis=0)
    assert rates[0] > rates[1] > rates[2] > 0.05


def test_embedder_shapes_and_unit_blocks(emb, Z):
    assert emb.n_outputs_ == A
    np.testing.assert_array_equal(emb.classes_, np.arange(A))
    assert isinstance(emb.module_, MultiHeadNet)
    assert Z.shape == (len(X), A * D) and Z.dtype == np.float32
    for block in _blocks(Z):
        np.testing.assert_allclose(np.linalg.norm(block, axis=1), 1.0, rtol=1e-5)
    # Not one unit row cut in A pieces: each block has norm 1 on its own.
    np.testing.assert_allclose(np.linalg.norm(Z, axis=1), np.sqrt(A), rtol=1e-5)


def test_embedder_transform_is_the_heads_normalised(emb, Z):
    with torch.no_grad():
        raw = emb.module_(torch.as_tensor(X)).numpy()
    for a, block in enumerate(_blocks(Z)):
        part = raw[:, a * D:(a + 1) * D]
        np.testing.assert_allclose(
            block, part / np.linalg.norm(part, axis=1, keepdims=True), atol=1e-5
        )


def test_feature_names_out_for_arrays_and_frames(emb):
    expected = [f"clmleembedder_y{a}_{j}" for a in range(A) for j in range(D)]
    assert list(emb.get_feature_names_out()) == expected
    np.testing.assert_array_equal(emb.label_names_, ["y0", "y1", "y2"])
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(Y, columns=["smile", "hat", "glasses"])
    named = embedder().fit(X, frame)
    assert list(named.get_feature_names_out()) == [
        f"clmleembedder_{name}_{j}" for name in ("smile", "hat", "glasses") for j in range(D)
    ]
    np.testing.assert_array_equal(named.transform(X), emb.transform(X))
    out = named.set_output(transform="pandas").transform(X)
    assert list(out.columns) == list(named.get_feature_names_out())


def test_per_label_fitted_attributes(emb):
    assert emb.a2_.shape == (A, 2) and emb.a2_max_.shape == (A, 2)
    assert emb.n_clusters_per_class_.shape == (A, 2)
    assert emb.a1_max_ == pytest.approx(2.0)  # 1 - cos(2 pi / 2): two classes per label
    assert isinstance(emb.cluster_centers_, list) and len(emb.cluster_centers_) == A
    assert emb.cluster_labels_.shape == (len(X), A)
    assert len(emb.cluster_classes_) == A
    for a in range(A):
        counts = np.bincount(Y[:, a], minlength=2)
        np.testing.assert_allclose(emb.a2_max_[a], 1 - np.cos(2 * np.pi * counts / counts.sum()))
        centers, classes = emb.cluster_centers_[a], emb.cluster_classes_[a]
        assert centers.shape == (emb.n_clusters_per_class_[a].sum(), D)
        np.testing.assert_array_equal(np.bincount(classes, minlength=2),
                                      emb.n_clusters_per_class_[a])
        # Every row sits in a cluster of its own class of label a.
        np.testing.assert_array_equal(classes[emb.cluster_labels_[:, a]], Y[:, a])


def test_clusters_are_equal_size_within_each_class(emb):
    for a in range(A):
        sizes = np.bincount(emb.cluster_labels_[:, a], minlength=emb.cluster_classes_[a].size)
        for c in (0, 1):
            mine = sizes[emb.cluster_classes_[a] == c]
            assert mine.size >= 1 and mine.min() >= 1
            assert mine.max() - mine.min() <= 1, (a, c, mine)
            assert mine.sum() == (Y[:, a] == c).sum()


def test_reproducible_from_random_state(Z):
    np.testing.assert_array_equal(embedder().fit(X, Y).transform(X), Z)
    assert not np.array_equal(embedder(random_state=1).fit(X, Y).transform(X), Z)


@pytest.mark.parametrize("batches", ["alternate", "joint"])
def test_other_batches_give_another_embedding(Z, batches):
    alt = embedder(multilabel_batches=batches).fit(X, Y)
    Z_alt = alt.transform(X)
    assert Z_alt.shape == Z.shape
    for block in _blocks(Z_alt):
        np.testing.assert_allclose(np.linalg.norm(block, axis=1), 1.0, rtol=1e-5)
    assert np.abs(Z_alt - Z).max() > 1e-3


def test_iteration_budget_history(emb):
    h = emb.history_
    assert [r["phase"] for r in h] == ["warmup"] * 5 + ["train"] * 2
    assert [r["steps"] for r in h if r["phase"] == "train"] == [5, 5]
    assert emb.n_steps_ == 10 and emb.n_iter_ == 2
    assert all(np.isfinite(r["loss"]) for r in h)
    assert len(emb.fit_stats_["round_times"]) == 2
    assert len(emb.fit_stats_["final_spread"]) == A


def test_epoch_budget_alternate_takes_a_step_per_label():
    """An epoch gives every label ceil(n / (M s)) batches of its own: A times
    as many alternating steps as joint ones; "shared" takes as many steps as
    "joint" (user guide, "Budgets")."""
    params = dict(FAST_PARAMS, iterations_per_round=None, warmup_iterations=None,
                  max_epochs=2, warmup_epochs=1)
    joint = CLMLEEmbedder(**params, multilabel_batches="joint").fit(X, Y)
    alt = CLMLEEmbedder(**params, multilabel_batches="alternate").fit(X, Y)
    shared = CLMLEEmbedder(**params).fit(X, Y)  # the default
    assert joint.n_iter_ == alt.n_iter_ == shared.n_iter_ == 2
    assert alt.n_steps_ == A * joint.n_steps_ > 0
    assert shared.n_steps_ == joint.n_steps_


def test_early_stopping_with_multilabel():
    est = embedder(early_stopping=True).fit(X, Y)
    scores = [r["val_score"] for r in est.history_ if r["phase"] == "train"]
    assert scores and all(np.isfinite(s) and 0 <= s <= 1 for s in scores)
    assert est.best_epoch_ is not None
    # The final clustering covers all rows, validation rows included.
    assert est.cluster_labels_.shape == (len(X), A)


def test_strata_are_the_rarest_positive_label():
    Y_small = np.array([
        [1, 0, 1], [1, 0, 0], [1, 1, 0], [0, 1, 0], [1, 1, 1],
        [0, 0, 0], [1, 1, 0], [1, 0, 0], [0, 1, 1], [1, 0, 0],
    ])
    counts = Y_small.sum(axis=0)  # 7, 5, 3: label 2 is the rarest
    strata = _strata(Y_small)
    assert (strata[Y_small[:, 2] == 1] == 2).all()
    expected = [min(np.flatnonzero(row), key=lambda a: counts[a]) if row.any() else 3
                for row in Y_small]
    np.testing.assert_array_equal(strata, expected)
    np.testing.assert_array_equal(_strata(Y_small[:, 0]), Y_small[:, 0])  # 1-D as is


def test_holdout_keeps_the_rarest_label_in_training():
    Y_rare = Y.copy()
    Y_rare[:, 2] = 0
    Y_rare[[3, 17, 40, 77, 123], 2] = 1  # 5 positives of label 2
    strata = _strata(Y_rare)
    assert (strata[Y_rare[:, 2] == 1] == 2).all()
    for seed in range(10):
        train, val = train_validation_split(strata, 0.4, np.random.default_rng(seed))
        assert Y_rare[train, 2].sum() >= 2 and Y_rare[val, 2].sum() >= 1
        assert all(Y_rare[train, a].sum() > 0 for a in range(A))


def test_refit_single_label_after_multilabel():
    est = embedder().fit(X, Y)
    y = Y[:, 0] + 2 * Y[:, 1]  # four classes
    est.fit(X, y)
    assert est.n_outputs_ == 1 and not hasattr(est, "label_names_")
    np.testing.assert_array_equal(est.classes_, np.unique(y))
    assert not isinstance(est.module_, MultiHeadNet)
    assert est.transform(X).shape == (len(X), D)
    assert list(est.get_feature_names_out()) == [f"clmleembedder{j}" for j in range(D)]
    assert est.a2_.shape == (4,) and est.cluster_labels_.shape == (len(X),)
    # And back: the multi-label attributes return.
    est.fit(X, Y)
    assert est.n_outputs_ == A and est.transform(X).shape == (len(X), A * D)


def test_unit_sample_weight_equals_no_weight(Z):
    ones = np.ones(len(X))
    np.testing.assert_array_equal(embedder().fit(X, Y, sample_weight=ones).transform(X), Z)
    w = np.random.default_rng(0).uniform(0.2, 3.0, len(X))
    assert np.abs(embedder().fit(X, Y, sample_weight=w).transform(X) - Z).max() > 1e-3


def test_labels_as_lists_of_lists(Z):
    np.testing.assert_array_equal(embedder().fit(X, Y.tolist()).transform(X), Z)


def test_lmle_rejects_multilabel_naming_the_estimators_that_accept_it():
    with pytest.raises(ValueError, match="LMLEEmbedder supports single-label targets only"
                       ".*CLMLEEmbedder, KNearestClusterClassifier and "
                       "CrossEntropyClassifier take multi-label"):
        lmle().fit(X, Y)


# -- the network ---------------------------------------------------------------


def test_multihead_heads_are_separate_linear_layers():
    torch.manual_seed(0)
    backbone = torch.nn.Linear(8, 6)
    net = multihead_net(backbone, 8, A, D)
    assert isinstance(net, MultiHeadNet) and net.heads.in_features == 6
    x = torch.randn(5, 8)
    with torch.no_grad():
        out = net(x)
        hidden = torch.relu(backbone(x))
        assert out.shape == (5, A * D)
        for a in range(A):
            rows = slice(a * D, (a + 1) * D)
            head = F.linear(hidden, net.heads.weight[rows], net.heads.bias[rows])
            torch.testing.assert_close(out[:, rows], head)
            torch.testing.assert_close(net.blocks(out)[:, a], head)


def test_block_linear_block_equals_forward():
    torch.manual_seed(0)
    lin = BlockLinear(A, D, 2)
    assert lin.weight.shape == (A, D, 2) and lin.bias.shape == (A, 2)
    z = torch.randn(7, A, D)
    with torch.no_grad():
        full = lin(z)
        assert full.shape == (7, A, 2)
        for a in range(A):
            torch.testing.assert_close(lin.block(z[:, a], a), full[:, a])
            torch.testing.assert_close(full[:, a], z[:, a] @ lin.weight[a] + lin.bias[a])


# -- KNearestClusterClassifier ----------------------------------------------------


def test_knc_outputs(clf, Z):
    assert clf.multilabel_features_ == "blocks" and clf.n_outputs_ == A
    np.testing.assert_array_equal(clf.classes_, np.arange(A))
    pred = clf.predict(Z)
    assert pred.shape == (len(X), A) and pred.dtype == np.int64
    assert set(np.unique(pred)) <= {0, 1}
    proba = clf.predict_proba(Z)
    assert isinstance(proba, list) and len(proba) == A
    for p in proba:
        assert p.shape == (len(X), 2)
        np.testing.assert_allclose(p.sum(axis=1), 1.0)
    dec = clf.decision_function(Z)
    assert dec.shape == (len(X), A)
    untied = dec != 0
    assert untied.mean() > 0.9
    np.testing.assert_array_equal((dec > 0)[untied], pred[untied].astype(bool))
    assert clf.n_clusters_per_class_.shape == (A, 2) and clf.class_counts_.shape == (A, 2)
    np.testing.assert_array_equal(clf.class_counts_[:, 1], Y.sum(axis=0))


def test_knc_rule_per_label_equals_single_label_on_the_block(clf, Z):
    """Label a's rule is a single-label k-NC on block a, seeded by the a-th draw."""
    dec, proba, pred = clf.decision_function(Z), clf.predict_proba(Z), clf.predict(Z)
    dist, ind = clf.kneighbors(Z)
    for a, block in enumerate(_blocks(Z)):
        rs = check_random_state(0)
        for _ in range(a):  # the seeds of the labels before a
            rs.randint(np.iinfo(np.int32).max)
        single = knc(random_state=rs).fit(block, Y[:, a])
        np.testing.assert_array_equal(single.cluster_centers_, clf.cluster_centers_[a])
        np.testing.assert_array_equal(single.cluster_classes_, clf.cluster_classes_[a])
        np.testing.assert_array_equal(single.decision_function(block), dec[:, a])
        np.testing.assert_array_equal(single.predict_proba(block), proba[a])
        np.testing.assert_array_equal(single.predict(block), pred[:, a])
        d, i = single.kneighbors(block)
        np.testing.assert_array_equal(d, dist[a])
        np.testing.assert_array_equal(i, ind[a])


def test_knc_kneighbors_returns_lists(clf, Z):
    dist, ind = clf.kneighbors(Z[:10], n_neighbors=2)
    assert isinstance(dist, list) and isinstance(ind, list) and len(dist) == len(ind) == A
    for a in range(A):
        assert dist[a].shape == ind[a].shape == (10, 2)
        assert (np.diff(dist[a], axis=1) >= 0).all()
        assert ind[a].max() < clf.cluster_centers_[a].shape[0]


def test_knc_on_raw_features_is_shared():
    shared = knc().fit(X, Y)
    assert shared.multilabel_features_ == "shared"
    assert all(c.shape[1] == X.shape[1] for c in shared.cluster_centers_)
    assert shared.predict(X).shape == (len(X), A)


def test_knc_blocks_needs_a_width_divisible_by_the_labels():
    with pytest.raises(ValueError, match="X has 8 columns, not a multiple of the 3 columns"):
        knc(multilabel_features="blocks").fit(X, Y)
    forced = knc(multilabel_features="blocks").fit(X[:, :6], Y)
    assert forced.multilabel_features_ == "blocks"
    assert all(c.shape[1] == 2 for c in forced.cluster_centers_)


def test_knc_blocks_of_another_count_raise(Z):
    with pytest.raises(ValueError, match="made of 3 unit-norm blocks.*y has 2 columns"):
        knc().fit(Z, Y[:, :2])
    assert knc(multilabel_features="shared").fit(Z, Y[:, :2]).multilabel_features_ == "shared"


def test_knc_auto_detects_one_dimensional_blocks():
    """A rows made of A unit-norm blocks of width 1 (embedding_dim=1) is the
    output of a multi-label embedder: "auto" should pick "blocks"."""
    est = embedder(embedding_dim=1).fit(X, Y)
    Z1 = est.transform(X)
    assert Z1.shape == (len(X), A)
    np.testing.assert_allclose(np.abs(Z1), 1.0)
    assert knc().fit(Z1, Y).multilabel_features_ == "blocks"


def test_knc_refit_single_label_drops_multilabel_attributes(Z):
    est = knc().fit(Z, Y)
    est.fit(Z, Y[:, 0])
    assert est.n_outputs_ == 1 and not hasattr(est, "multilabel_features_")
    assert isinstance(est.cluster_centers_, np.ndarray)
    assert est.predict(Z).shape == (len(X),)


# -- the pipeline of the issue -----------------------------------------------------


def test_pipeline_and_grid_search():
    pipe = make_pipeline(StandardScaler(), CLMLEEmbedder(**FAST_PARAMS), knc())
    pipe.fit(X, Y)
    pred = pipe.predict(X)
    assert pred.shape == (len(X), A) and set(np.unique(pred)) <= {0, 1}
    assert pipe[-1].multilabel_features_ == "blocks"
    assert mean_balanced_accuracy(Y, pred) > 0.65  # 0.72 measured; chance is 0.5
    assert mean_balanced_accuracy_scorer(pipe, X, Y) == pytest.approx(
        mean_balanced_accuracy(Y, pred))
    search = GridSearchCV(pipe, {"clmleembedder__a1": [0.5, "auto"]},
                          scoring=mean_balanced_accuracy_scorer, cv=2, n_jobs=1,
                          error_score="raise").fit(X, Y)
    scores = search.cv_results_["mean_test_score"]
    assert scores.shape == (2,) and np.isfinite(scores).all()
    assert ((scores >= 0) & (scores <= 1)).all()
    assert search.predict(X).shape == (len(X), A)


# -- CrossEntropyClassifier ------------------------------------------------------


def test_cross_entropy_outputs(ce):
    assert ce.n_outputs_ == A
    np.testing.assert_array_equal(ce.classes_, np.arange(A))
    pred = ce.predict(X)
    assert pred.shape == (len(X), A) and pred.dtype == np.int64
    logits = ce.decision_function(X)
    assert logits.shape == (len(X), A)
    np.testing.assert_array_equal(logits > 0, pred.astype(bool))
    proba = ce.predict_proba(X)
    assert isinstance(proba, list) and len(proba) == A
    for a, p in enumerate(proba):
        assert p.shape == (len(X), 2)
        np.testing.assert_allclose(p.sum(axis=1), 1.0)
        np.testing.assert_allclose(p[:, 1], expit(logits[:, a].astype(np.float64)), rtol=1e-6)


def test_cross_entropy_learns_the_labels():
    fitted = cross_entropy(max_iter=200).fit(X, Y)
    assert mean_balanced_accuracy(Y, fitted.predict(X)) > 0.7


def test_cross_entropy_balanced_weights_change_the_fit():
    plain = cross_entropy().fit(X, Y_IMB).decision_function(X)
    balanced = cross_entropy(class_weight="balanced").fit(X, Y_IMB).decision_function(X)
    assert np.abs(plain - balanced).max() > 1e-3
    # Up-weighted positives raise the rare labels' logits.
    assert (balanced[:, 2] - plain[:, 2]).mean() > 0


def test_cross_entropy_dict_class_weight_is_refused():
    with pytest.raises(ValueError, match="class_weight as a dict.*multi-label y"):
        cross_entropy(class_weight={0: 1.0, 1: 2.0}).fit(X, Y)


def test_cross_entropy_logit_adjustment():
    plain = cross_entropy().fit(X, Y_IMB)
    adjusted = cross_entropy(logit_adjustment=1.0).fit(X, Y_IMB)
    dec = adjusted.decision_function(X)
    assert dec.shape == (len(X), A) and np.isfinite(dec).all()
    assert np.abs(dec - plain.decision_function(X)).max() > 1e-3
    # A negative training offset (rare label) raises its logits at prediction.
    assert (dec[:, 2] - plain.decision_function(X)[:, 2]).mean() > 0


def test_cross_entropy_sample_weight():
    ones = np.ones(len(X))
    base = cross_entropy().fit(X, Y).decision_function(X)
    np.testing.assert_array_equal(
        cross_entropy().fit(X, Y, sample_weight=ones).decision_function(X), base
    )


def test_cross_entropy_early_stopping():
    est = cross_entropy(early_stopping=True, max_iter=10).fit(X, Y)
    assert all(np.isfinite(r["val_score"]) for r in est.history_)


def test_cross_entropy_early_stopping_with_few_unlabelled_rows():
    """Rows with no positive label form the hold-out's last stratum; when it
    has fewer than 3 rows the split warns and keeps them in training, as
    for a rare class (CLMLEEmbedder does)."""
    Y_few = Y.copy()
    Y_few[Y_few.sum(axis=1) == 0] = [1, 0, 0]
    Y_few[0] = 0  # one row with no positive label
    with pytest.warns(UserWarning, match="fewer than 3 rows"):
        embedder(early_stopping=True).fit(X, Y_few)
    with pytest.warns(UserWarning, match="fewer than 3 rows"):
        est = cross_entropy(early_stopping=True, max_iter=10).fit(X, Y_few)
    assert est.predict(X).shape == (len(X), A)


def _bce_case():
    logits = torch.tensor([[0.5, -1.0], [2.0, 0.3], [-0.7, 1.5], [0.1, -2.0],
                           [1.2, 0.8], [-1.5, -0.4]])
    target = torch.tensor([[1, 0], [1, 1], [0, 1], [0, 0], [1, 0], [0, 0]])
    counts = np.stack([np.bincount(col, minlength=2) for col in target.numpy().T])
    return logits, target, counts  # label 0: 3 / 3; label 1: 4 negatives, 2 positives


def test_bce_term_by_hand():
    term = BinaryCrossEntropyTerm(np.array([[3, 3], [4, 2]]), torch.device("cpu"))
    # Every logit 0: each label's mean logistic loss is log 2.
    assert float(term(torch.zeros(6, 2), torch.ones(6, 2, dtype=torch.long))) == \
        pytest.approx(2 * np.log(2), rel=1e-6)
    logits, target, counts = _bce_case()
    manual = 0.0
    for a in range(2):
        z, t = logits[:, a].double(), target[:, a].double()
        manual += float(torch.mean(-(t * torch.log(torch.sigmoid(z))
                                     + (1 - t) * torch.log(1 - torch.sigmoid(z)))))
    assert float(term(logits, target)) == pytest.approx(manual, rel=1e-5)


def test_bce_term_equals_torch():
    logits, target, counts = _bce_case()
    device = torch.device("cpu")
    plain = BinaryCrossEntropyTerm(counts, device)
    expected = sum(F.binary_cross_entropy_with_logits(logits[:, a], target[:, a].float())
                   for a in range(2))
    torch.testing.assert_close(plain(logits, target), expected)
    # Balanced: n / (2 n_ac); torch's pos_weight n_a0 / n_a1, up to the scale
    # n / (2 n_a0) of each label (the weights' mean over the rows is 1).
    weights = counts.sum(axis=1, keepdims=True) / (2.0 * counts)
    balanced = BinaryCrossEntropyTerm(counts, device, class_weight=weights)
    expected = sum(
        weights[a, 0] * F.binary_cross_entropy_with_logits(
            logits[:, a], target[:, a].float(),
            pos_weight=torch.tensor(counts[a, 0] / counts[a, 1], dtype=torch.float32))
        for a in range(2)
    )
    torch.testing.assert_close(balanced(logits, target), expected)
    # Sample weights: each label a weighted mean over the rows.
    sw = torch.tensor([1.0, 2.0, 0.5, 3.0, 1.0, 0.0])
    per = F.binary_cross_entropy_with_logits(logits, target.float(), reduction="none")
    expected = ((per * sw[:, None]).sum(0) / sw.sum()).sum()
    torch.testing.assert_close(plain(logits, target, sw), expected)


def test_bce_term_logit_adjustment():
    logits, target, counts = _bce_case()
    term = BinaryCrossEntropyTerm(counts, torch.device("cpu"), tau=2.0)
    offset = torch.tensor(2.0 * np.log(counts[:, 1] / counts[:, 0]), dtype=torch.float32)
    expected = F.binary_cross_entropy_with_logits(
        logits + offset, target.float(), reduction="none").mean(0).sum()
    torch.testing.assert_close(term(logits, target), expected)


# -- persistence --------------------------------------------------------------------


def _outputs(est, data):
    out = {}
    for method in ("transform", "predict", "decision_function", "predict_proba"):
        if hasattr(est, method):
            value = getattr(est, method)(data)
            out[method] = np.stack(value) if isinstance(value, list) else value
    if hasattr(est, "kneighbors"):
        dist, ind = est.kneighbors(data)
        out["kneighbors"] = (np.stack(dist), np.stack(ind))
    return out


def _assert_same_outputs(a, b, data):
    out_a, out_b = _outputs(a, data), _outputs(b, data)
    assert list(out_a) == list(out_b) and out_a
    for name in out_a:
        np.testing.assert_array_equal(out_a[name], out_b[name], err_msg=name)


@pytest.mark.parametrize("kind", ["embedder", "knc", "cross_entropy"])
def test_save_load_and_pickle(kind, emb, clf, ce, Z, tmp_path):
    est, data = {"embedder": (emb, X), "knc": (clf, Z), "cross_entropy": (ce, X)}[kind]
    path = tmp_path / "model.zip"
    sklearn_clmle.save(est, path)
    loaded = sklearn_clmle.load(path)
    pickled = pickle.loads(pickle.dumps(est))
    for back in (loaded, pickled):
        assert type(back) is type(est) and back.n_outputs_ == A
        assert sorted(vars(back)) == sorted(vars(est))
        _assert_same_outputs(est, back, data)
    if kind == "embedder":
        assert isinstance(loaded.module_, MultiHeadNet)
        assert list(loaded.get_feature_names_out()) == list(emb.get_feature_names_out())
        np.testing.assert_array_equal(loaded.cluster_labels_, emb.cluster_labels_)
    if kind == "knc":
        assert loaded.multilabel_features_ == "blocks"
