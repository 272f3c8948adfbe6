"""scikit-learn's estimator checks on every public estimator."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from sklearn_clmle import CLMLEEmbedder

# Small settings so each check fits in well under a second on one CPU core.
FAST = dict(
    n_rounds=2,
    iterations_per_round=5,
    warmup_iterations=5,
    embedding_dim=4,
    backbone_kwargs={"hidden_layer_sizes": (8,)},
    random_state=0,
    n_threads=1,
)

EXPECTED_FAILED_CHECKS = {"CLMLEEmbedder": {}}


@parametrize_with_checks(
    [CLMLEEmbedder(**FAST)],
    expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS[type(est).__name__],
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
