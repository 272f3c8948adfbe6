"""Angular-margin softmax baselines (CosFace, ArcFace, SphereFace) on the package's engine.

The CLMLE paper's Table 2 compares against SphereFace (A-Softmax), CosFace
(LMCL) and ArcFace-like losses trained on the same network. Here the losses
come from ``pytorch_metric_learning.losses`` and are trained by exactly the
machinery of :class:`sklearn_clmle.CrossEntropyClassifier` (backbone,
optimiser, learning rate, schedule, gradient clipping, uniform mini-batches,
augmentation, seeding, budget in epochs): :class:`MetricLossClassifier`
mirrors ``CrossEntropyClassifier._fit`` with two changes only:

* the head is the identity on the backbone output, and the loss term is the
  pml loss, which owns the class-weight matrix ``W`` (embedding_dim x
  n_classes) and reads the raw embedding;
* ``W`` is trained by the same optimiser as the backbone (its parameters are
  in the optimiser's list, so weight decay and clipping apply to it too).

After fit, ``head_`` is a module giving the loss's own (scaled) logits
against ``W``, so ``predict`` works as for the cross-entropy classifier;
for verification use ``module_`` (the backbone), as for the other methods.

pml defaults (version 2.9.0), used unless ``margin``/``scale`` are given:
CosFace margin 0.35 (on the cosine), scale 64; ArcFace margin 28.6 degrees
(0.5 rad, on the angle), scale 64; SphereFace margin 4 (multiplicative on
the angle), scale 1 with the embedding's norm as its scale (A-Softmax).
"""

from numbers import Real

import numpy as np
import torch
from pytorch_metric_learning import losses as pml_losses
from pytorch_metric_learning.reducers import DoNothingReducer
from sklearn.base import _fit_context
from sklearn.utils._param_validation import Interval, StrOptions

from sklearn_clmle import CrossEntropyClassifier
from sklearn_clmle._engine import run_phase
from sklearn_clmle._loss import weighted_mean
from sklearn_clmle._runtime import resolve_device
from sklearn_clmle._training import TrainingData, cross_entropy_phase
from sklearn_clmle._validation import keep_fitted_state_on_failure
from sklearn_clmle.augment import resolve_augment

#: ``loss`` name: (pml class, its default margin, its default scale).
LOSSES = {
    "cosface": (pml_losses.CosFaceLoss, 0.35, 64.0),
    "arcface": (pml_losses.ArcFaceLoss, 28.6, 64.0),
    "sphereface": (pml_losses.SphereFaceLoss, 4, 1.0),
}


class PMLTerm:
    """A pml classification loss as the engine's ``term(logits, y, sample_weight)``.

    ``logits`` is the backbone output itself (the head is the identity);
    the per-row losses are averaged with the sample weights, as
    :class:`sklearn_clmle._steps.CrossEntropyTerm` does.
    """

    def __init__(self, loss):
        self.loss = loss

    def __call__(self, embeddings, target, sample_weight=None):
        out = self.loss(embeddings, target)
        per_row = out["loss"]["losses"]
        if sample_weight is None:
            return per_row.mean()
        return weighted_mean(per_row, sample_weight)


class PMLLogits(torch.nn.Module):
    """The loss's inference logits, ``scale * cos(z, W)`` (pml ``get_logits``)."""

    def __init__(self, loss):
        super().__init__()
        self.loss = loss

    def forward(self, z):
        return self.loss.get_logits(z)


class MetricLossClassifier(CrossEntropyClassifier):
    """A backbone trained with an angular-margin softmax loss from pml.

    Same parameters as :class:`sklearn_clmle.CrossEntropyClassifier` (its
    ``class_weight`` and ``logit_adjustment`` must stay at their defaults)
    plus:

    Parameters
    ----------
    loss : {"cosface", "arcface", "sphereface"}, default="cosface"
        ``pytorch_metric_learning.losses.CosFaceLoss``, ``ArcFaceLoss`` or
        ``SphereFaceLoss``.
    margin : float or None, default=None
        The loss's margin; None is pml's default (see the module docstring).
    scale : float or None, default=None
        The loss's scale; None is pml's default.
    """

    _parameter_constraints = {
        **CrossEntropyClassifier._parameter_constraints,
        "loss": [StrOptions(set(LOSSES))],
        "margin": [Interval(Real, 0, None, closed="left"), None],
        "scale": [Interval(Real, 0, None, closed="neither"), None],
    }

    def __init__(
        self,
        loss="cosface",
        margin=None,
        scale=None,
        *,
        class_weight=None,
        logit_adjustment=0.0,
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
        n_threads=None,
        deterministic=False,
        random_state=None,
        verbose=0,
    ):
        self.loss = loss
        self.margin = margin
        self.scale = scale
        super().__init__(
            class_weight=class_weight, logit_adjustment=logit_adjustment,
            embedding_dim=embedding_dim, backbone=backbone,
            backbone_kwargs=backbone_kwargs, max_epochs=max_epochs, max_iter=max_iter,
            batch_size=batch_size, optimizer=optimizer, learning_rate=learning_rate,
            lr_schedule=lr_schedule, momentum=momentum, weight_decay=weight_decay,
            early_stopping=early_stopping, validation_fraction=validation_fraction,
            n_iter_no_change=n_iter_no_change, tol=tol, augment=augment,
            max_grad_norm=max_grad_norm, inference_batch_size=inference_batch_size,
            device=device, n_threads=n_threads, deterministic=deterministic,
            random_state=random_state, verbose=verbose,
        )

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, sample_weight=None):
        """Train the backbone and the loss's class weights ``W``."""
        with keep_fitted_state_on_failure(self):
            return self._fit(X, y, sample_weight)

    def _fit(self, X, y, sample_weight):
        if self.class_weight is not None or self.logit_adjustment:
            raise ValueError("MetricLossClassifier takes neither class_weight nor "
                             "logit_adjustment: the pml loss is unweighted.")
        if self.early_stopping:
            raise ValueError("MetricLossClassifier does not score a validation part; "
                             "use early_stopping=False.")
        # Mirrors CrossEntropyClassifier._fit (single-label, no validation
        # scoring), with the pml loss as the term and the identity as the head.
        X, y_enc, classes, counts, sample_weight = self._validate_training_data(
            X, y, sample_weight
        )
        device = resolve_device(self.device)
        np_rng = self._numpy_rng()
        with self._torch_session(np_rng, device), self._logging():
            module = self._build_backbone(X.shape[1]).to(device)
            cls, margin, scale = LOSSES[self.loss]
            margin = margin if self.margin is None else self.margin
            scale = scale if self.scale is None else self.scale
            # Built after the backbone in the same seeded session: W's
            # initialisation (pml: normal) is reproducible from random_state.
            loss = cls(num_classes=classes.size, embedding_size=self.embedding_dim,
                       margin=margin, scale=scale, reducer=DoNothingReducer()).to(device)
            settings = self._train_settings(
                batch_size=int(self.batch_size),
                max_steps=None if self.max_iter is None else int(self.max_iter),
                augment=resolve_augment(self.augment, module),
            )
            generator = self._batch_generator(np_rng, device)
            data = TrainingData(X, y_enc, settings, device, np_rng, classes, sample_weight)
            term = PMLTerm(loss)
            head = torch.nn.Identity()
            optimizer = settings.make_optimizer(
                list(module.parameters()) + list(loss.parameters())
            )
            history = []
            result = run_phase(
                cross_entropy_phase(
                    "train", module, head, data, term, optimizer, settings, np_rng,
                    generator, settings.main_steps(data.rows.n),
                    schedule=settings.lr_schedule, label=self.loss,
                ),
                optimizer, [module, loss], settings, history,
            )
        self.classes_ = classes
        self.n_outputs_ = 1
        self.module_ = module.eval()
        self.loss_module_ = loss.eval()
        self.head_ = PMLLogits(loss).eval()
        self.device_ = device
        self.class_prior_ = counts / counts.sum()
        self.history_ = history
        self.loss_curve_ = np.array([row["loss"] for row in history])
        self.validation_scores_ = None
        self.best_epoch_ = result.best_epoch
        self.n_iter_ = result.epochs
        self.n_steps_ = result.steps
        return self
