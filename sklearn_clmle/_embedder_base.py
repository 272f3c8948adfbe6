"""What the two embedders share: fit, transform, tags and logging.

:class:`~sklearn_clmle.CLMLEEmbedder` and :class:`~sklearn_clmle.LMLEEmbedder`
differ only in their margins, their batches and their loss, supplied by the
hooks ``_resolve_margins``, ``_objective_config`` and ``_make_objective``;
the alternating training loop is :func:`sklearn_clmle._training.fit_embedding`.
"""

import logging

import numpy as np
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.utils.validation import check_is_fitted

from sklearn_clmle._clustering import resolve_cluster_size
from sklearn_clmle._runtime import inference_device, resolve_device, torch_threads
from sklearn_clmle._torch_base import TorchEstimatorMixin
from sklearn_clmle._training import Rows, embed, fit_embedding, logger
from sklearn_clmle._validation import (
    keep_fitted_state_on_failure,
    validate_numeric,
)


class EmbedderBase(
    TorchEstimatorMixin, ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator
):
    """Fit and transform of an embedder trained by cluster/class alternation."""

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, sample_weight=None):
        """Learn the embedding.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data; any numeric dtype, cast to float32. Sparse input
            is densified one batch at a time.
        y : array-like of shape (n_samples,)
            Class labels (at least two classes).
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative row weights. Each anchor's loss terms (and the
            cross-entropy warm-up and ``ce_weight`` term) are multiplied by
            its weight, on top of the cost-sensitive class weights; unit
            weights give exactly the unweighted fit. Weights act on the loss
            only: clustering and batch sampling see every row. In a
            ``Pipeline`` or ``GridSearchCV`` with metadata routing enabled,
            request them with ``set_fit_request(sample_weight=True)``.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        with keep_fitted_state_on_failure(self):
            return self._fit(X, y, sample_weight)

    def _fit(self, X, y, sample_weight):
        X, y_enc, classes, counts, sample_weight = self._validate_training_data(
            X, y, sample_weight
        )
        cluster_size = resolve_cluster_size(self.cluster_size, y_enc.size, classes.size)
        margins = self._resolve_margins(counts, classes, cluster_size)
        device = resolve_device(self.device)
        np_rng = self._numpy_rng()
        cfg = self._training_config(margins, cluster_size)
        if self.verbose:
            _ensure_log_handler()
        with self._torch_session(np_rng, device):
            module = self._build_backbone(X.shape[1])
            with _log_level(logging.INFO if self.verbose else None):
                clusters, history = fit_embedding(
                    module, X, y_enc, classes.size, device, cfg, np_rng,
                    self._make_objective(cfg, device), sample_weight,
                )
        # Everything is computed; only now does the estimator change, so an
        # exception or an interrupt above leaves a fitted estimator as it was.
        self.classes_ = classes
        self.module_ = module.eval()
        self.device_ = device
        for name, value in margins.items():
            setattr(self, name, value)
        self.cluster_size_ = cluster_size
        self.cluster_centers_ = clusters.centers
        self.cluster_classes_ = classes[clusters.cluster_class]
        self.cluster_labels_ = clusters.labels
        self.n_clusters_per_class_ = np.bincount(
            clusters.cluster_class, minlength=classes.size
        )
        self.history_ = history
        self.n_iter_ = self.n_rounds * self.iterations_per_round
        return self

    def transform(self, X):
        """Embed ``X`` onto the unit sphere.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data to embed.

        Returns
        -------
        Z : ndarray of shape (n_samples, embedding_dim), dtype float32
            Rows of unit L2 norm.
        """
        check_is_fitted(self)
        X = validate_numeric(
            self, X, accept_sparse="csr", dtype=[np.float32, np.float64], reset=False
        )
        device = inference_device(self.device)
        with torch_threads(self.n_threads):
            module = self.module_.to(device)
            Z = embed(module, Rows(X, device), self.inference_batch_size)
        return Z.reshape(X.shape[0], self.embedding_dim)

    @property
    def _n_features_out(self):
        return self.embedding_dim

    def _training_config(self, margins, cluster_size):
        return {
            **self._objective_config(margins, cluster_size),
            "ce_weight": float(self.ce_weight),
            "cost_sensitive": bool(self.cost_sensitive),
            "cluster_size": cluster_size,
            "n_rounds": int(self.n_rounds),
            "iterations_per_round": int(self.iterations_per_round),
            "init": self.init,
            "warmup_iterations": int(self.warmup_iterations),
            "embedding_dim": int(self.embedding_dim),
            "inference_batch_size": int(self.inference_batch_size),
            "make_optimizer": self._optimizer_factory(),
            "max_grad_norm": self.max_grad_norm,
            "verbose": self.verbose,
        }

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.input_tags.sparse = True
        tags.transformer_tags.preserves_dtype = ["float32"]
        tags.non_deterministic = False
        return tags


class _log_level:
    """Temporarily lower the package logger's level (None: leave it)."""

    def __init__(self, level):
        self.level = level

    def __enter__(self):
        self.previous = logger.level
        if self.level is not None:
            logger.setLevel(self.level)

    def __exit__(self, *exc):
        logger.setLevel(self.previous)


def _ensure_log_handler():
    if not logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("[CLMLE] %(message)s"))
        logger.addHandler(handler)
