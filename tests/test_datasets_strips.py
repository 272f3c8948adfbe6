"""sklearn_clmle.datasets.load_digit_strips: multi-label strips of real digits."""

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from sklearn.datasets import load_digits

from sklearn_clmle.datasets import load_digit_strips


@pytest.fixture(scope="module")
def defaults():
    return load_digit_strips()


def _digit_rows(X, n_digits):
    """Index into load_digits of each 8x8 image of each strip, (n, n_digits)."""
    digits, _ = load_digits(return_X_y=True)
    index = {row.tobytes(): i for i, row in enumerate(digits)}
    assert len(index) == len(digits)  # no duplicate images: pixels identify rows
    blocks = X.reshape(len(X), 8, n_digits, 8).transpose(0, 2, 1, 3)
    return np.array([[index[b.reshape(64).tobytes()] for b in strip] for strip in blocks])


def test_shapes_values_and_names(defaults):
    X_train, X_test, Y_train, Y_test, names = defaults
    assert X_train.shape == (3000, 192) and X_test.shape == (1500, 192)
    assert Y_train.shape == (3000, 10) and Y_test.shape == (1500, 10)
    assert X_train.dtype == X_test.dtype == np.float64
    assert X_train.min() >= 0 and X_train.max() <= 16
    assert set(np.unique(Y_train)) == set(np.unique(Y_test)) == {0, 1}
    assert names == [f"has_{k}" for k in range(10)]
    X, _, Y, _, _ = load_digit_strips(n_digits=2, n_train=7, n_test=5, random_state=1)
    assert X.shape == (7, 128) and Y.shape == (7, 10)


def test_attributes_say_which_digits_each_strip_shows(defaults):
    X_train, X_test, Y_train, Y_test, _ = defaults
    _, labels = load_digits(return_X_y=True)
    for X, Y in ((X_train, Y_train), (X_test, Y_test)):
        shown = labels[_digit_rows(X, 3)]
        expected = (shown[:, :, None] == np.arange(10)).any(axis=1)
        assert_array_equal(Y, expected.astype(int))
        assert np.all(Y.sum(axis=1) >= 1) and np.all(Y.sum(axis=1) <= 3)


def test_no_test_image_is_in_the_train_pool(defaults):
    X_train, X_test, _, _, _ = defaults
    train_rows = set(_digit_rows(X_train, 3).ravel())
    test_rows = set(_digit_rows(X_test, 3).ravel())
    assert not train_rows & test_rows
    assert len(train_rows) + len(test_rows) > 1000  # both pools are used widely


def test_positive_rates_decrease_with_the_digit(defaults):
    _, _, Y_train, Y_test, _ = defaults
    for Y in (Y_train, Y_test):
        rates = Y.mean(axis=0)
        assert np.all(np.diff(rates) < 0), rates
        assert rates[0] > 0.7 and rates[1] > 0.5 and rates[-1] < 0.02
        # Both values present in every attribute, with room for CV folds.
        assert Y.sum(axis=0).min() >= 20 and (1 - Y).sum(axis=0).min() >= 20
    w = 100.0 ** (-np.arange(10) / 9)
    expected = 1 - (1 - w / w.sum()) ** 3
    assert np.allclose(Y_train.mean(axis=0), expected, atol=0.03)


def test_deterministic_from_random_state():
    first = load_digit_strips(n_train=50, n_test=20, random_state=3)
    again = load_digit_strips(n_train=50, n_test=20, random_state=3)
    other = load_digit_strips(n_train=50, n_test=20, random_state=4)
    for a, b in zip(first[:4], again[:4]):
        assert_array_equal(a, b)
    assert not np.array_equal(first[0], other[0])


def test_imbalance_ratio_one_is_balanced():
    _, _, Y, _, _ = load_digit_strips(n_train=2000, n_test=10, imbalance_ratio=1)
    rates = Y.mean(axis=0)
    assert np.all(np.abs(rates - (1 - 0.9 ** 3)) < 0.04), rates


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_digits": 0}, "n_digits must be an int >= 1"),
        ({"n_digits": 2.5}, "n_digits must be an int >= 1"),
        ({"n_train": 0}, "n_train must be an int >= 1"),
        ({"n_test": -3}, "n_test must be an int >= 1"),
        ({"n_test": True}, "n_test must be an int >= 1"),
        ({"imbalance_ratio": 0.5}, "imbalance_ratio must be a finite number >= 1"),
        ({"imbalance_ratio": np.inf}, "imbalance_ratio must be a finite number >= 1"),
        ({"imbalance_ratio": np.nan}, "imbalance_ratio must be a finite number >= 1"),
        ({"imbalance_ratio": "high"}, "imbalance_ratio must be a finite number >= 1"),
    ],
)
def test_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        load_digit_strips(**kwargs)
