"""One optimiser step, and the cross-entropy terms the torch estimators share.

:class:`CrossEntropyTerm` is the loss of :class:`~sklearn_clmle.CrossEntropyClassifier`
and the auxiliary term of the embedders (their warm-up and their
``ce_weight`` term): plain, class-balanced or logit-adjusted cross-entropy.
"""

import numpy as np
import torch
from torch.nn import functional as F

from sklearn_clmle._loss import weighted_mean

DIVERGENCE_HINT = (
    "learning_rate too high, or inputs on a large scale (standardise them, e.g. "
    "with a StandardScaler first); max_grad_norm clips exploding gradients."
)


def check_finite(value, phase, hint=DIVERGENCE_HINT):
    """Raise ``FloatingPointError`` naming the likely causes when ``value`` is not finite."""
    if not np.isfinite(value):
        raise FloatingPointError(
            f"The {phase} loss became {value} during fit. Likely causes: {hint}"
        )


def sgd_step(optimizer, loss, max_grad_norm=None, scaler=None):
    """Backward pass and one optimiser step; returns the gradient norm (a tensor).

    With ``max_grad_norm`` the gradients are first rescaled so that their
    total L2 norm is at most that value (``clip_grad_norm_``; a step whose
    norm is below it is left bitwise unchanged) and the norm before
    clipping is returned; without it, None. With a gradient ``scaler``
    (``mixed_precision="fp16"``) the loss is scaled before the backward
    pass and the gradients unscaled before clipping; a step whose gradients
    overflow is skipped by the scaler. Nothing is copied to the host, except
    that ``GradScaler.step`` reads its overflow flag on the host every step
    (so fp16 has one host sync per step; bf16 and float32 have none).
    """
    optimizer.zero_grad(set_to_none=True)
    (loss if scaler is None else scaler.scale(loss)).backward()
    norm = None
    if max_grad_norm is not None:
        if scaler is not None:
            scaler.unscale_(optimizer)
        params = [p for group in optimizer.param_groups for p in group["params"]]
        norm = torch.nn.utils.clip_grad_norm_(params, max_grad_norm).detach()
    if scaler is None:
        optimizer.step()
    else:
        scaler.step(optimizer)
        scaler.update()
    return norm


def weighted_cross_entropy(logits, target, class_weight=None, sample_weight=None):
    """Cross-entropy averaged with weights ``class_weight[y_i] * sample_weight_i``.

    ``sum_i w_i l_i / sum_i w_i``, as ``F.cross_entropy(weight=...)`` does for
    class weights; unit sample weights give exactly the unweighted value.
    """
    per_row = F.cross_entropy(logits, target, reduction="none")
    w = (torch.ones_like(per_row) if class_weight is None
         else class_weight[target].to(per_row.dtype))
    if sample_weight is not None:
        w = w * sample_weight
    return weighted_mean(per_row, w)


class CrossEntropyTerm:
    """Plain, class-balanced or logit-adjusted cross-entropy of a linear head.

    Parameters
    ----------
    kind : {"plain", "balanced", "logit_adjusted"}
        ``"balanced"`` weights class c by ``n / (C * n_c)`` (scikit-learn's
        ``"balanced"``); ``"logit_adjusted"`` adds ``tau * log(prior_c)`` to
        the training logits (Menon et al., ICLR 2021).
    counts : array-like of shape (n_classes,)
        Training rows per class.
    device : torch.device
    tau : float, default=1.0
        Temperature of the logit adjustment.
    class_weight : ndarray of shape (n_classes,), optional
        Explicit class weights (used instead of ``"balanced"``'s).
    """

    def __init__(self, kind, counts, device, tau=1.0, class_weight=None):
        counts = np.asarray(counts, dtype=np.float64)
        self.offset = None
        self.class_weight = None
        if kind == "balanced" and class_weight is None:
            class_weight = counts.sum() / (counts.size * np.maximum(counts, 1.0))
        if class_weight is not None:
            self.class_weight = torch.as_tensor(class_weight, dtype=torch.float32,
                                                device=device)
        if kind == "logit_adjusted" and tau > 0:
            prior = np.maximum(counts, 1.0) / counts.sum()
            self.offset = torch.as_tensor(tau * np.log(prior), dtype=torch.float32,
                                          device=device)

    def __call__(self, logits, target, sample_weight=None):
        if self.offset is not None:
            logits = logits + self.offset
        return weighted_cross_entropy(logits, target, self.class_weight, sample_weight)


class BinaryCrossEntropyTerm:
    """Per-label binary cross-entropy of a multi-label head, summed over labels.

    Each label's term is ``sum_i w_ia l_ia / sum_i w_ia`` (the weighted mean
    over the rows, as :class:`CrossEntropyTerm` is for one label), with
    ``l_ia`` the logistic loss of logit ``a`` of row ``i`` and ``w_ia =
    class_weight[a, y_ia] * sample_weight_i``; the labels' terms are summed,
    so every label weighs as much as a single-label fit of it would.

    Parameters
    ----------
    counts : ndarray of shape (n_labels, 2)
        Negative and positive training rows per label.
    device : torch.device
    tau : float, default=0.0
        Logit adjustment: ``tau * log(p_a / (1 - p_a))`` is added to the
        training logit of label ``a`` (Menon et al., ICLR 2021, for the two
        classes of a binary label).
    class_weight : ndarray of shape (n_labels, 2), optional
        Weights of the negatives and positives of each label; ``"balanced"``
        weights are ``n / (2 n_ac)``, whose ratio is torch's ``pos_weight =
        n_a0 / n_a1``.
    """

    def __init__(self, counts, device, tau=0.0, class_weight=None):
        counts = np.maximum(np.asarray(counts, dtype=np.float64), 1.0)
        self.offset = None
        if tau > 0:
            self.offset = torch.as_tensor(tau * np.log(counts[:, 1] / counts[:, 0]),
                                          dtype=torch.float32, device=device)
        self.class_weight = None
        if class_weight is not None:
            self.class_weight = torch.as_tensor(class_weight, dtype=torch.float32,
                                                device=device)

    def __call__(self, logits, target, sample_weight=None):
        if self.offset is not None:
            logits = logits + self.offset
        per = F.binary_cross_entropy_with_logits(logits, target.to(logits.dtype),
                                                 reduction="none")
        w = torch.ones_like(per)
        if self.class_weight is not None:
            w = torch.where(target.bool(), self.class_weight[:, 1], self.class_weight[:, 0])
        if sample_weight is not None:
            w = w * sample_weight[:, None]
        tiny = torch.finfo(per.dtype).tiny
        return ((w * per).sum(dim=0) / w.sum(dim=0).clamp(min=tiny)).sum()
