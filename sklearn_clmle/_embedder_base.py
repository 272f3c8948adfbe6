"""What the two embedders share: parameters, fit, transform, tags.

:class:`~sklearn_clmle.CLMLEEmbedder` and :class:`~sklearn_clmle.LMLEEmbedder`
differ only in their margins, their batches and their loss, supplied by the
hooks ``_resolve_margins``, ``_objective_config`` and ``_make_objective``;
the alternating training is :func:`sklearn_clmle._training.fit_embedding`
on the shared engine (:mod:`sklearn_clmle._engine`).
"""

from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from sklearn_clmle._clustering import resolve_cluster_size
from sklearn_clmle._multihead import multihead_net
from sklearn_clmle._multilabel_training import block_embedding, fit_multilabel_embedding
from sklearn_clmle._rows import Rows, embed
from sklearn_clmle._runtime import inference_device, resolve_device, torch_threads
from sklearn_clmle._torch_base import TORCH_PARAMETER_CONSTRAINTS, TorchEstimatorMixin
from sklearn_clmle._training import fit_embedding
from sklearn_clmle._validation import (
    is_multi_output,
    keep_fitted_state_on_failure,
    validate_numeric,
)
from sklearn_clmle.augment import resolve_augment

#: Parameter docs both embedders share, spliced into their docstrings.
SHARED_TRAINING_DOC = """\
    n_rounds : int, default=5
        Clusterings of the main phase (paper: within 5): the training rows
        are re-clustered every ``ceil(max_epochs / n_rounds)`` epochs.
    max_epochs : int, default=150
        Passes over the training rows in the main phase (after the
        warm-up): ten times the data gets ten times the steps. With
        ``early_stopping`` it is the most that runs.
    iterations_per_round : int or None, default=None
        Iteration-level control: ``n_rounds`` rounds of this many steps
        (each one row of ``history_``) instead of ``max_epochs``.
    init : {"warmup", "input"}, default="warmup"
        Prior features of the first clustering: a cross-entropy warm-up of
        the same backbone (standing in for the paper's pre-trained network),
        or the (L2-normalised) inputs.
    warmup_epochs : int, default=30
        Epochs of the cross-entropy warm-up (``init="warmup"``).
    warmup_iterations : int or None, default=None
        Steps of the warm-up instead of ``warmup_epochs`` (0 skips it).
    ce_loss : {"plain", "balanced", "logit_adjusted"}, default="logit_adjusted"
        The cross-entropy of the warm-up and of the ``ce_weight`` term:
        plain, class-weighted (``n / (C n_c)``) or logit-adjusted (training
        logits plus ``log prior``, Menon et al. 2021). Not in the papers
        (they pre-train with plain softmax); the default by measurement
        (``benchmarks/results/engine.md``).
    ce_input : {"embedding", "features"}, default="embedding"
        What the cross-entropy head reads: ``10 *`` the unit-norm embedding
        that the margins shape (so the term cannot be lowered while the
        embedding collapses to a point), or the raw backbone output. Not in
        the papers; "embedding" by measurement (``engine.md``: "features"
        collapsed some fits to chance).
    optimizer : {"sgd", "adamw"}, default="sgd"
        SGD with ``momentum`` and ``weight_decay`` (the papers), or AdamW.
    learning_rate : float or "auto", default="auto"
        Starting learning rate; ``"auto"`` is 0.1 for SGD and 0.003 for
        AdamW (measured, ``benchmarks/results/engine.md``).
    lr_schedule : {"constant", "cosine", "plateau"}, default="constant"
        Learning rate over the main phase: constant, cosine decay to 0, or
        the papers' division by 10 on a plateau of the validation score (of
        the training loss without a validation part). The warm-up runs at
        the starting rate.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of every class, score it after
        every epoch of the main phase by the nearest-cluster rule (balanced
        accuracy), stop after ``n_iter_no_change`` epochs without an
        improvement of more than ``tol`` and restore the best epoch's
        weights. A class of fewer than 3 rows stays whole in training (a
        warning names it). The final clustering uses all rows.
    validation_fraction : float, default=0.1
        Share of each class held out when ``early_stopping``.
    n_iter_no_change : int, default=10
        Epochs without improvement before stopping (and, halved, before
        ``lr_schedule="plateau"`` divides the rate by 10).
    tol : float, default=1e-4
        Smallest improvement of the validation score that counts.
    augment : callable, "auto" or None, default="auto"
        Applied to every training batch on the device (never in
        ``transform`` nor to the validation part): ``augment(batch,
        generator) -> batch`` of the same shape, with ``generator`` a seeded
        ``torch.Generator``. ``"auto"`` is a random horizontal flip for
        ``"cnn2d"`` and a random shift for ``"cnn1d"``
        (:mod:`sklearn_clmle.augment`), nothing for ``"mlp"`` or a custom
        backbone; None turns it off."""


class EmbedderBase(
    TorchEstimatorMixin, ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator
):
    """Fit and transform of an embedder trained by cluster/class alternation."""

    #: Whether ``fit`` takes multi-label indicator targets (CLMLE Sec. 5).
    _multilabel = False

    _parameter_constraints = {
        **TORCH_PARAMETER_CONSTRAINTS,
        "cluster_size": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "n_rounds": [Interval(Integral, 1, None, closed="left")],
        "iterations_per_round": [Interval(Integral, 1, None, closed="left"), None],
        "init": [StrOptions({"warmup", "input"})],
        "warmup_epochs": [Interval(Integral, 0, None, closed="left")],
        "warmup_iterations": [Interval(Integral, 0, None, closed="left"), None],
        "ce_loss": [StrOptions({"plain", "balanced", "logit_adjusted"})],
        "ce_input": [StrOptions({"embedding", "features"})],
        "cost_sensitive": ["boolean"],
        "ce_weight": [Interval(Real, 0, None, closed="left")],
    }

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, sample_weight=None):
        """Learn the embedding.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data; any numeric dtype, cast to float32. Sparse input
            is densified one batch at a time.
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
            Class labels (at least two classes), or, where the estimator
            supports it (:class:`~sklearn_clmle.CLMLEEmbedder`), a binary
            indicator matrix of labels (every column 0 and 1, both present).
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
        if self._multilabel and is_multi_output(y):
            return self._fit_multilabel(X, y, sample_weight)
        X, y_enc, classes, counts, sample_weight = self._validate_training_data(
            X, y, sample_weight
        )
        cluster_size = resolve_cluster_size(self.cluster_size, y_enc.size, classes.size)
        margins = self._resolve_margins(counts, classes, cluster_size)
        device = resolve_device(self.device)
        np_rng = self._numpy_rng()
        objective_cfg = self._objective_config(margins, cluster_size)
        with self._torch_session(np_rng, device), self._logging():
            module = self._build_backbone(X.shape[1])
            settings = self._settings(objective_cfg["batch_size"], module)
            generator = self._batch_generator(np_rng, device)
            clusters, history, info = fit_embedding(
                module, X, y_enc, classes, device, settings, np_rng,
                self._make_objective(objective_cfg, device), init=self.init,
                cluster_size=cluster_size, generator=generator,
                sample_weight=sample_weight,
            )
        # Everything is computed; only now does the estimator change, so an
        # exception or an interrupt above leaves a fitted estimator as it was.
        self.classes_ = classes
        self.n_outputs_ = 1
        self.__dict__.pop("label_names_", None)
        self.cluster_centers_ = clusters.centers
        self.cluster_classes_ = classes[clusters.cluster_class]
        self.cluster_labels_ = clusters.labels
        self.n_clusters_per_class_ = np.bincount(
            clusters.cluster_class, minlength=classes.size
        )
        return self._set_fitted(module, device, margins, cluster_size, history, info)

    def _fit_multilabel(self, X, Y, sample_weight):
        """One shared backbone, one embedding head and Eq. 9 per label (Sec. 5)."""
        if self.init == "input":
            raise ValueError(
                "init='input' clusters the raw inputs, but a multi-label fit "
                "clusters every label on its own embedding head: use "
                "init='warmup' (the default)."
            )
        X, Y, names, counts, sample_weight = self._validate_multilabel_data(
            X, Y, sample_weight
        )
        n_labels = Y.shape[1]
        cluster_size = resolve_cluster_size(self.cluster_size, Y.shape[0], 2)
        binary = np.arange(2)
        per_label = [self._resolve_margins(c, binary, cluster_size) for c in counts]
        # a1's bound depends on the number of classes only: 2 for every label.
        margins = {"a1_max_": per_label[0]["a1_max_"], "a1_": per_label[0]["a1_"],
                   "a2_max_": np.stack([m["a2_max_"] for m in per_label]),
                   "a2_": np.stack([m["a2_"] for m in per_label])}
        cfgs = [self._objective_config(m, cluster_size) for m in per_label]
        device = resolve_device(self.device)
        np_rng = self._numpy_rng()
        with self._torch_session(np_rng, device), self._logging():
            backbone = self._build_backbone(X.shape[1])
            net = multihead_net(backbone, X.shape[1], n_labels, self.embedding_dim)
            settings = self._settings(cfgs[0]["batch_size"], backbone)
            generator = self._batch_generator(np_rng, device)
            clusters, history, info = fit_multilabel_embedding(
                net, X, Y, device, settings, np_rng,
                [self._make_objective(cfg, device) for cfg in cfgs], init=self.init,
                cluster_size=cluster_size, generator=generator,
                sample_weight=sample_weight, batches=self.multilabel_batches,
            )
        self.classes_ = np.arange(n_labels)
        self.n_outputs_ = n_labels
        self.label_names_ = names
        self.cluster_centers_ = [c.centers for c in clusters]
        self.cluster_classes_ = [c.cluster_class for c in clusters]
        self.cluster_labels_ = np.column_stack([c.labels for c in clusters])
        self.n_clusters_per_class_ = np.stack(
            [np.bincount(c.cluster_class, minlength=2) for c in clusters]
        )
        return self._set_fitted(net, device, margins, cluster_size, history, info)

    def _set_fitted(self, module, device, margins, cluster_size, history, info):
        """The fitted attributes both kinds of fit share."""
        self.module_ = module.eval()
        self.device_ = device
        for name, value in margins.items():
            setattr(self, name, value)
        self.cluster_size_ = cluster_size
        self.history_ = history
        self.fit_stats_ = {k: v for k, v in info.items()
                           if k not in ("best_epoch", "n_epochs", "n_steps")}
        self.best_epoch_ = info["best_epoch"]
        self.n_iter_ = info["n_epochs"]
        self.n_steps_ = info["n_steps"]
        return self

    def _settings(self, batch_size, module):
        """The engine settings of this fit (budgets, the auxiliary term, augment)."""
        max_steps = None
        if self.iterations_per_round is not None:
            max_steps = int(self.iterations_per_round) * int(self.n_rounds)
        warmup_steps = None if self.warmup_iterations is None else int(self.warmup_iterations)
        return self._train_settings(
            batch_size=batch_size, max_steps=max_steps,
            warmup_epochs=int(self.warmup_epochs), warmup_steps=warmup_steps,
            n_rounds=int(self.n_rounds), ce_loss=self.ce_loss, ce_input=self.ce_input,
            ce_weight=float(self.ce_weight), cost_sensitive=bool(self.cost_sensitive),
            augment=resolve_augment(self.augment, module),
        )

    def transform(self, X):
        """Embed ``X`` onto the unit sphere.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data to embed.

        Returns
        -------
        Z : ndarray of shape (n_samples, embedding_dim) or \
                (n_samples, n_labels * embedding_dim), dtype float32
            Rows of unit L2 norm; after a multi-label fit, the labels'
            embeddings side by side (label ``a`` in columns ``a * d`` to
            ``(a + 1) * d - 1``), each block of unit norm.
        """
        check_is_fitted(self)
        X = validate_numeric(
            self, X, accept_sparse="csr", dtype=[np.float32, np.float64], reset=False
        )
        device = inference_device(self.device)
        with torch_threads(self.n_threads):
            module = self.module_.to(device)
            rows = Rows(X, device)
            if self._n_labels > 1:
                return block_embedding(module, rows, self.inference_batch_size)
            Z = embed(module, rows, self.inference_batch_size)
        return Z.reshape(X.shape[0], self.embedding_dim)

    @property
    def _n_labels(self):
        return getattr(self, "n_outputs_", 1)

    @property
    def _n_features_out(self):
        return self.embedding_dim * self._n_labels

    def get_feature_names_out(self, input_features=None):
        """Output feature names: ``<class>0``, ... or ``<class>_<label>_<j>``.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Checked against the input feature names seen in fit.

        Returns
        -------
        feature_names_out : ndarray of str objects
            After a multi-label fit, ``clmleembedder_<label>_<j>`` with the
            label's name (the column of a DataFrame ``y``, else ``y<a>``),
            so each column says which label's embedding it belongs to.
        """
        names = super().get_feature_names_out(input_features)
        if self._n_labels == 1:
            return names
        prefix = type(self).__name__.lower()
        return np.asarray([f"{prefix}_{label}_{j}" for label in self.label_names_
                           for j in range(self.embedding_dim)], dtype=object)

    def _rebuild_modules(self):
        modules = super()._rebuild_modules()
        if modules and self._n_labels > 1:
            with torch.random.fork_rng(devices=[]):
                modules["module_"] = multihead_net(
                    modules["module_"], self.n_features_in_, self.n_outputs_,
                    self.embedding_dim,
                )
        return modules

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.input_tags.sparse = True
        tags.transformer_tags.preserves_dtype = ["float32"]
        tags.target_tags.multi_output = self._multilabel
        tags.non_deterministic = False
        return tags
