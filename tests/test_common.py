"""scikit-learn's estimator checks on every public estimator."""

from _estimators import FAST_PARAMS
from sklearn.utils.estimator_checks import parametrize_with_checks

from sklearn_clmle import (
    CLMLEEmbedder,
    CrossEntropyClassifier,
    KNearestClusterClassifier,
    LMLEEmbedder,
)

#: Weighting a row by an integer k cannot reproduce fitting on k copies of it
#: for a model trained by stochastic mini-batch SGD: the copies change which
#: batches are drawn (and, for CLMLE, the clusters themselves), so the two
#: fits follow different random paths. Unit weights do give exactly the
#: unweighted fit (tests/test_sample_weight.py).
_SW_EQUIVALENCE = (
    "sample_weight acts on the loss of a stochastic mini-batch fit; repeated "
    "rows change the batches drawn, so weights cannot equal repetition."
)
EXPECTED_FAILED_CHECKS = {
    "CLMLEEmbedder": {
        "check_sample_weight_equivalence_on_dense_data": _SW_EQUIVALENCE,
        "check_sample_weight_equivalence_on_sparse_data": _SW_EQUIVALENCE,
    },
    "CrossEntropyClassifier": {
        "check_sample_weight_equivalence_on_dense_data": _SW_EQUIVALENCE,
        "check_sample_weight_equivalence_on_sparse_data": _SW_EQUIVALENCE,
    },
    "KNearestClusterClassifier": {},
}
EXPECTED_FAILED_CHECKS["LMLEEmbedder"] = EXPECTED_FAILED_CHECKS["CLMLEEmbedder"]
#: FAST_PARAMS without the embedder-only settings.
CE_PARAMS = dict(
    max_iter=100, embedding_dim=8, backbone_kwargs={"hidden_layer_sizes": (16,)},
    random_state=0, n_threads=1,
)


@parametrize_with_checks(
    [
        CLMLEEmbedder(**FAST_PARAMS),
        LMLEEmbedder(**FAST_PARAMS),
        KNearestClusterClassifier(n_neighbors=5, cluster_size=5, random_state=0),
        CrossEntropyClassifier(**CE_PARAMS),
    ],
    expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS[type(est).__name__],
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
