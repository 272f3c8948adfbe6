"""Mixed precision of the training steps: autocast and, for float16, loss scaling.

``mixed_precision=None`` (the default) trains in float32. ``"bf16"`` runs
the forward pass and the loss under ``torch.autocast`` in bfloat16 (on a
GPU, or on a CPU with bfloat16 support); ``"fp16"`` in float16, on CUDA
only, with a gradient scaler so that small gradients do not underflow.
Weights, optimiser state, embeddings returned by ``transform`` and the
clustering stay float32.
"""

import contextlib

import torch

#: Allowed values of the ``mixed_precision`` parameter.
MODES = (None, "bf16", "fp16")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def check_mixed_precision(mode, device):
    """Raise a ``ValueError`` for a ``mixed_precision`` the device cannot run."""
    if mode not in MODES:
        raise ValueError(
            f"mixed_precision must be None, 'bf16' or 'fp16', got {mode!r}."
        )
    if mode == "fp16" and device.type != "cuda":
        raise ValueError(
            f"mixed_precision='fp16' needs a CUDA device, but training runs on "
            f"{device.type!r}; use mixed_precision='bf16' (or None) there."
        )


class MixedPrecision:
    """The autocast context of a fit's steps and its gradient scaler.

    Parameters
    ----------
    mode : {None, "bf16", "fp16"}
    device : torch.device

    Attributes
    ----------
    scaler : GradScaler or None
        Loss scaling for ``"fp16"``; None otherwise.
    """

    def __init__(self, mode, device):
        self.dtype = _DTYPES.get(mode)
        self.device_type = device.type
        self.scaler = _grad_scaler(device) if mode == "fp16" else None

    def autocast(self):
        """Context for the forward pass and the loss of one step."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)


def _grad_scaler(device):
    # torch.amp.GradScaler is torch >= 2.3; torch.cuda.amp's before that.
    if hasattr(torch.amp, "GradScaler"):
        return torch.amp.GradScaler(device.type)
    return torch.cuda.amp.GradScaler()
