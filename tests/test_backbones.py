"""Backbone registry: shapes, kwargs, errors, and use through the estimators."""

import numpy as np
import pytest
import torch
from _estimators import FAST_PARAMS

from sklearn_clmle import CLMLEEmbedder, CrossEntropyClassifier
from sklearn_clmle.backbones import BACKBONES, CNN2D, build_backbone


@pytest.mark.parametrize(
    "name, n_features, kwargs",
    [
        ("mlp", 10, {}),
        ("cnn1d", 40, {}),
        ("cnn1d", 80, {"in_channels": 2, "channels": (8, 8)}),
        ("cnn2d", 64, {}),
        ("cnn2d", 48, {"image_shape": (6, 8), "channels": (4,)}),
        ("cnn2d", 3 * 16, {"in_channels": 3}),
    ],
)
def test_registered_backbones_map_rows_to_embeddings(name, n_features, kwargs):
    module = build_backbone(name, n_features, 7, kwargs)
    out = module(torch.randn(5, n_features))
    assert out.shape == (5, 7)
    assert torch.isfinite(out).all()


def test_registry_names():
    assert set(BACKBONES) == {"mlp", "cnn1d", "cnn2d"}


@pytest.mark.parametrize(
    "name, n_features, kwargs, match",
    [
        ("cnn2d", 50, {}, "square image"),
        ("cnn2d", 64, {"image_shape": (4, 4)}, "image_shape"),
        ("cnn2d", 64, {"image_shape": (8, 8, 1)}, "image_shape"),
        ("cnn1d", 41, {"in_channels": 2}, "in_channels"),
    ],
)
def test_shape_mismatch_is_a_clear_error(name, n_features, kwargs, match):
    with pytest.raises(ValueError, match=match):
        build_backbone(name, n_features, 4, kwargs)


def test_image_shape_error_surfaces_from_fit():
    X = np.random.default_rng(0).normal(size=(40, 50))
    y = np.repeat([0, 1], 20)
    emb = CLMLEEmbedder(**{**FAST_PARAMS, "backbone": "cnn2d", "backbone_kwargs": None})
    with pytest.raises(ValueError, match="image_shape"):
        emb.fit(X, y)
    assert not hasattr(emb, "module_")


@pytest.mark.parametrize(
    "backbone, n_features, kwargs",
    [
        ("cnn1d", 40, {"channels": (4, 4)}),
        ("cnn2d", 64, {"channels": (4,)}),
    ],
)
def test_conv_backbones_train_through_both_estimators(backbone, n_features, kwargs):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, n_features)).astype(np.float32)
    y = np.repeat([0, 1, 2], 20)
    X[y == 1] += 1.0
    params = {**FAST_PARAMS, "backbone": backbone, "backbone_kwargs": kwargs}
    Z = CLMLEEmbedder(**params).fit_transform(X, y)
    assert Z.shape == (60, 4)
    np.testing.assert_allclose(np.linalg.norm(Z, axis=1), 1.0, rtol=1e-5)
    clf = CrossEntropyClassifier(
        backbone=backbone, backbone_kwargs=kwargs, max_iter=5, random_state=0
    ).fit(X, y)
    assert clf.predict(X).shape == (60,)


def test_cnn2d_learns_digits():
    """A real check that the image backbone sees images: it must fit digits."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0)[:600]
    y = y[:600]
    clf = CrossEntropyClassifier(
        # No flips: a mirrored digit is another digit (augment="auto" flips).
        backbone="cnn2d", max_epochs=90, augment=None, random_state=0, n_threads=1
    ).fit(X[:400], y[:400])
    assert clf.score(X[400:], y[400:]) > 0.85


def test_cnn2d_is_exported_with_its_defaults():
    m = CNN2D(64, 8)
    assert m.shape == (1, 8, 8)
