"""Small, fast estimators the test modules share (one place for their settings)."""

from sklearn_clmle import (
    CLMLEEmbedder,
    CrossEntropyClassifier,
    KNearestClusterClassifier,
    LMLEEmbedder,
)

#: Embedder settings so a fit takes a fraction of a second on one CPU core:
#: iteration-level budgets (2 rounds of 5 steps after 5 warm-up steps).
FAST_PARAMS = dict(
    n_rounds=2,
    iterations_per_round=5,
    warmup_iterations=5,
    embedding_dim=4,
    backbone_kwargs={"hidden_layer_sizes": (8,)},
    random_state=0,
    n_threads=1,
)
#: The same for CrossEntropyClassifier (no rounds or warm-up).
CE_FAST_PARAMS = dict(
    max_iter=20, embedding_dim=4, backbone_kwargs={"hidden_layer_sizes": (8,)},
    random_state=0, n_threads=1,
)


def embedder(**kw):
    """A fast :class:`CLMLEEmbedder`; keywords override ``FAST_PARAMS``."""
    return CLMLEEmbedder(**{**FAST_PARAMS, **kw})


def lmle(**kw):
    """A fast :class:`LMLEEmbedder`."""
    return LMLEEmbedder(**{**FAST_PARAMS, **kw})


def cross_entropy(**kw):
    """A fast :class:`CrossEntropyClassifier`."""
    return CrossEntropyClassifier(**{**CE_FAST_PARAMS, **kw})


def knc(**kw):
    """A small :class:`KNearestClusterClassifier` (N = 3, clusters of 5)."""
    return KNearestClusterClassifier(**{"n_neighbors": 3, "cluster_size": 5,
                                        "random_state": 0, **kw})
