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
#: The check indexes predict_proba as one (n_samples, n_outputs) array whenever
#: decision_function exists; for a multi-label y these estimators return the
#: multi-output convention of MultiOutputClassifier instead, a list of
#: (n_samples, 2) arrays per label (which
#: check_classifiers_multilabel_output_format_predict_proba accepts), so that
#: a class the k-NC retrieves no cluster of keeps probability exactly 0.
_MULTIOUTPUT_PROBA = (
    "multi-label predict_proba is a list of per-label (n, 2) arrays "
    "(MultiOutputClassifier's convention); the check indexes it as one array."
)
#: torch's float32 matrix products pick their kernels by the batch shape, so
#: one row scored alone and in a batch can differ in the last bits (about
#: 1e-7 relative, over the check's rtol=1e-7 on some CPUs).
_SUBSET_FLOAT32 = (
    "float32 forward passes differ in the last bits with the batch shape "
    "(kernel choice by size), about 1e-7 relative."
)
EXPECTED_FAILED_CHECKS = {
    "CLMLEEmbedder": {
        "check_sample_weight_equivalence_on_dense_data": _SW_EQUIVALENCE,
        "check_sample_weight_equivalence_on_sparse_data": _SW_EQUIVALENCE,
    },
    "CrossEntropyClassifier": {
        "check_sample_weight_equivalence_on_dense_data": _SW_EQUIVALENCE,
        "check_sample_weight_equivalence_on_sparse_data": _SW_EQUIVALENCE,
        "check_classifier_multioutput": _MULTIOUTPUT_PROBA,
        "check_methods_subset_invariance": _SUBSET_FLOAT32,
    },
    "KNearestClusterClassifier": {"check_classifier_multioutput": _MULTIOUTPUT_PROBA},
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
