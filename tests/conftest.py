"""Shared fixtures (the shared estimators are in ``_estimators.py``).

The suite runs on the CPU, also on a machine with a GPU: its expectations
(bit-for-bit reproducibility, CPU-equal outputs, no CUDA state before a fit)
are the CPU's, and CI has no GPU. The GPU is hidden here, before anything
initialises CUDA. ``SKLEARN_CLMLE_TEST_CUDA=1`` leaves it visible, for the
tests marked ``cuda`` (skipped wherever no GPU is visible)::

    SKLEARN_CLMLE_TEST_CUDA=1 python -m pytest tests -m cuda
"""

import os

if os.environ.get("SKLEARN_CLMLE_TEST_CUDA") != "1":
    os.environ["CUDA_VISIBLE_DEVICES"] = ""

import pytest  # noqa: E402
from sklearn.datasets import make_classification  # noqa: E402


@pytest.fixture(scope="module")
def data():
    """300 rows, 10 features, 3 classes at 70/20/10 per cent."""
    X, y = make_classification(
        300, n_features=10, n_informative=6, n_classes=3,
        weights=[0.7, 0.2, 0.1], random_state=0,
    )
    return X, y


def pytest_collection_modifyitems(config, items):
    """Skip the tests marked ``cuda`` where no CUDA GPU is visible."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU and SKLEARN_CLMLE_TEST_CUDA=1")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)
