"""Shared test settings."""

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
