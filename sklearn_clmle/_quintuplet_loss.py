"""The triple-header hinge loss of LMLE (LMLE paper, Eq. 2)."""

import torch
from torch import nn

from sklearn_clmle._loss import weighted_mean

__all__ = ["QuintupletLoss", "quintuplet_terms"]

_MEMBERS = ("anchor", "p_plus", "p_minus", "p_minus2", "negative")


def _sq_dist(a, b):
    return (a - b).pow(2).sum(dim=1)


def quintuplet_terms(anchor, p_plus, p_minus, p_minus2, negative, g1, g2, g3):
    """Per-quintuplet hinge terms ``(eps, tau, sigma)`` of LMLE Eq. 2.

    With ``D`` the squared Euclidean distance::

        eps_i   = [g1 + D(a, p+)  - D(a, p-) ]_+
        tau_i   = [g2 + D(a, p-)  - D(a, p--)]_+
        sigma_i = [g3 + D(a, p--) - D(a, n)  ]_+

    ``g1``, ``g2``, ``g3`` are floats or tensors of shape (n,) (per-row
    margins, e.g. ``g2`` of the anchor's class). Each returned tensor has
    shape (n,).
    """
    d_pp = _sq_dist(anchor, p_plus)
    d_pm = _sq_dist(anchor, p_minus)
    d_pmm = _sq_dist(anchor, p_minus2)
    d_n = _sq_dist(anchor, negative)
    eps = torch.relu(g1 + d_pp - d_pm)
    tau = torch.relu(g2 + d_pm - d_pmm)
    sigma = torch.relu(g3 + d_pmm - d_n)
    return eps, tau, sigma


def _check(tensors, sample_weight):
    first = tensors[0]
    for name, t in zip(_MEMBERS, tensors):
        if not isinstance(t, torch.Tensor) or t.ndim != 2:
            raise ValueError(f"{name} must be a 2-D torch.Tensor of shape (n, d).")
        if not t.is_floating_point():
            raise TypeError(f"{name} must be floating point, got {t.dtype}.")
        if t.shape != first.shape:
            raise ValueError(
                f"{name} has shape {tuple(t.shape)} but anchor has {tuple(first.shape)}; "
                "row i of each tensor is the i-th quintuplet."
            )
    n = first.shape[0]
    if sample_weight is not None and (
        not isinstance(sample_weight, torch.Tensor) or sample_weight.shape != (n,)
    ):
        raise ValueError(f"sample_weight must be a tensor of shape ({n},).")


class QuintupletLoss(nn.Module):
    """Triple-header hinge loss of LMLE on quintuplets (LMLE paper, Eq. 2).

    Row i of the five inputs is the i-th quintuplet: the anchor, its
    farthest neighbour in its own cluster (``p_plus``), its nearest
    neighbour of the same class in another cluster (``p_minus``), its
    farthest neighbour of the same class (``p_minus2``) and its nearest
    neighbour of another class (``negative``), all unit-norm embeddings.
    With ``D`` the squared Euclidean distance the loss is::

        sum_i w_i (eps_i + tau_i + sigma_i) / sum_i w_i
        eps_i   = [g1 + D(a, p+)  - D(a, p-) ]_+
        tau_i   = [g2 + D(a, p-)  - D(a, p--)]_+
        sigma_i = [g3 + D(a, p--) - D(a, n)  ]_+

    with ``w_i = 1`` when no ``sample_weight`` is given.

    Parameters
    ----------
    g1 : float, default=0.1
        Margin between a cluster and the nearest other cluster of its class.
        Upper bound ``2 sin(pi s l / L)`` (LMLE Sec. 3.2; l the cluster size,
        L the number of samples, s the share of the sphere the classes fill).
    g2 : float, default=0.1
        Margin between the nearest other cluster and the farthest member of
        the class; bound ``2 sin(pi s (L_c - l) / L)`` for class c.
    g3 : float, default=0.1
        Margin between the class and the nearest other class; bound
        ``2 sin(pi / C)``.

    Examples
    --------
    >>> import torch
    >>> from sklearn_clmle import QuintupletLoss
    >>> a, pp, pm, pmm, n = (torch.nn.functional.normalize(torch.randn(4, 3), dim=1)
    ...                      for _ in range(5))
    >>> loss = QuintupletLoss(g1=0.1, g2=0.1, g3=0.2)
    >>> loss(a, pp, pm, pmm, n).ndim
    0
    """

    def __init__(self, g1=0.1, g2=0.1, g3=0.1):
        super().__init__()
        self.g1 = g1
        self.g2 = g2
        self.g3 = g3

    def per_sample(self, anchor, p_plus, p_minus, p_minus2, negative):
        """Unweighted ``eps_i + tau_i + sigma_i`` for every quintuplet.

        Parameters
        ----------
        anchor, p_plus, p_minus, p_minus2, negative : Tensor of shape (n, d)
            Unit-norm embeddings; row i of each is the i-th quintuplet.

        Returns
        -------
        terms : Tensor of shape (n,)
            The three hinge terms of Eq. 2 per quintuplet, before weighting.
        """
        _check((anchor, p_plus, p_minus, p_minus2, negative), None)
        eps, tau, sigma = quintuplet_terms(
            anchor, p_plus, p_minus, p_minus2, negative, self.g1, self.g2, self.g3
        )
        return eps + tau + sigma

    def forward(self, anchor, p_plus, p_minus, p_minus2, negative, sample_weight=None):
        """Weighted mean loss (a scalar tensor, differentiable).

        Parameters
        ----------
        anchor, p_plus, p_minus, p_minus2, negative : Tensor of shape (n, d)
            Unit-norm embeddings; row i of each is the i-th quintuplet.
        sample_weight : Tensor of shape (n,), default=None
            Weight of each quintuplet (e.g. cost-sensitive class weights);
            None weighs them equally.

        Returns
        -------
        loss : Tensor
            Scalar; 0 with a gradient for an empty batch.
        """
        _check((anchor, p_plus, p_minus, p_minus2, negative), sample_weight)
        per_row = sum(quintuplet_terms(
            anchor, p_plus, p_minus, p_minus2, negative, self.g1, self.g2, self.g3
        ))
        if sample_weight is None:
            sample_weight = torch.ones_like(per_row)
        return weighted_mean(per_row, sample_weight)

    def extra_repr(self):
        return f"g1={self.g1}, g2={self.g2}, g3={self.g3}"
