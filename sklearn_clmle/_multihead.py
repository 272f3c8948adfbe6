"""The multi-label network of CLMLE's attribute protocol (CLMLE paper, Sec. 5).

One shared backbone and "one extra 64-d FC layer for each binary attribute":
:class:`MultiHeadNet` maps ``(n, n_features)`` rows to ``(n, n_labels *
embedding_dim)``, the per-label embeddings side by side (raw; each block is
L2-normalised on its own, :func:`normalize_blocks`). :class:`BlockLinear`
holds the per-label linear heads of the auxiliary cross-entropy.
"""

import numpy as np
import torch
from torch import nn

from sklearn_clmle._clustering import _EPS


class MultiHeadNet(nn.Module):
    """A shared backbone and one linear embedding head per label.

    ``forward(x) = heads(relu(backbone(x)))``: the A heads of
    ``embedding_dim`` outputs each are one ``Linear(width, A *
    embedding_dim)``, which is exactly A separate FC layers side by side
    (the same initialisation, the same weight decay).

    Parameters
    ----------
    backbone : torch.nn.Module
        Shared network, output width ``width``.
    n_heads : int
        A, the number of labels.
    width : int
        Output width of the backbone.
    embedding_dim : int
        Width of every label's embedding.
    """

    def __init__(self, backbone, n_heads, width, embedding_dim):
        super().__init__()
        self.backbone = backbone
        self.n_heads = int(n_heads)
        self.embedding_dim = int(embedding_dim)
        self.heads = nn.Linear(width, self.n_heads * self.embedding_dim)

    def forward(self, x):
        return self.heads(torch.relu(self.backbone(x)))

    def blocks(self, out):
        """The raw output as ``(n, n_heads, embedding_dim)`` (a view)."""
        return out.view(out.shape[0], self.n_heads, self.embedding_dim)


class BlockLinear(nn.Module):
    """One ``Linear(in_features, out_features)`` per label, applied block by block.

    Parameters
    ----------
    n_blocks : int
    in_features, out_features : int
    """

    def __init__(self, n_blocks, in_features, out_features):
        super().__init__()
        bound = 1.0 / np.sqrt(in_features)  # nn.Linear's default initialisation
        self.weight = nn.Parameter(
            torch.empty(n_blocks, in_features, out_features).uniform_(-bound, bound)
        )
        self.bias = nn.Parameter(torch.empty(n_blocks, out_features).uniform_(-bound, bound))

    def forward(self, z):
        """``z`` of shape (n, n_blocks, in_features) to (n, n_blocks, out_features)."""
        return torch.einsum("nai,aio->nao", z, self.weight) + self.bias

    def block(self, z, a):
        """Head ``a`` on ``z`` of shape (n, in_features)."""
        return z @ self.weight[a] + self.bias[a]


def normalize_blocks(Z, n_blocks):
    """``Z`` (n, n_blocks * d) with every d-wide block scaled to unit norm, in place."""
    view = Z.reshape(Z.shape[0], n_blocks, -1)
    view /= np.maximum(np.linalg.norm(view, axis=2, keepdims=True), _EPS)
    return Z


def multihead_net(backbone, n_features_in, n_heads, embedding_dim):
    """:class:`MultiHeadNet` on ``backbone``, its output width measured on one row.

    Draws nothing from torch's random state beyond the heads' initialisation.
    """
    was_training = backbone.training
    backbone.eval()
    with torch.no_grad():
        width = backbone(torch.zeros(1, n_features_in)).shape[1]
    backbone.train(was_training)
    return MultiHeadNet(backbone, n_heads, width, embedding_dim)
