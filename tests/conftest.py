"""Shared test settings."""

import pytest
from sklearn.datasets import make_classification

#: Small settings so a fit takes a fraction of a second on one CPU core.
FAST_PARAMS = dict(
    n_rounds=2,
    iterations_per_round=5,
    warmup_iterations=5,
    embedding_dim=4,
    backbone_kwargs={"hidden_layer_sizes": (8,)},
    random_state=0,
    n_threads=1,
)


@pytest.fixture(scope="module")
def data():
    """300 rows, 10 features, 3 classes at 70/20/10 per cent."""
    X, y = make_classification(
        300, n_features=10, n_informative=6, n_classes=3,
        weights=[0.7, 0.2, 0.1], random_state=0,
    )
    return X, y
