"""save/load (the safe format), pickle and joblib round trips, version stamps."""

import copy
import io
import json
import pathlib
import pickle
import warnings
import zipfile

import joblib
import numpy as np
import pandas as pd
import pytest
import sklearn
import torch
from _estimators import cross_entropy, embedder, knc
from sklearn.datasets import make_classification
from sklearn.pipeline import make_pipeline

import sklearn_clmle
from sklearn_clmle import (
    CrossEntropyClassifier,
    InconsistentVersionWarning,
    KNearestClusterClassifier,
    load,
    save,
)
from sklearn_clmle._search import CentroidIndex

FACTORIES = {"embedder": embedder, "cross_entropy": cross_entropy, "knc": knc}
METHODS = ("transform", "predict", "predict_proba", "decision_function")


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(
        150, n_features=6, n_informative=4, n_classes=3, weights=[0.6, 0.3],
        random_state=0,
    )
    return X.astype(np.float32), y


@pytest.fixture(scope="module", params=sorted(FACTORIES))
def fitted(request, data):
    return FACTORIES[request.param]().fit(*data)


def assert_same_values(a, b, where="value"):
    """Recursive equality that also checks types, dtypes and module weights."""
    if isinstance(a, torch.nn.Module):
        assert type(a) is type(b), where
        sa, sb = a.state_dict(), b.state_dict()
        assert list(sa) == list(sb), where
        for k in sa:
            assert torch.equal(sa[k], sb[k]), f"{where}.{k}"
        return
    if isinstance(a, CentroidIndex):
        assert_same_values(
            {k: v for k, v in vars(a).items() if k != "_index"},
            {k: v for k, v in vars(b).items() if k != "_index"}, where,
        )
        return
    if isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.dtype == b.dtype, where
        np.testing.assert_array_equal(a, b, err_msg=where)
        return
    if isinstance(a, float) and np.isnan(a):
        assert isinstance(b, float) and np.isnan(b), where
        return
    if isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same_values(x, y, f"{where}[{i}]")
        return
    if isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b), where
        for k in a:
            assert_same_values(a[k], b[k], f"{where}[{k!r}]")
        return
    assert a == b, where


def assert_same_estimator(a, b, X):
    assert type(a) is type(b)
    assert_same_values(a.get_params(deep=False), b.get_params(deep=False), "params")
    assert sorted(vars(a)) == sorted(vars(b))
    for name, value in vars(a).items():
        assert_same_values(value, getattr(b, name), name)
    for method in METHODS:
        if hasattr(a, method):
            np.testing.assert_array_equal(
                getattr(a, method)(X), getattr(b, method)(X), err_msg=method
            )


def round_trip(estimator, tmp_path, **kwargs):
    path = tmp_path / "model.zip"
    save(estimator, path)
    return load(path, **kwargs)


def rewrite(path, member, data):
    """Replace one member of the archive at ``path``."""
    with zipfile.ZipFile(path) as archive:
        members = {n: archive.read(n) for n in archive.namelist()}
    members[member] = data
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)


def read_member(path, member):
    with zipfile.ZipFile(path) as archive:
        return archive.read(member)


class _Touch:
    """Unpickling this creates ``marker``: it stands for any code a pickle runs."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


# Round trips --------------------------------------------------------------------


def test_save_load_round_trip(fitted, data, tmp_path):
    loaded = round_trip(fitted, tmp_path)
    for name, value in vars(loaded).items():
        if isinstance(value, torch.nn.Module):
            assert not value.training
            assert all(p.device.type == "cpu" for p in value.parameters())
    assert_same_estimator(fitted, loaded, data[0])
    if "backbone_kwargs" in fitted.get_params():
        assert type(loaded.backbone_kwargs["hidden_layer_sizes"]) is tuple


@pytest.mark.parametrize("kind", sorted(FACTORIES))
def test_string_labels_and_feature_names(kind, data, tmp_path):
    X, y = data
    X = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    labels = np.array(["cat", "dog", "emu"], dtype=object)[y]
    est = FACTORIES[kind]().fit(X, labels)
    loaded = round_trip(est, tmp_path)
    assert_same_estimator(est, loaded, X)
    assert loaded.feature_names_in_.dtype == object
    if hasattr(loaded, "predict"):
        assert set(loaded.predict(X)) <= {"cat", "dog", "emu"}


@pytest.mark.parametrize("kind", sorted(FACTORIES))
def test_unfitted_round_trip(kind, tmp_path):
    est = FACTORIES[kind]()
    loaded = round_trip(est, tmp_path)
    assert_same_values(vars(est), vars(loaded), "unfitted")
    assert not hasattr(loaded, "classes_")


def test_pickle_and_joblib_round_trip(fitted, data, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error", InconsistentVersionWarning)
        assert_same_estimator(fitted, pickle.loads(pickle.dumps(fitted)), data[0])
        joblib.dump(fitted, tmp_path / "model.joblib")
        assert_same_estimator(fitted, joblib.load(tmp_path / "model.joblib"), data[0])


def test_pipeline_saved_step_by_step(data, tmp_path):
    X, y = data
    pipe = make_pipeline(FACTORIES["embedder"](), FACTORIES["knc"]()).fit(X, y)
    for i, (_, step) in enumerate(pipe.steps):
        save(step, tmp_path / f"step{i}.zip")
    loaded = make_pipeline(*(load(tmp_path / f"step{i}.zip") for i in range(2)))
    np.testing.assert_array_equal(loaded.predict_proba(X), pipe.predict_proba(X))


def test_fitted_on_cuda_loads_on_cpu(data, tmp_path):
    est = copy.deepcopy(FACTORIES["embedder"]().fit(*data))
    expected = est.transform(data[0])
    est.device_ = torch.device("cuda")  # as if fitted on a GPU
    loaded = round_trip(est, tmp_path)
    assert loaded.device_ == torch.device("cuda")
    np.testing.assert_array_equal(loaded.transform(data[0]), expected)


def _custom_factory(n_features_in, embedding_dim):
    return torch.nn.Sequential(
        torch.nn.Linear(n_features_in, 8), torch.nn.ReLU(), torch.nn.Linear(8, embedding_dim)
    )


@pytest.mark.parametrize("kind", ["embedder", "cross_entropy"])
@pytest.mark.parametrize("as_module", [True, False], ids=["module", "factory"])
def test_custom_backbone_must_be_passed_again(kind, as_module, data, tmp_path):
    backbone = _custom_factory(data[0].shape[1], 4) if as_module else _custom_factory
    est = FACTORIES[kind](backbone=backbone, backbone_kwargs=None).fit(*data)
    path = tmp_path / "model.zip"
    save(est, path)
    with pytest.raises(ValueError, match="backbone") as info:
        load(path)
    assert "Sequential" in str(info.value) or "_custom_factory" in str(info.value)
    loaded = load(path, backbone=backbone)
    assert loaded.backbone is backbone
    assert_same_estimator(est, loaded, data[0])


def test_backbone_argument_rejected_for_registered_backbone(fitted, tmp_path):
    path = tmp_path / "model.zip"
    save(fitted, path)
    with pytest.raises(ValueError, match="backbone"):
        load(path, backbone=_custom_factory)


def test_values_round_trip(tmp_path):
    est = CrossEntropyClassifier(class_weight={0: 1.0, 2: 3.5}, device=torch.device("cpu"))
    est.extra_ = {
        "nan": float("nan"), "inf": (float("inf"), -np.inf), "np": np.float32(0.5),
        "ints": [np.int64(3), True, None], "tag": {"__tuple__": "not a tag"},
        (1, "a"): np.arange(3, dtype=np.uint8), "u": np.array(["x", "yz"]),
        "obj": np.array([["a", 1], [2.5, False]], dtype=object),
    }
    loaded = round_trip(est, tmp_path)
    assert loaded.class_weight == {0: 1.0, 2: 3.5}
    assert loaded.device == torch.device("cpu")
    expected = dict(est.extra_, np=0.5, ints=[3, True, None])
    assert_same_values(expected, loaded.extra_, "extra_")


def test_set_output_and_metadata_requests_survive(data, tmp_path):
    with sklearn.config_context(enable_metadata_routing=True):
        est = FACTORIES["embedder"]().set_fit_request(sample_weight=True)
        est.set_output(transform="pandas")
        loaded = round_trip(est, tmp_path)
        assert (loaded.get_metadata_routing()._serialize()
                == est.get_metadata_routing()._serialize())
    assert loaded._sklearn_output_config == {"transform": "pandas"}


def test_load_leaves_torch_random_state_alone(fitted, tmp_path):
    path = tmp_path / "model.zip"
    save(fitted, path)
    before = torch.get_rng_state()
    load(path)
    assert torch.equal(before, torch.get_rng_state())


# Refusals ---------------------------------------------------------------------------


def test_random_state_instance_saved_as_none(data, tmp_path):
    est = FACTORIES["knc"](random_state=np.random.RandomState(0)).fit(*data)
    with pytest.warns(UserWarning, match="random_state"):
        loaded = round_trip(est, tmp_path)
    assert loaded.random_state is None
    np.testing.assert_array_equal(loaded.predict(data[0]), est.predict(data[0]))


def test_unsupported_values_name_the_attribute(tmp_path):
    est = KNearestClusterClassifier()
    est.weird_ = {"a": [object()]}
    with pytest.raises(TypeError, match="weird_.*object"):
        save(est, tmp_path / "model.zip")
    with pytest.raises(TypeError, match="scale"):
        save(KNearestClusterClassifier(scale=1j), tmp_path / "model.zip")
    assert not (tmp_path / "model.zip").exists()


def test_only_package_estimators(tmp_path):
    class Sub(KNearestClusterClassifier):
        pass

    with pytest.raises(TypeError, match="save supports"):
        save(Sub(), tmp_path / "model.zip")
    path = tmp_path / "model.zip"
    save(KNearestClusterClassifier(), path)
    meta = json.loads(read_member(path, "meta.json"))
    rewrite(path, "meta.json", json.dumps(dict(meta, **{"class": "Pipeline"})))
    with pytest.raises(ValueError, match="Pipeline"):
        load(path)


# Tampered files: errors, and nothing executed ----------------------------------------


@pytest.fixture
def saved(tmp_path):
    X, y = make_classification(80, n_features=5, random_state=0)
    path = tmp_path / "model.zip"
    save(FACTORIES["embedder"]().fit(X, y), path)
    return path


def test_payload_would_run_if_unpickled(tmp_path):
    # The marker trick works, so its absence below means nothing ran.
    marker = tmp_path / "ran"
    pickle.loads(pickle.dumps(_Touch(marker)))
    assert marker.exists()


@pytest.mark.parametrize("writer", ["pickle", "torch"])
def test_pickle_in_weights_is_refused(saved, tmp_path, writer):
    marker = tmp_path / "ran"
    buf = io.BytesIO()
    if writer == "pickle":
        pickle.dump({"module_": _Touch(marker)}, buf, protocol=2)
    else:
        torch.save({"module_": _Touch(marker)}, buf)
    rewrite(saved, "weights.pt", buf.getvalue())
    with pytest.raises(ValueError, match="not a valid sklearn_clmle model file") as info:
        load(saved)
    assert not marker.exists()
    assert "other than tensors" in str(info.value)
    assert isinstance(info.value.__cause__, pickle.UnpicklingError)


def test_object_array_is_refused(saved, tmp_path):
    marker = tmp_path / "ran"
    buf = io.BytesIO()
    np.savez(buf, a0=np.array([_Touch(marker)], dtype=object))
    rewrite(saved, "arrays.npz", buf.getvalue())
    with pytest.raises(ValueError, match="not a valid sklearn_clmle model file"):
        load(saved)
    assert not marker.exists()


def test_plain_pickle_file_is_refused(saved, tmp_path):
    marker = tmp_path / "ran"
    saved.write_bytes(pickle.dumps(_Touch(marker)))
    with pytest.raises(ValueError, match="not a valid sklearn_clmle model file"):
        load(saved)
    assert not marker.exists()


def _weights(path):
    return torch.load(io.BytesIO(read_member(path, "weights.pt")), weights_only=True)


@pytest.mark.parametrize("change", ["shape", "not_a_tensor", "missing_module"])
def test_bad_weights_are_refused(saved, change):
    weights = _weights(saved)
    key = next(iter(weights["module_"]))
    if change == "shape":
        weights["module_"][key] = torch.zeros(1, 1)
    elif change == "not_a_tensor":
        weights["module_"][key] = 3
    else:
        del weights["module_"]
    buf = io.BytesIO()
    torch.save(weights, buf)
    rewrite(saved, "weights.pt", buf.getvalue())
    with pytest.raises(ValueError, match="not a valid sklearn_clmle model file") as info:
        load(saved)
    if change == "shape":
        assert "size mismatch" in str(info.value)


@pytest.mark.parametrize("member", ["attributes.json", "params.json", "meta.json"])
def test_malformed_members_are_refused(saved, member):
    rewrite(saved, member, b"{not json")
    with pytest.raises(ValueError, match="not a valid sklearn_clmle model file"):
        load(saved)


def test_missing_member_is_refused(saved):
    with zipfile.ZipFile(saved) as archive:
        members = {n: archive.read(n) for n in archive.namelist() if n != "arrays.npz"}
    with zipfile.ZipFile(saved, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    with pytest.raises(ValueError, match="not a valid sklearn_clmle model file") as info:
        load(saved)
    assert isinstance(info.value.__cause__, KeyError)


# Versions ---------------------------------------------------------------------------


def test_other_package_version_warns_and_loads(saved):
    meta = json.loads(read_member(saved, "meta.json"))
    rewrite(saved, "meta.json", json.dumps(dict(meta, sklearn_clmle_version="0.0.1")))
    with pytest.warns(InconsistentVersionWarning, match="0.0.1") as record:
        est = load(saved)
    assert record[0].message.original_version == "0.0.1"
    assert record[0].message.current_version == sklearn_clmle.__version__
    assert hasattr(est, "module_")


def test_other_format_version_is_refused(saved):
    meta = json.loads(read_member(saved, "meta.json"))
    rewrite(saved, "meta.json", json.dumps(dict(meta, format_version=99)))
    with pytest.raises(ValueError, match="format version 99"):
        load(saved)


def test_pickle_from_other_version_warns(fitted, data, monkeypatch):
    monkeypatch.setattr(sklearn_clmle._versioning, "__version__", "0.0.1")
    payload = pickle.dumps(fitted)
    monkeypatch.undo()
    with pytest.warns(InconsistentVersionWarning, match="0.0.1"):
        loaded = pickle.loads(payload)
    assert "_sklearn_clmle_version" not in vars(loaded)
    assert_same_estimator(fitted, loaded, data[0])
