"""Device choice, thread limits and local seeding for torch work.

Nothing here touches CUDA at import time; the device is resolved when ``fit``
or ``transform`` runs.
"""

import contextlib

import numpy as np
import torch


def resolve_device(device):
    """Turn the ``device`` parameter into a :class:`torch.device`.

    ``"auto"`` is CUDA when available, else CPU. An explicit CUDA device with
    no GPU present raises a ``ValueError``.
    """
    if device is None or (isinstance(device, str) and device == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"device={device!r} is not a valid device; expected 'auto', 'cpu', "
            "'cuda', 'cuda:N' or a torch.device."
        ) from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={device!r} was requested but CUDA is not available; use "
                "device='auto' or device='cpu'."
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(
                f"device={device!r} does not exist: {torch.cuda.device_count()} "
                "CUDA device(s) are visible."
            )
    elif dev.type != "cpu":
        raise ValueError(f"device={device!r} is not supported; use 'auto', 'cpu' or 'cuda'.")
    return dev


def inference_device(device):
    """Device for ``transform`` after fit: the requested one if it exists here.

    A model fitted on CUDA and loaded where there is no GPU runs on the CPU.
    """
    try:
        return resolve_device(device)
    except ValueError:
        return torch.device("cpu")


@contextlib.contextmanager
def torch_threads(n_threads):
    """Run the block with ``torch.set_num_threads(n_threads)``, then restore."""
    if n_threads is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(int(n_threads))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@contextlib.contextmanager
def seeded_torch(seed, device, deterministic=False):
    """Seed torch's RNGs for the block without changing the caller's state."""
    devices = [device] if device.type == "cuda" else []
    previous = torch.are_deterministic_algorithms_enabled()
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        if deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
        try:
            yield
        finally:
            if deterministic:
                torch.use_deterministic_algorithms(previous)


def seed_from(rng):
    """Draw a torch seed from a numpy Generator."""
    return int(rng.integers(np.iinfo(np.int64).max))
