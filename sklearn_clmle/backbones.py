"""Backbone networks and their registry.

A backbone maps ``(n, n_features_in)`` float tensors to ``(n, embedding_dim)``;
the estimator L2-normalises its output. Registered names build a module from
``(n_features_in, embedding_dim, **backbone_kwargs)``.
"""

import copy

import numpy as np
import torch
from torch import nn

__all__ = ["BACKBONES", "CNN1D", "CNN2D", "MLP", "build_backbone"]


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

    Notes
    -----
    The defaults were chosen on long-tailed digits
    (``benchmarks/results/defaults.md``): one wide hidden layer with dropout
    generalised better from a few hundred samples than a (256,) layer
    without dropout and a 32-d output.

    There is no BatchNorm: CLMLE batches are made of a few clusters, so their
    statistics are far from the data's and would be learned wrongly.

    Examples
    --------
    >>> import torch
    >>> from sklearn_clmle.backbones import MLP
    >>> MLP(8, 4, hidden_layer_sizes=(16,))(torch.randn(3, 8)).shape
    torch.Size([3, 4])
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


def _conv_stack(conv, pool, in_channels, channels, kernel_size, stride):
    layers, width = [], in_channels
    for c in channels:
        layers += [conv(width, c, kernel_size, stride=stride, padding=kernel_size // 2),
                   nn.ReLU()]
        if pool is not None:
            layers.append(pool(2, ceil_mode=True))
        width = c
    return nn.Sequential(*layers)


def _head(features, n_flat, embedding_dim, dropout):
    layers = [features, nn.Flatten()]
    if dropout:
        layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(n_flat, embedding_dim))
    return nn.Sequential(*layers)


def _flat_size(features, shape):
    with torch.no_grad():
        return int(features(torch.zeros((1, *shape))).numel())


class CNN1D(nn.Module):
    """Small 1-D convolutional network for signals given as flat rows.

    Each row of ``n_features_in`` values is read as ``in_channels`` signals
    of ``n_features_in // in_channels`` samples (channel-major), e.g. the 40
    samples of an MNIST-1D row.

    Parameters
    ----------
    n_features_in : int
        Input width, ``in_channels * length``.
    embedding_dim : int
        Output width.
    channels : tuple of int, default=(32, 32, 32)
        Output channels of the convolutions (ReLU after each).
    kernel_size : int, default=5
        Width of every convolution kernel (zero padding keeps the centre).
    stride : int, default=2
        Stride of every convolution; it does the down-sampling.
    in_channels : int, default=1
        Number of interleaved signals per row.
    dropout : float, default=0.2
        Dropout probability before the output layer.

    Notes
    -----
    The defaults were chosen on long-tailed MNIST-1D
    (``benchmarks/results/backbones.md``). There is no BatchNorm, for the
    reason given in :class:`MLP`.

    Examples
    --------
    >>> import torch
    >>> from sklearn_clmle.backbones import CNN1D
    >>> CNN1D(40, 16)(torch.randn(3, 40)).shape
    torch.Size([3, 16])
    """

    def __init__(self, n_features_in, embedding_dim, channels=(32, 32, 32),
                 kernel_size=5, stride=2, in_channels=1, dropout=0.2):
        super().__init__()
        if n_features_in % in_channels:
            raise ValueError(
                f"backbone_kwargs in_channels={in_channels} does not divide the "
                f"{n_features_in} input features."
            )
        self.shape = (in_channels, n_features_in // in_channels)
        features = _conv_stack(nn.Conv1d, None, in_channels, channels, kernel_size, stride)
        self.net = _head(features, _flat_size(features, self.shape), embedding_dim, dropout)

    def forward(self, x):
        return self.net(x.reshape(x.shape[0], *self.shape))


class CNN2D(nn.Module):
    """Small 2-D convolutional network for images given as flat rows.

    Each row holds an image of ``image_shape`` (height, width) pixels per
    channel, channel-major (as ``load_digits`` gives its 8x8 images).

    Parameters
    ----------
    n_features_in : int
        Input width, ``in_channels * height * width``.
    embedding_dim : int
        Output width.
    image_shape : tuple of (int, int) or None, default=None
        ``(height, width)``; None reads a square image.
    channels : tuple of int, default=(32, 64)
        Output channels of the 3x3 convolutions; each is followed by ReLU
        and 2x2 max-pooling.
    kernel_size : int, default=3
        Convolution kernel size (zero padding keeps the image size).
    in_channels : int, default=1
        Number of channels per pixel.
    dropout : float, default=0.2
        Dropout probability before the output layer.

    Notes
    -----
    The defaults were chosen on long-tailed digits
    (``benchmarks/results/backbones.md``).

    Examples
    --------
    >>> import torch
    >>> from sklearn_clmle.backbones import CNN2D
    >>> CNN2D(64, 16)(torch.randn(3, 64)).shape  # 8 x 8 images
    torch.Size([3, 16])
    """

    def __init__(self, n_features_in, embedding_dim, image_shape=None,
                 channels=(32, 64), kernel_size=3, in_channels=1, dropout=0.2):
        super().__init__()
        pixels, rest = divmod(n_features_in, in_channels)
        if image_shape is None:
            side = int(round(np.sqrt(pixels)))
            if rest or side * side != pixels:
                raise ValueError(
                    f"cnn2d cannot read {n_features_in} features as a square image "
                    f"with in_channels={in_channels}; pass backbone_kwargs="
                    "{'image_shape': (height, width)}."
                )
            image_shape = (side, side)
        image_shape = tuple(int(s) for s in image_shape)
        if len(image_shape) != 2 or in_channels * image_shape[0] * image_shape[1] != n_features_in:
            raise ValueError(
                f"backbone_kwargs image_shape={image_shape} with in_channels="
                f"{in_channels} does not match the {n_features_in} input features; "
                "expected in_channels * height * width == n_features."
            )
        self.shape = (in_channels, *image_shape)
        features = _conv_stack(
            nn.Conv2d, nn.MaxPool2d, in_channels, channels, kernel_size, stride=1
        )
        self.net = _head(features, _flat_size(features, self.shape), embedding_dim, dropout)

    def forward(self, x):
        return self.net(x.reshape(x.shape[0], *self.shape))


BACKBONES = {"mlp": MLP, "cnn1d": CNN1D, "cnn2d": CNN2D}


def build_backbone(backbone, n_features_in, embedding_dim, backbone_kwargs):
    """Instantiate ``backbone`` (a registry name, a module or a factory).

    A module instance is deep-copied, so ``fit`` never changes the user's
    object and refitting starts from the same weights.

    Parameters
    ----------
    backbone : str, torch.nn.Module or callable
        A name in :data:`BACKBONES`, a module, or a factory
        ``(n_features_in, embedding_dim, **backbone_kwargs) -> Module``.
    n_features_in : int
        Input width.
    embedding_dim : int
        Output width.
    backbone_kwargs : dict or None
        Keyword arguments of a registered backbone or a factory.

    Returns
    -------
    module : torch.nn.Module
        A new module (a deep copy when ``backbone`` is a module).

    Examples
    --------
    >>> from sklearn_clmle.backbones import build_backbone
    >>> build_backbone("mlp", 8, 4, {"hidden_layer_sizes": (16,)})
    MLP(
      (net): Sequential(
        (0): Linear(in_features=8, out_features=16, bias=True)
        (1): ReLU()
        (2): Dropout(p=0.2, inplace=False)
        (3): Linear(in_features=16, out_features=4, bias=True)
      )
    )
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
