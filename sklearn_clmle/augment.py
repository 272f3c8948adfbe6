"""Training-time augmentation of batches: built-ins and the ``augment`` check.

``augment`` is a callable ``(batch, generator) -> batch`` applied to every
training batch on the device, never at ``transform``/``predict`` or to the
validation part. ``batch`` is a float32 tensor of shape (batch, n_features)
(the flat rows the backbone reads); the callable must return a tensor of
the same shape. ``generator`` is a seeded ``torch.Generator`` on the batch's
device, so an augmented fit stays reproducible from ``random_state``.

``augment="auto"`` picks the built-in that fits a registered backbone:
:class:`HorizontalFlip` for ``"cnn2d"`` images (the CLMLE paper flips face
images), :class:`RandomShift` for ``"cnn1d"`` signals, none for ``"mlp"``.
"""

import torch

from sklearn_clmle.backbones import CNN1D, CNN2D


class HorizontalFlip:
    """Mirror each image of the batch left-right with probability ``p``.

    Parameters
    ----------
    image_shape : tuple of int
        ``(height, width)`` or ``(channels, height, width)`` of a flat row.
    p : float, default=0.5
        Probability of flipping one image.

    Examples
    --------
    >>> import torch
    >>> from sklearn_clmle.augment import HorizontalFlip
    >>> flip = HorizontalFlip((2, 2), p=1.0)
    >>> flip(torch.tensor([[1.0, 2.0, 3.0, 4.0]]), torch.Generator())
    tensor([[2., 1., 4., 3.]])
    """

    def __init__(self, image_shape, p=0.5):
        self.image_shape = tuple(int(s) for s in image_shape)
        self.p = float(p)

    def __call__(self, batch, generator):
        images = batch.reshape((batch.shape[0],) + self.image_shape)
        flip = torch.rand(batch.shape[0], generator=generator,
                          device=generator.device) < self.p
        flipped = torch.where(flip.view((-1,) + (1,) * len(self.image_shape)),
                              images.flip(-1), images)
        return flipped.reshape(batch.shape)

    def __repr__(self):
        return f"HorizontalFlip(image_shape={self.image_shape}, p={self.p})"


class RandomShift:
    """Shift each signal of the batch by a random number of steps, zero-filled.

    Parameters
    ----------
    max_shift : int, default=4
        Shifts are drawn uniformly from ``[-max_shift, max_shift]``.
    n_channels : int, default=1
        Channels of a flat row (a row is ``n_channels`` signals end to end,
        as :class:`~sklearn_clmle.backbones.CNN1D` reads it); all channels of
        a row move together.

    Examples
    --------
    >>> import torch
    >>> from sklearn_clmle.augment import RandomShift
    >>> shift = RandomShift(max_shift=2)
    >>> shift(torch.arange(6.0).reshape(1, 6), torch.Generator().manual_seed(0)).shape
    torch.Size([1, 6])
    """

    def __init__(self, max_shift=4, n_channels=1):
        self.max_shift = int(max_shift)
        self.n_channels = int(n_channels)

    def __call__(self, batch, generator):
        n, width = batch.shape
        length = width // self.n_channels
        signals = batch.reshape(n, self.n_channels, length)
        shifts = torch.randint(-self.max_shift, self.max_shift + 1, (n, 1, 1),
                               generator=generator, device=generator.device)
        pos = torch.arange(length, device=batch.device).view(1, 1, -1) - shifts
        valid = (pos >= 0) & (pos < length)
        gathered = torch.gather(signals, 2, pos.clamp(0, length - 1).expand_as(signals))
        return torch.where(valid, gathered, torch.zeros_like(gathered)).reshape(n, width)

    def __repr__(self):
        return f"RandomShift(max_shift={self.max_shift}, n_channels={self.n_channels})"


def resolve_augment(augment, module):
    """The callable ``augment`` stands for, given the built backbone (None: none)."""
    if augment is None or callable(augment):
        return augment
    # "auto": the built-in that fits the backbone's input layout.
    if isinstance(module, CNN2D):
        return HorizontalFlip(module.shape)
    if isinstance(module, CNN1D):
        return RandomShift(n_channels=module.shape[0])
    return None


def apply_augment(augment, batch, generator):
    """``augment(batch, generator)``, checked to keep the batch's shape."""
    out = augment(batch, generator)
    if not isinstance(out, torch.Tensor) or out.shape != batch.shape:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(
            f"augment must return a tensor of the batch's shape {tuple(batch.shape)}; "
            f"got {got}."
        )
    return out
