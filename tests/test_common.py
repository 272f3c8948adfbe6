"""scikit-learn's estimator checks on every public estimator."""

from conftest import FAST_PARAMS
from sklearn.utils.estimator_checks import parametrize_with_checks

from sklearn_clmle import (
    CLMLEEmbedder,
    CrossEntropyClassifier,
    KNearestClusterClassifier,
)

EXPECTED_FAILED_CHECKS = {
    "CLMLEEmbedder": {},
    "CrossEntropyClassifier": {},
    "KNearestClusterClassifier": {},
}
#: FAST_PARAMS without the embedder-only settings.
CE_PARAMS = dict(
    max_iter=100, embedding_dim=8, backbone_kwargs={"hidden_layer_sizes": (16,)},
    random_state=0, n_threads=1,
)


@parametrize_with_checks(
    [
        CLMLEEmbedder(**FAST_PARAMS),
        KNearestClusterClassifier(n_neighbors=5, cluster_size=5, random_state=0),
        CrossEntropyClassifier(**CE_PARAMS),
    ],
    expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS[type(est).__name__],
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
