"""scikit-learn's estimator checks on every public estimator."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from conftest import FAST_PARAMS

from sklearn_clmle import CLMLEEmbedder, KNearestClusterClassifier


EXPECTED_FAILED_CHECKS = {"CLMLEEmbedder": {}, "KNearestClusterClassifier": {}}


@parametrize_with_checks(
    [
        CLMLEEmbedder(**FAST_PARAMS),
        KNearestClusterClassifier(n_neighbors=5, cluster_size=5, random_state=0),
    ],
    expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS[type(est).__name__],
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
