"""CrossEntropyClassifier: the backbone trained with (adjusted) cross-entropy.

The deep baselines a practitioner would pick instead of CLMLE, trained by
the same machinery (backbones, optimiser, seeding, devices) so that a
comparison differs only in the loss and the decision rule.
"""

from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from sklearn_clmle._runtime import inference_device, resolve_device, torch_threads
from sklearn_clmle._torch_base import TORCH_PARAMETER_CONSTRAINTS, TorchEstimatorMixin
from sklearn_clmle._training import Rows, cross_entropy_steps, embed
from sklearn_clmle._validation import (
    keep_fitted_state_on_failure,
    validate_numeric,
)


class CrossEntropyClassifier(TorchEstimatorMixin, ClassifierMixin, BaseEstimator):
    """A torch backbone with a linear head, trained with cross-entropy.

    With ``class_weight="balanced"`` it is class-weighted cross-entropy;
    with ``logit_adjustment=tau > 0`` it is the logit-adjusted loss of Menon
    et al. (ICLR 2021): the training logits get ``tau * log(prior)`` added,
    which makes the plain logits at prediction time approximately
    balanced-error optimal. Both are the usual deep baselines for long-tailed
    data; the backbone, optimiser and step count match
    :class:`~sklearn_clmle.CLMLEEmbedder`'s defaults (200 warm-up + 5 x 200
    CLMLE iterations = 1200 steps), so comparisons are like for like.

    Parameters
    ----------
    class_weight : "balanced", dict or None, default=None
        Per-class weights of the loss. ``"balanced"`` is
        ``n_samples / (n_classes * count_c)``, as in scikit-learn.
    logit_adjustment : float, default=0.0
        The temperature ``tau`` of logit adjustment; 0 disables it, Menon et
        al. recommend 1.
    embedding_dim : int, default=64
        Output width of the backbone, the input of the linear head.
    backbone : str, torch.nn.Module or callable, default="mlp"
        As for :class:`~sklearn_clmle.CLMLEEmbedder`.
    backbone_kwargs : dict, default=None
        Keyword arguments of a registered backbone.
    max_iter : int, default=1200
        Number of SGD steps.
    batch_size : int, default=240
        Mini-batch size (CLMLE's default 12 clusters x 20 samples).
    learning_rate : float, default=0.01
        SGD learning rate.
    momentum : float, default=0.9
        SGD momentum.
    weight_decay : float, default=5e-4
        L2 penalty.
    max_grad_norm : float or None, default=None
        Clip the total L2 norm of the gradients to this value before each
        SGD step (``torch.nn.utils.clip_grad_norm_``); None does not clip.
        Steps whose norm is below it are unchanged, so it only acts when
        training starts to blow up, e.g. on unscaled inputs or with a large
        ``learning_rate``.
    inference_batch_size : int, default=4096
        Rows per forward pass in ``predict``.
    device : str, torch.device or None, default="auto"
        ``"auto"`` (CUDA if available), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    n_threads : int or None, default=None
        torch CPU threads inside ``fit``/``predict`` (restored afterwards).
    deterministic : bool, default=False
        Ask torch for deterministic algorithms (best effort on GPU).
    random_state : int, RandomState instance or None, default=None
        Seeds initialisation, batches and dropout; CPU runs are reproducible.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    module_ : torch.nn.Module
        The trained backbone.
    head_ : torch.nn.Linear
        The trained linear head.
    class_prior_ : ndarray of shape (n_classes,)
        Training class frequencies.
    loss_curve_ : ndarray of shape (max_iter,)
        Training loss per step.
    grad_norm_curve_ : ndarray of shape (max_iter,)
        Total gradient norm per step before clipping (NaN when
        ``max_grad_norm=None``).
    n_iter_ : int
        Number of steps run.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Feature names, when X has string column names.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from sklearn_clmle import CrossEntropyClassifier
    >>> X, y = make_classification(200, weights=[0.9], random_state=0)
    >>> clf = CrossEntropyClassifier(logit_adjustment=1.0, max_iter=50,
    ...                              random_state=0).fit(X, y)
    >>> clf.predict_proba(X).shape
    (200, 2)
    """

    _parameter_constraints = {
        **TORCH_PARAMETER_CONSTRAINTS,
        "class_weight": [StrOptions({"balanced"}), dict, None],
        "logit_adjustment": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(
        self,
        class_weight=None,
        logit_adjustment=0.0,
        *,
        embedding_dim=64,
        backbone="mlp",
        backbone_kwargs=None,
        max_iter=1200,
        batch_size=240,
        learning_rate=0.01,
        momentum=0.9,
        weight_decay=5e-4,
        max_grad_norm=None,
        inference_batch_size=4096,
        device="auto",
        n_threads=None,
        deterministic=False,
        random_state=None,
    ):
        self.class_weight = class_weight
        self.logit_adjustment = logit_adjustment
        self.embedding_dim = embedding_dim
        self.backbone = backbone
        self.backbone_kwargs = backbone_kwargs
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.max_grad_norm = max_grad_norm
        self.inference_batch_size = inference_batch_size
        self.device = device
        self.n_threads = n_threads
        self.deterministic = deterministic
        self.random_state = random_state

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, sample_weight=None):
        """Train the backbone and the head.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,)
            Class labels (at least two classes).
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative row weights, multiplied with ``class_weight`` in the
            loss; unit weights give exactly the unweighted fit.

        Returns
        -------
        self : CrossEntropyClassifier
            The fitted estimator.
        """
        with keep_fitted_state_on_failure(self):
            return self._fit(X, y, sample_weight)

    def _fit(self, X, y, sample_weight):
        X, y_enc, classes, counts, sample_weight = self._validate_training_data(
            X, y, sample_weight
        )
        weights = self._class_weights(classes, counts)
        prior = counts / counts.sum()
        device = resolve_device(self.device)
        np_rng = self._numpy_rng()
        with self._torch_session(np_rng, device):
            module = self._build_backbone(X.shape[1]).to(device)
            head = torch.nn.Linear(self.embedding_dim, classes.size).to(device)
            optimizer = self._optimizer_factory()(
                list(module.parameters()) + list(head.parameters())
            )
            offset = None
            if self.logit_adjustment > 0:
                offset = torch.as_tensor(
                    self.logit_adjustment * np.log(prior), dtype=torch.float32,
                    device=device,
                )
            losses, norms = cross_entropy_steps(
                module, head, Rows(X, device), y_enc, optimizer, self.max_iter,
                self.batch_size, np_rng,
                class_weight=None if weights is None else torch.as_tensor(
                    weights, dtype=torch.float32, device=device
                ),
                logit_offset=offset,
                sample_weight=None if sample_weight is None else torch.as_tensor(
                    sample_weight, device=device
                ),
                max_grad_norm=self.max_grad_norm,
            )
        self.classes_ = classes
        self.module_ = module.eval()
        self.head_ = head.eval()
        self.device_ = device
        self.class_prior_ = prior
        self.loss_curve_ = losses
        self.grad_norm_curve_ = norms
        self.n_iter_ = self.max_iter
        return self

    def _class_weights(self, classes, counts):
        if self.class_weight is None:
            return None
        if isinstance(self.class_weight, str):
            return counts.sum() / (classes.size * counts.astype(np.float64))
        unknown = set(self.class_weight) - set(classes.tolist())
        if unknown:
            raise ValueError(
                f"class_weight has labels {sorted(unknown, key=str)} that are not in y."
            )
        return np.array([float(self.class_weight.get(c, 1.0)) for c in classes.tolist()])

    def _logits(self, X):
        check_is_fitted(self)
        X = validate_numeric(
            self, X, accept_sparse="csr", dtype=[np.float32, np.float64], reset=False
        )
        device = inference_device(self.device)
        with torch_threads(self.n_threads):
            # eval(): embed() restores the container's mode on both modules.
            network = torch.nn.Sequential(self.module_, self.head_).eval().to(device)
            return embed(network, Rows(X, device), self.inference_batch_size,
                         normalize=False)

    def decision_function(self, X):
        """Logits per class (binary: the logit difference, shape (n,)).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data.

        Returns
        -------
        scores : ndarray of shape (n_samples,) or (n_samples, n_classes)
            Higher means more likely.
        """
        logits = self._logits(X)
        return logits[:, 1] - logits[:, 0] if self.classes_.size == 2 else logits

    def predict_proba(self, X):
        """Softmax of the logits.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Class probabilities, columns in ``classes_`` order.
        """
        logits = self._logits(X).astype(np.float64)
        logits -= logits.max(axis=1, keepdims=True)
        proba = np.exp(logits)
        return proba / proba.sum(axis=1, keepdims=True)

    def predict(self, X):
        """Class with the largest logit.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Predicted labels.
        """
        logits = self._logits(X)
        return self.classes_[np.argmax(logits, axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.non_deterministic = False
        return tags
