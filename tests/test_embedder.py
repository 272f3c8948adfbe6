import logging
import pickle

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from _estimators import FAST_PARAMS
from sklearn.base import clone

from sklearn_clmle import CLMLEEmbedder

FAST = dict(FAST_PARAMS, iterations_per_round=10, warmup_iterations=10,
            embedding_dim=8, backbone_kwargs={"hidden_layer_sizes": (16,)})


def fast(**kw):
    return CLMLEEmbedder(**{**FAST, **kw})


def test_transform_unit_norm_float32(data):
    X, y = data
    emb = fast().fit(X, y)
    Z = emb.transform(X)
    assert Z.shape == (300, 8) and Z.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(Z, axis=1), 1.0, rtol=1e-5)
    assert emb.n_features_in_ == 10
    np.testing.assert_array_equal(emb.classes_, [0, 1, 2])


def test_fitted_attributes(data):
    X, y = data
    emb = fast(cluster_size=20).fit(X, y)
    counts = np.bincount(y)
    assert emb.a1_max_ == pytest.approx(1 - np.cos(2 * np.pi / 3))
    np.testing.assert_allclose(emb.a2_max_, 1 - np.cos(2 * np.pi * counts / counts.sum()))
    assert emb.a1_ == pytest.approx(emb.a1_max_ / 2)
    np.testing.assert_array_equal(emb.n_clusters_per_class_, np.maximum(1, counts // 20))
    assert emb.cluster_centers_.shape == (emb.n_clusters_per_class_.sum(), 8)
    np.testing.assert_array_equal(emb.cluster_classes_[emb.cluster_labels_], y)
    h = emb.history_
    # 10 warm-up steps are 5 epochs of 2 batches of 240 rows; then 2 rounds
    # of iterations_per_round=10 steps, one "epoch" each.
    assert [row["phase"] for row in h] == ["warmup"] * 5 + ["train"] * 2
    assert [row["steps"] for row in h] == [2] * 5 + [10, 10]
    assert [row["epoch"] for row in h] == list(range(1, 8))
    assert all(np.isfinite(row["loss"]) and row["seconds"] >= 0 for row in h)
    assert {"phase", "epoch", "steps", "loss", "val_score", "learning_rate",
            "grad_norm", "seconds"} == set(h[0])
    assert len(emb.fit_stats_["round_times"]) == 2
    assert {"embed_time", "cluster_time"} == set(emb.fit_stats_["round_times"][0])
    assert emb.fit_stats_["final_spread"] > 0
    assert emb.n_iter_ == 2 and emb.n_steps_ == 20 and emb.best_epoch_ is None


def test_reproducible_with_random_state(data):
    X, y = data
    a = fast(random_state=3).fit(X, y).transform(X)
    b = fast(random_state=3).fit(X, y).transform(X)
    np.testing.assert_array_equal(a, b)
    c = fast(random_state=4).fit(X, y).transform(X)
    assert not np.array_equal(a, c)


def test_global_torch_rng_untouched(data):
    X, y = data
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    fast().fit(X, y)
    assert torch.equal(torch.rand(3), expected)


def test_pickle_roundtrip(data):
    X, y = data
    emb = fast().fit(X, y)
    loaded = pickle.loads(pickle.dumps(emb))
    np.testing.assert_array_equal(loaded.transform(X), emb.transform(X))


def test_cuda_fitted_model_loads_without_gpu(data, monkeypatch):
    # The mechanism: state is pickled with CPU tensors, and a model whose
    # device is CUDA runs on the CPU where no GPU exists.
    X, y = data
    emb = fast().fit(X, y)
    Z = emb.transform(X)
    emb.set_params(device="cuda")
    emb.device_ = torch.device("cuda")
    state = emb.__getstate__()
    tensors = list(state["module_"].state_dict().values())
    assert all(t.device.type == "cpu" for t in tensors)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    loaded = pickle.loads(pickle.dumps(emb))
    np.testing.assert_array_equal(loaded.transform(X), Z)


@pytest.mark.cuda
def test_cuda_fit_then_cpu_state(data):
    X, y = data
    emb = fast(device="cuda").fit(X, y)
    assert emb.device_.type == "cuda"
    state = emb.__getstate__()
    assert all(t.device.type == "cpu" for t in state["module_"].state_dict().values())
    assert next(emb.module_.parameters()).device.type == "cuda"
    Z = emb.transform(X)
    np.testing.assert_allclose(np.linalg.norm(Z, axis=1), 1.0, rtol=1e-5)


def test_clone_keeps_params():
    est = fast(a1=0.3, backbone_kwargs={"hidden_layer_sizes": (4,)})
    assert clone(est).get_params() == est.get_params()


def test_set_output_pandas_and_feature_names(data):
    pd = pytest.importorskip("pandas")
    X, y = data
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(10)])
    emb = fast().set_output(transform="pandas").fit(df, y)
    np.testing.assert_array_equal(emb.feature_names_in_, df.columns)
    out = emb.transform(df)
    assert list(out.columns) == [f"clmleembedder{i}" for i in range(8)]


@pytest.mark.parametrize(
    "y_kind", ["strings", "non_contiguous", "two_classes", "float_labels"]
)
def test_label_kinds(data, y_kind):
    X, y = data
    y = {
        "strings": np.array(["cat", "dog", "eel"])[y],
        "non_contiguous": np.array([-5, 10, 1000])[y],
        "two_classes": (y > 0).astype(int),
        "float_labels": y.astype(float),
    }[y_kind]
    emb = fast().fit(X, y)
    np.testing.assert_array_equal(emb.classes_, np.unique(y))
    assert np.isfinite(emb.transform(X)).all()


def test_tiny_classes_and_singletons():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(53, 4))
    y = np.r_[np.zeros(50, int), [1, 1], [2]]  # a class of 2 and a class of 1
    emb = fast(cluster_size=20, samples_per_cluster=20).fit(X, y)
    assert emb.n_clusters_per_class_.tolist() == [2, 1, 1]
    assert np.isfinite(emb.transform(X)).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.int32])
def test_input_dtypes(data, dtype):
    X, y = data
    Z = fast().fit(X.astype(dtype), y).transform(X.astype(dtype))
    assert Z.dtype == np.float32 and np.isfinite(Z).all()


def test_sparse_matches_dense(data):
    X, y = data
    X = np.where(np.abs(X) > 1, X, 0.0)
    dense = fast().fit(X, y).transform(X)
    sparse = fast().fit(sp.csr_matrix(X), y).transform(sp.csr_matrix(X))
    np.testing.assert_allclose(sparse, dense, atol=1e-6)


@pytest.mark.parametrize(
    "params",
    [dict(init="input"), dict(query_sampling="uniform"), dict(cost_sensitive=False),
     dict(scale=16.0), dict(warmup_iterations=0), dict(ce_weight=0.0),
     dict(ce_weight=2.0, init="input")],
)
def test_variants_run(data, params):
    X, y = data
    Z = fast(**params).fit(X, y).transform(X)
    assert np.isfinite(Z).all()


def test_ce_weight_changes_training(data):
    """The cross-entropy term takes part in training; 0 is the paper's loss alone."""
    X, y = data
    paper = fast(ce_weight=0.0).fit(X, y)
    ours = fast(ce_weight=1.0).fit(X, y)
    assert paper.history_[0] ["loss"] == ours.history_[0]["loss"]  # the warm-up
    assert not np.allclose([r["loss"] for r in paper.history_[1:]],
                           [r["loss"] for r in ours.history_[1:]])


def test_user_module_is_not_mutated(data):
    X, y = data
    module = torch.nn.Sequential(torch.nn.Linear(10, 16), torch.nn.ReLU(), torch.nn.Linear(16, 8))
    before = [p.detach().clone() for p in module.parameters()]
    emb = fast(backbone=module, backbone_kwargs=None).fit(X, y)
    assert all(torch.equal(a, b) for a, b in zip(before, module.parameters()))
    assert emb.module_ is not module
    assert emb.transform(X).shape == (300, 8)


def make_linear(n_in, n_out, bias=True):
    return torch.nn.Linear(n_in, n_out, bias=bias)


def test_backbone_factory(data):
    X, y = data
    emb = fast(backbone=make_linear, backbone_kwargs={"bias": False}).fit(X, y)
    assert isinstance(emb.module_, torch.nn.Linear) and emb.module_.bias is None


class _Exploding(torch.nn.Module):
    def __init__(self, n_in, n_out, fail_after=None, exc=None):
        super().__init__()
        self.lin = torch.nn.Linear(n_in, n_out)
        self.calls, self.fail_after, self.exc = 0, fail_after, exc

    def forward(self, x):
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            if self.exc is not None:
                raise self.exc
            return self.lin(x) * float("nan")
        return self.lin(x)


def test_nan_loss_raises_clear_error(data):
    X, y = data
    emb = fast(backbone=_Exploding, backbone_kwargs={"fail_after": 15})
    with pytest.raises(FloatingPointError, match="learning_rate"):
        emb.fit(X, y)


@pytest.mark.parametrize("exc", [KeyboardInterrupt(), RuntimeError("boom")])
def test_interrupted_fit_leaves_previous_model(data, exc):
    X, y = data
    emb = fast().fit(X, y)
    Z = emb.transform(X)
    module, centers = emb.module_, emb.cluster_centers_
    emb.set_params(backbone=_Exploding, backbone_kwargs={"fail_after": 12, "exc": exc})
    with pytest.raises(type(exc)):
        emb.fit(X, y)
    assert emb.module_ is module and emb.cluster_centers_ is centers
    emb.set_params(backbone="mlp", backbone_kwargs=FAST["backbone_kwargs"])
    np.testing.assert_array_equal(emb.transform(X), Z)


def test_failed_refit_on_other_features_keeps_input_attributes(data):
    X, y = data
    emb = fast().fit(X, y)
    Z = emb.transform(X)
    emb.set_params(backbone=_Exploding, backbone_kwargs={"fail_after": 3, "exc": RuntimeError()})
    with pytest.raises(RuntimeError):
        emb.fit(X[:, :5], y)
    assert emb.n_features_in_ == 10
    np.testing.assert_array_equal(emb.transform(X), Z)


def test_no_cuda_state_before_fit():
    CLMLEEmbedder(device="auto").get_params()
    assert not torch.cuda.is_initialized()


def test_verbose_levels(data, caplog):
    X, y = data
    with caplog.at_level(logging.DEBUG, logger="sklearn_clmle"):
        fast(verbose=0).fit(X, y)
    assert not caplog.records
    caplog.clear()
    fast(verbose=1).fit(X, y)
    lines = [r.getMessage() for r in caplog.records]
    assert sum("warm-up epoch" in m for m in lines) == 5
    assert sum("cluster-margin epoch" in m for m in lines) == 2
    assert any(m.startswith("cluster-margin epoch 2/2: loss") for m in lines)


def test_transform_in_bounded_batches(data):
    X, y = data
    emb = fast(inference_batch_size=7).fit(X, y)
    Z_small = emb.transform(X)
    emb.set_params(inference_batch_size=4096)
    np.testing.assert_allclose(emb.transform(X), Z_small, atol=1e-6)


def test_max_grad_norm_records_and_clips(data):
    X, y = data
    plain = fast(max_grad_norm=None).fit(X, y)
    assert all(np.isnan(row["grad_norm"]) for row in plain.history_)
    loose = fast(max_grad_norm=1e12).fit(X, y)  # never reached: bitwise the same fit
    np.testing.assert_array_equal(loose.transform(X), plain.transform(X))
    norms = np.array([row["grad_norm"] for row in loose.history_])
    assert norms.shape == (7,) and np.isfinite(norms).all() and (norms > 0).all()
    tight = fast(max_grad_norm=0.1 * norms.min()).fit(X, y)
    assert not np.array_equal(tight.transform(X), plain.transform(X))


def test_max_grad_norm_tames_unscaled_input():
    """Found by hypothesis: three rows of one feature at a scale of ~600."""
    X = np.array([[640.42265044], [125.73022109], [-132.10486329]])
    y = np.array([2, 0, 1])
    # The cross-entropy head on the raw output diverges without clipping...
    raw = dict(FAST_PARAMS, ce_input="features")
    with pytest.raises(FloatingPointError, match="StandardScaler"):
        CLMLEEmbedder(**raw, max_grad_norm=None).fit(X, y)
    Z = CLMLEEmbedder(**raw, max_grad_norm=1.0).fit(X, y).transform(X)
    assert np.isfinite(Z).all()
    # ...the default head on the unit-norm embedding does not, even unclipped.
    Z = CLMLEEmbedder(**FAST_PARAMS, max_grad_norm=None).fit(X, y).transform(X)
    assert np.isfinite(Z).all()
