"""CrossEntropyClassifier: the backbone trained with (adjusted) cross-entropy.

The deep baselines a practitioner would pick instead of CLMLE, trained by
the same machinery (backbones, optimiser, seeding, devices) so that a
comparison differs only in the loss and the decision rule.
"""

from numbers import Integral, Real

import numpy as np
import torch
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from sklearn_clmle._engine import run_phase
from sklearn_clmle._rows import Rows, network_outputs
from sklearn_clmle._runtime import inference_device, resolve_device, torch_threads
from sklearn_clmle._steps import BinaryCrossEntropyTerm, CrossEntropyTerm
from sklearn_clmle._torch_base import TORCH_PARAMETER_CONSTRAINTS, TorchEstimatorMixin
from sklearn_clmle._training import TrainingData, cross_entropy_phase
from sklearn_clmle._validation import (
    is_multi_output,
    keep_fitted_state_on_failure,
    validate_numeric,
)
from sklearn_clmle._validation_score import balanced_accuracy
from sklearn_clmle.augment import resolve_augment


class CrossEntropyClassifier(TorchEstimatorMixin, ClassifierMixin, BaseEstimator):
    """A torch backbone with a linear head, trained with cross-entropy.

    With ``class_weight="balanced"`` it is class-weighted cross-entropy;
    with ``logit_adjustment=tau > 0`` it is the logit-adjusted loss of Menon
    et al. (ICLR 2021): the training logits get ``tau * log(prior)`` added,
    which makes the plain logits at prediction time approximately
    balanced-error optimal. Both are the usual deep baselines for long-tailed
    data. It runs on the same engine as :class:`~sklearn_clmle.CLMLEEmbedder`
    (optimiser, schedule, validation split, early stopping, augmentation),
    and its default budget of 180 epochs is the embedders' 30 warm-up + 150
    main epochs at the same batch size, so comparisons are like for like.

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
    max_epochs : int, default=180
        Passes over the training rows (the most that runs with
        ``early_stopping``).
    max_iter : int or None, default=None
        Iteration-level control: this many optimiser steps instead of
        ``max_epochs`` epochs.
    batch_size : int, default=240
        Mini-batch size (CLMLE's default 12 clusters x 20 samples); every
        epoch visits every row once, in a new random order.
    optimizer : {"sgd", "adamw"}, default="sgd"
        As for :class:`~sklearn_clmle.CLMLEEmbedder`.
    learning_rate : float or "auto", default="auto"
        Starting rate; ``"auto"`` is 0.1 for SGD and 0.003 for AdamW.
    lr_schedule : {"constant", "cosine", "plateau"}, default="constant"
        As for :class:`~sklearn_clmle.CLMLEEmbedder`.
    momentum : float, default=0.9
        SGD momentum.
    weight_decay : float, default=5e-4
        L2 penalty (weight decay of SGD or AdamW).
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of every class (a class of fewer
        than 3 rows stays whole in training, with a warning), score it by
        balanced accuracy after every epoch, stop after
        ``n_iter_no_change`` epochs without an improvement of more than
        ``tol``, and restore the best epoch's weights.
    validation_fraction : float, default=0.1
        Share of each class held out when ``early_stopping``.
    n_iter_no_change : int, default=10
        Epochs without improvement before stopping.
    tol : float, default=1e-4
        Smallest improvement of the validation score that counts.
    augment : callable, "auto" or None, default="auto"
        Applied to every training batch, as for
        :class:`~sklearn_clmle.CLMLEEmbedder` (``"auto"``: flips for
        ``"cnn2d"``, shifts for ``"cnn1d"``, nothing for ``"mlp"``).
    max_grad_norm : float or None, default=2.0
        Clip the total L2 norm of the gradients to this value before each
        step (``torch.nn.utils.clip_grad_norm_``); None does not clip (the
        papers). Steps whose norm is below it are unchanged. 2 by
        measurement: without clipping, CLMLE at the default rate diverged
        or collapsed on MNIST-1D (``benchmarks/results/engine.md``).
    inference_batch_size : int, default=4096
        Rows per forward pass in ``predict``.
    device : str, torch.device or None, default="auto"
        ``"auto"`` (CUDA if available), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    mixed_precision : {None, "bf16", "fp16"}, default=None
        Train the forward pass and the loss under ``torch.autocast`` in
        bfloat16 (``"bf16"``: a GPU, or a CPU with bfloat16 support) or
        float16 (``"fp16"``: CUDA only, with a gradient scaler); None trains
        in float32. Weights, ``transform``/``predict`` and the clustering
        stay float32. Measured in ``benchmarks/results/gpu.md``.
    n_threads : int or None, default=None
        torch CPU threads inside ``fit``/``predict`` (restored afterwards).
    deterministic : bool, default=False
        Ask torch for deterministic algorithms (best effort on GPU).
    random_state : int, RandomState instance or None, default=None
        Seeds initialisation, batches and dropout; CPU runs are reproducible.
    verbose : int, default=0
        0 is silent; 1 logs one line per epoch on the ``sklearn_clmle``
        logger (and draws a progress bar on a terminal with ``tqdm``).

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
    history_ : list of dict
        One row per epoch, as for :class:`~sklearn_clmle.CLMLEEmbedder`
        (``val_score`` is the validation balanced accuracy).
    loss_curve_ : ndarray of shape (`n_iter_`,)
        Mean training loss per epoch.
    validation_scores_ : ndarray of shape (`n_iter_`,) or None
        Validation balanced accuracy per epoch (None without
        ``early_stopping``).
    best_epoch_ : int or None
        Epoch whose weights were kept; None without a validation part.
    n_iter_ : int
        Epochs run.
    n_steps_ : int
        Optimiser steps run.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Feature names, when X has string column names.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from sklearn_clmle import CrossEntropyClassifier
    >>> X, y = make_classification(200, weights=[0.9], random_state=0)
    >>> clf = CrossEntropyClassifier(logit_adjustment=1.0, max_epochs=5,
    ...                              random_state=0).fit(X, y)
    >>> clf.predict_proba(X).shape
    (200, 2)
    """

    _parameter_constraints = {
        **TORCH_PARAMETER_CONSTRAINTS,
        "class_weight": [StrOptions({"balanced"}), dict, None],
        "logit_adjustment": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left"), None],
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
        max_epochs=180,
        max_iter=None,
        batch_size=240,
        optimizer="sgd",
        learning_rate="auto",
        lr_schedule="constant",
        momentum=0.9,
        weight_decay=5e-4,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        tol=1e-4,
        augment="auto",
        max_grad_norm=2.0,
        inference_batch_size=4096,
        device="auto",
        mixed_precision=None,
        n_threads=None,
        deterministic=False,
        random_state=None,
        verbose=0,
    ):
        self.class_weight = class_weight
        self.logit_adjustment = logit_adjustment
        self.embedding_dim = embedding_dim
        self.backbone = backbone
        self.backbone_kwargs = backbone_kwargs
        self.max_epochs = max_epochs
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.lr_schedule = lr_schedule
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.augment = augment
        self.max_grad_norm = max_grad_norm
        self.inference_batch_size = inference_batch_size
        self.device = device
        self.mixed_precision = mixed_precision
        self.n_threads = n_threads
        self.deterministic = deterministic
        self.random_state = random_state
        self.verbose = verbose

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
        if is_multi_output(y):
            X, y_enc, _, counts, sample_weight = self._validate_multilabel_data(
                X, y, sample_weight
            )
            classes = np.arange(y_enc.shape[1])
            weights = self._multilabel_weights(counts)
            prior = counts[:, 1] / counts.sum(axis=1)
        else:
            X, y_enc, classes, counts, sample_weight = self._validate_training_data(
                X, y, sample_weight
            )
            weights = self._class_weights(classes, counts)
            prior = counts / counts.sum()
        multilabel = y_enc.ndim == 2
        device = resolve_device(self.device)
        np_rng = self._numpy_rng()
        with self._torch_session(np_rng, device), self._logging():
            module = self._build_backbone(X.shape[1]).to(device)
            head = torch.nn.Linear(self.embedding_dim, classes.size).to(device)
            settings = self._train_settings(
                batch_size=int(self.batch_size),
                max_steps=None if self.max_iter is None else int(self.max_iter),
                augment=resolve_augment(self.augment, module),
            )
            generator = self._batch_generator(np_rng, device)
            data = TrainingData(X, y_enc, settings, device, np_rng, classes, sample_weight)
            # The adjustment uses the prior of all of y, as predictions assume.
            if multilabel:
                term = BinaryCrossEntropyTerm(counts, device, float(self.logit_adjustment),
                                              weights)
            else:
                term = CrossEntropyTerm(
                    "logit_adjusted" if self.logit_adjustment > 0 else "plain", counts,
                    device, tau=float(self.logit_adjustment), class_weight=weights,
                )
            network = torch.nn.Sequential(module, head)

            def score_validation():
                logits = network_outputs(network, data.val, settings.inference_batch_size)
                return balanced_accuracy(data.y_val, _decide(logits, multilabel))

            validate = None if data.val is None else score_validation
            optimizer = settings.make_optimizer(list(network.parameters()))
            history = []
            result = run_phase(
                cross_entropy_phase(
                    "train", module, head, data, term, optimizer, settings, np_rng,
                    generator, settings.main_steps(data.rows_per_rank),
                    schedule=settings.lr_schedule, validate=validate,
                    early_stopping=settings.early_stopping,
                ),
                optimizer, [module, head], settings, history,
            )
        self.classes_ = classes
        self.n_outputs_ = y_enc.shape[1] if multilabel else 1
        self.module_ = module.eval()
        self.head_ = head.eval()
        self.device_ = device
        self.class_prior_ = prior
        self.history_ = history
        self.loss_curve_ = np.array([row["loss"] for row in history])
        self.validation_scores_ = (
            None if validate is None else np.array([row["val_score"] for row in history])
        )
        self.best_epoch_ = result.best_epoch
        self.n_iter_ = result.epochs
        self.n_steps_ = result.steps
        return self

    def _multilabel_weights(self, counts):
        """``(n_labels, 2)`` weights of every label's negatives and positives."""
        if self.class_weight is None:
            return None
        if not isinstance(self.class_weight, str):
            raise ValueError(
                "class_weight as a dict names classes of a single-label y; for a "
                "multi-label y use class_weight='balanced' (per label, "
                "n / (2 n_c): positives weighted n_neg / n_pos times the negatives) "
                "or None."
            )
        return counts.sum(axis=1, keepdims=True) / (2.0 * np.maximum(counts, 1))

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
            return network_outputs(network, Rows(X, device), self.inference_batch_size)

    def decision_function(self, X):
        """Logits per class (binary: the logit difference, shape (n,)).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data.

        Returns
        -------
        scores : ndarray of shape (n_samples,) or (n_samples, n_classes)
            Higher means more likely. After a multi-label fit, the
            (n_samples, n_labels) logits (label predicted where > 0).
        """
        logits = self._logits(X)
        if self._n_labels > 1:
            return logits
        return logits[:, 1] - logits[:, 0] if self.classes_.size == 2 else logits

    def predict_proba(self, X):
        """Softmax of the logits.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes), or list of ndarray
            Class probabilities, columns in ``classes_`` order. After a
            multi-label fit, scikit-learn's multi-output convention (as
            ``MultiOutputClassifier``): one (n_samples, 2) array per label,
            the sigmoid of its logit in column 1.
        """
        logits = self._logits(X).astype(np.float64)
        if self._n_labels > 1:
            p = expit(logits)
            return [np.column_stack([1.0 - p[:, a], p[:, a]]) for a in range(p.shape[1])]
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
        if self._n_labels > 1:
            return _decide(logits, True)
        return self.classes_[np.argmax(logits, axis=1)]

    @property
    def _n_labels(self):
        return getattr(self, "n_outputs_", 1)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.classifier_tags.multi_label = True
        tags.target_tags.multi_output = True
        tags.non_deterministic = False
        return tags


def _decide(logits, multilabel):
    """Encoded predictions: the largest logit, or every label's logit > 0."""
    if multilabel:
        return (logits > 0).astype(np.int64)
    return np.argmax(logits, axis=1)
