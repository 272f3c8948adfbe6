"""sklearn_clmle.tta: features of an image and of its mirror, side by side."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.decomposition import PCA
from sklearn.preprocessing import FunctionTransformer

from sklearn_clmle.tta import flip_concatenate

IDENTITY = FunctionTransformer().fit(np.zeros((1, 12)))


def test_flip_concatenate_mirrors_each_image_row():
    X = np.arange(12.0).reshape(2, 6)  # two 2 x 3 images
    out = flip_concatenate(IDENTITY, X, image_shape=(2, 3))
    assert out.shape == (2, 12)
    assert_array_equal(out[:, :6], X)
    assert_array_equal(out[0, 6:], [2, 1, 0, 5, 4, 3])
    assert_array_equal(out[1, 6:], [8, 7, 6, 11, 10, 9])


def test_flip_concatenate_channel_major_images():
    X = np.arange(12.0).reshape(1, 12)  # one 2-channel 2 x 3 image
    out = flip_concatenate(IDENTITY, X, image_shape=(2, 2, 3))
    expected = X.reshape(2, 2, 3)[:, :, ::-1].ravel()
    assert_array_equal(out[0, 12:], expected)
    assert_array_equal(out[0, 12:], [2, 1, 0, 5, 4, 3, 8, 7, 6, 11, 10, 9])


def test_flip_concatenate_is_transform_of_both():
    rng = np.random.RandomState(0)
    X = rng.rand(20, 16)
    pca = PCA(3, random_state=0).fit(X)
    flipped = X.reshape(20, 4, 4)[:, :, ::-1].reshape(20, 16)
    out = flip_concatenate(pca, X, image_shape=[4, 4])
    assert out.shape == (20, 6)
    assert_allclose(out, np.hstack([pca.transform(X), pca.transform(flipped)]))
    # Mirroring twice is the identity: the halves swap.
    twice = flip_concatenate(pca, flipped, image_shape=(4, 4))
    assert_allclose(twice, np.hstack([out[:, 3:], out[:, :3]]))


@pytest.mark.parametrize("image_shape", [(3, 3), (2, 2, 2)])
def test_flip_concatenate_shape_must_match_n_features(image_shape):
    with pytest.raises(ValueError, match=r"image_shape=.* but X has n_features=12"):
        flip_concatenate(IDENTITY, np.zeros((2, 12)), image_shape=image_shape)


@pytest.mark.parametrize("image_shape", [12, (12,), (1, 2, 2, 3), (3, 0), (3, -4), (3, 4.0),
                                         "3x4"])
def test_flip_concatenate_bad_image_shape(image_shape):
    with pytest.raises(ValueError, match="image_shape must be a tuple of 2 or 3"):
        flip_concatenate(IDENTITY, np.zeros((2, 12)), image_shape=image_shape)


def test_flip_concatenate_needs_a_transformer():
    with pytest.raises(TypeError, match="transformer must have a transform method"):
        flip_concatenate(object(), np.zeros((2, 4)), image_shape=(2, 2))
