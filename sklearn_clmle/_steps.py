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


def sgd_step(optimizer, loss, max_grad_norm=None):
    """Backward pass and one optimiser step; returns the gradient norm (a tensor).

    With ``max_grad_norm`` the gradients are first rescaled so that their
    total L2 norm is at most that value (``clip_grad_norm_``; a step whose
    norm is below it is left bitwise unchanged) and the norm before
    clipping is returned; without it, None. Nothing is copied to the host.
    """
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    norm = None
    if max_grad_norm is not None:
        params = [p for group in optimizer.param_groups for p in group["params"]]
        norm = torch.nn.utils.clip_grad_norm_(params, max_grad_norm).detach()
    optimizer.step()
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
