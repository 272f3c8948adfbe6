"""The cluster-margin loss of CLMLE (CLMLE paper, Eq. 9)."""

import torch
from torch import nn

__all__ = ["ClusterMarginLoss", "cluster_margin_terms"]


def _masked_logsumexp(values, mask):
    """Row-wise log-sum-exp over ``mask``; rows with an empty mask give 0.

    The fill is finite (never ``-inf``), so rows with nothing to sum have
    finite values and zero gradients instead of NaN.
    """
    fill = torch.finfo(values.dtype).min / 4
    out = torch.logsumexp(torch.where(mask, values, fill), dim=1)
    return torch.where(mask.any(dim=1), out, torch.zeros_like(out))


def _check_inputs(embeddings, cluster_ids, cluster_classes, sample_weight):
    if not isinstance(embeddings, torch.Tensor) or embeddings.ndim != 2:
        raise ValueError("embeddings must be a 2-D torch.Tensor of shape (n, d).")
    if not embeddings.is_floating_point():
        raise TypeError(f"embeddings must be floating point, got {embeddings.dtype}.")
    n = embeddings.shape[0]
    for name, t, length in (
        ("cluster_ids", cluster_ids, n),
        ("cluster_classes", cluster_classes, None),
    ):
        if not isinstance(t, torch.Tensor) or t.ndim != 1:
            raise ValueError(f"{name} must be a 1-D torch.Tensor.")
        if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
            raise TypeError(f"{name} must hold integers, got {t.dtype}.")
        if length is not None and t.shape[0] != length:
            raise ValueError(
                f"{name} has {t.shape[0]} entries but embeddings has {length} rows."
            )
    m = cluster_classes.shape[0]
    if n and (int(cluster_ids.min()) < 0 or int(cluster_ids.max()) >= m):
        raise ValueError(
            f"cluster_ids must lie in [0, {m}) (one entry of cluster_classes per "
            "batch cluster)."
        )
    if sample_weight is not None:
        if not isinstance(sample_weight, torch.Tensor) or sample_weight.shape != (n,):
            raise ValueError(f"sample_weight must be a tensor of shape ({n},).")


def cluster_margin_terms(embeddings, cluster_ids, cluster_classes, a1, a2, scale=1.0):
    """Per-sample hinge terms of Eq. 9 of the CLMLE paper.

    Parameters
    ----------
    embeddings : Tensor of shape (n, d)
        Unit-norm embeddings f(x_i).
    cluster_ids : LongTensor of shape (n,)
        Batch cluster m of each row, in ``[0, M)``.
    cluster_classes : Tensor of shape (M,)
        Class of each batch cluster.
    a1, a2 : float or Tensor
        Between-class and within-class margins. A tensor of shape (M,)
        gives one margin per batch cluster (per class margins).
    scale : float, default=1.0
        Inverse temperature of the log-sum-exp; 1 is the paper.

    Returns
    -------
    term1, term2 : Tensor of shape (n,)
        ``term1 = [a1 - s_m + LSE_{k: c(k) != c(m)} s_k]_+`` and
        ``term2 = [a2 - s_m + LSE_{k != m, c(k) = c(m)} s_k]_+`` with
        ``s_k = f(x_i) . mu_k`` and ``LSE(s) = log(sum(exp(scale * s))) / scale``.
        A term whose sum is empty is 0. The centroids ``mu_k`` are the
        unnormalised means of the rows of batch cluster k; listed clusters
        with no rows take no part.
    """
    m = cluster_classes.shape[0]
    dev = embeddings.device
    cluster_ids = cluster_ids.to(dev)
    cluster_classes = cluster_classes.to(dev)
    # Counts, one-hot and class frequencies by comparisons and index_add:
    # bincount, one_hot and unique wait for the device on a GPU.
    counts = torch.zeros(m, dtype=torch.long, device=dev).index_add_(
        0, cluster_ids, torch.ones_like(cluster_ids))
    sums = torch.zeros(m, embeddings.shape[1], dtype=embeddings.dtype, device=dev)
    sums = sums.index_add(0, cluster_ids, embeddings)
    centroids = sums / counts.clamp(min=1).unsqueeze(1).to(embeddings.dtype)
    sim = embeddings @ centroids.T  # (n, M)
    present = (counts > 0).unsqueeze(0)
    row_class = cluster_classes[cluster_ids].unsqueeze(1)
    same_class = cluster_classes.unsqueeze(0) == row_class
    own = cluster_ids.unsqueeze(1) == torch.arange(m, device=dev).unsqueeze(0)
    other_mask = present & ~same_class
    same_mask = present & same_class & ~own
    s_own = sim.gather(1, cluster_ids.unsqueeze(1)).squeeze(1)
    scaled = sim * scale
    lse_other = _masked_logsumexp(scaled, other_mask) / scale
    lse_same = _masked_logsumexp(scaled, same_mask) / scale
    a1 = _per_row(a1, cluster_ids, embeddings)
    a2 = _per_row(a2, cluster_ids, embeddings)
    term1 = torch.relu(a1 - s_own + lse_other) * other_mask.any(dim=1)
    term2 = torch.relu(a2 - s_own + lse_same) * same_mask.any(dim=1)
    return term1, term2


def _per_row(margin, cluster_ids, like):
    if isinstance(margin, torch.Tensor) and margin.ndim == 1:
        return margin.to(device=like.device, dtype=like.dtype)[cluster_ids]
    return margin


def inverse_class_frequency(row_classes):
    """Weights 1 / (rows of the same class), so each class sums to 1.

    Counted by comparing the rows pairwise (a batch is a few hundred rows),
    which, unlike ``torch.unique``, never makes the host wait for a GPU.
    """
    counts = (row_classes.unsqueeze(1) == row_classes.unsqueeze(0)).sum(dim=1)
    return 1.0 / counts


def row_weights(row_classes, cost_sensitive, dtype):
    """Inverse class frequency in the batch when ``cost_sensitive``, else 1."""
    if cost_sensitive:
        return inverse_class_frequency(row_classes).to(dtype)
    return torch.ones(row_classes.shape[0], dtype=dtype, device=row_classes.device)


def weighted_mean(per_row, weights):
    """``sum_i w_i l_i / sum_i w_i``; 0 (with a gradient) when all weights are 0."""
    w = weights.to(device=per_row.device, dtype=per_row.dtype)
    return (w * per_row).sum() / w.sum().clamp(min=torch.finfo(per_row.dtype).tiny)


class ClusterMarginLoss(nn.Module):
    """Cluster-based large margin loss of CLMLE (Eq. 9 of the CLMLE paper).

    For each row i of batch cluster m, with ``s_k = f(x_i) . mu_k`` and
    ``mu_k`` the unnormalised mean of the rows of batch cluster k::

        term1_i = [a1 - s_m + logsumexp_{k: class(k) != class(m)} s_k]_+
        term2_i = [a2 - s_m + logsumexp_{k != m, class(k) == class(m)} s_k]_+

    and the loss is ``sum_i w_i (term1_i + term2_i) / sum_i w_i``. A term
    whose sum is empty (no other-class, or no other same-class cluster with
    rows in the batch) is absent: it contributes 0, never NaN.

    Parameters
    ----------
    a1 : float, default=0.1
        Margin between clusters of different classes; its upper bound is
        ``1 - cos(2 pi / C)`` for C classes (Sec. 3.2).
    a2 : float, default=0.05
        Margin between clusters of the same class; its upper bound for class
        c is ``1 - cos(2 pi L_c / L)``.
    cost_sensitive : bool, default=True
        Without ``sample_weight``, weight each row by the inverse frequency of
        its class in the batch (every class present gets the same total
        weight). False gives every row weight 1.
    scale : float, default=1.0
        Inverse temperature of the log-sum-exp (``log(sum(exp(scale *
        s))) / scale``). 1 is the paper; larger values approach a hard
        maximum, so only the nearest competing cluster counts.

    Examples
    --------
    >>> import torch
    >>> from sklearn_clmle import ClusterMarginLoss
    >>> emb = torch.nn.functional.normalize(torch.randn(6, 4), dim=1)
    >>> loss = ClusterMarginLoss(a1=0.2, a2=0.1)
    >>> ids = torch.tensor([0, 0, 1, 1, 2, 2])
    >>> classes = torch.tensor([0, 0, 1])
    >>> loss(emb, ids, classes).ndim
    0
    """

    def __init__(self, a1=0.1, a2=0.05, cost_sensitive=True, *, scale=1.0):
        super().__init__()
        self.a1 = a1
        self.a2 = a2
        self.cost_sensitive = cost_sensitive
        self.scale = scale

    def per_sample(self, embeddings, cluster_ids, cluster_classes):
        """Unweighted ``term1_i + term2_i`` for every row.

        Parameters
        ----------
        embeddings : Tensor of shape (n, d)
            Unit-norm embeddings.
        cluster_ids : Tensor of shape (n,)
            Batch cluster of each row, in ``[0, M)``.
        cluster_classes : Tensor of shape (M,)
            Class of each batch cluster.

        Returns
        -------
        terms : Tensor of shape (n,)
            The two hinge terms of Eq. 9 per row, before weighting.
        """
        _check_inputs(embeddings, cluster_ids, cluster_classes, None)
        t1, t2 = cluster_margin_terms(
            embeddings, cluster_ids, cluster_classes, self.a1, self.a2, self.scale
        )
        return t1 + t2

    def forward(self, embeddings, cluster_ids, cluster_classes, sample_weight=None):
        """Weighted mean loss J (a scalar tensor, differentiable).

        Parameters
        ----------
        embeddings : Tensor of shape (n, d)
            Unit-norm embeddings, any float dtype, any device.
        cluster_ids : Tensor of shape (n,)
            Integer batch-cluster index of each row, in ``[0, M)``.
        cluster_classes : Tensor of shape (M,)
            Class of each batch cluster.
        sample_weight : Tensor of shape (n,), default=None
            Row weights; replaces the cost-sensitive weights when given.

        Returns
        -------
        loss : Tensor
            Scalar.
        """
        _check_inputs(embeddings, cluster_ids, cluster_classes, sample_weight)
        if embeddings.shape[0] == 0:
            return embeddings.sum() * 0.0
        t1, t2 = cluster_margin_terms(
            embeddings, cluster_ids, cluster_classes, self.a1, self.a2, self.scale
        )
        if sample_weight is None:
            row_classes = cluster_classes.to(t1.device)[cluster_ids.to(t1.device)]
            sample_weight = row_weights(row_classes, self.cost_sensitive, t1.dtype)
        return weighted_mean(t1 + t2, sample_weight)

    def extra_repr(self):
        return (
            f"a1={self.a1}, a2={self.a2}, cost_sensitive={self.cost_sensitive}, "
            f"scale={self.scale}"
        )
