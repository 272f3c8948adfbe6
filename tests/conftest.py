"""Shared fixtures (the shared estimators are in ``_estimators.py``)."""

import pytest
from sklearn.datasets import make_classification


@pytest.fixture(scope="module")
def data():
    """300 rows, 10 features, 3 classes at 70/20/10 per cent."""
    X, y = make_classification(
        300, n_features=10, n_informative=6, n_classes=3,
        weights=[0.7, 0.2, 0.1], random_state=0,
    )
    return X, y
