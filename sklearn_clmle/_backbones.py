"""Backbone networks and their registry.

A backbone maps ``(n, n_features_in)`` float tensors to ``(n, embedding_dim)``;
the estimator L2-normalises its output. Registered names build a module from
``(n_features_in, embedding_dim, **backbone_kwargs)``.
"""

import copy

from torch import nn

__all__ = ["MLP", "BACKBONES", "build_backbone"]


class MLP(nn.Module):
    """Fully connected ReLU network for vector data.

    Parameters
    ----------
    n_features_in : int
        Input width.
    embedding_dim : int
        Output width.
    hidden_layer_sizes : tuple of int, default=(512,)
        Widths of the hidden layers.
    dropout : float, default=0.2
        Dropout probability after each hidden layer.

    The defaults were chosen on long-tailed digits
    (``benchmarks/results/defaults.md``): one wide hidden layer with dropout
    generalised better from a few hundred samples than a (256,) layer
    without dropout and a 32-d output.

    Notes
    -----
    There is no BatchNorm: CLMLE batches are made of a few clusters, so their
    statistics are far from the data's and would be learned wrongly.
    """

    def __init__(self, n_features_in, embedding_dim, hidden_layer_sizes=(512,),
                 dropout=0.2):
        super().__init__()
        layers, width = [], n_features_in
        for h in hidden_layer_sizes:
            layers += [nn.Linear(width, h), nn.ReLU()]
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = h
        layers.append(nn.Linear(width, embedding_dim))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


BACKBONES = {"mlp": MLP}


def build_backbone(backbone, n_features_in, embedding_dim, backbone_kwargs):
    """Instantiate ``backbone`` (a registry name, a module or a factory).

    A module instance is deep-copied, so ``fit`` never changes the user's
    object and refitting starts from the same weights.
    """
    kwargs = dict(backbone_kwargs or {})
    if isinstance(backbone, str):
        if backbone not in BACKBONES:
            raise ValueError(
                f"backbone={backbone!r} is not a registered backbone; expected one "
                f"of {sorted(BACKBONES)}, a torch.nn.Module or a callable "
                "(n_features_in, embedding_dim) -> Module."
            )
        return BACKBONES[backbone](n_features_in, embedding_dim, **kwargs)
    if isinstance(backbone, nn.Module):
        if kwargs:
            raise ValueError("backbone_kwargs only apply to a registered backbone name.")
        return copy.deepcopy(backbone)
    if callable(backbone):
        module = backbone(n_features_in, embedding_dim, **kwargs)
        if not isinstance(module, nn.Module):
            raise TypeError(
                "backbone callable must return a torch.nn.Module, got "
                f"{type(module).__name__}."
            )
        return module
    raise TypeError(
        "backbone must be a registered name, a torch.nn.Module or a callable, got "
        f"{type(backbone).__name__}."
    )
