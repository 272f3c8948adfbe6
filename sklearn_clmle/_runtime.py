"""Device choice, thread limits and local seeding for torch work.

Nothing here touches CUDA at import time; the device is resolved when ``fit``
or ``transform`` runs.
"""

import contextlib

import numpy as np
import torch
from threadpoolctl import threadpool_limits


def resolve_device(device):
    """Turn the ``device`` parameter into a :class:`torch.device`.

    ``"auto"`` is CUDA when available, else CPU. An explicit CUDA device with
    no GPU present raises a ``ValueError``.
    """
    if device is None or (isinstance(device, str) and device == "auto"):
        if not torch.cuda.is_available():
            return torch.device("cpu")
        device = "cuda"
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
        if dev.index is None:
            # torch.device("cuda") != torch.device("cuda:0"): give the index,
            # so that comparing with a tensor's device (always indexed) holds.
            dev = torch.device("cuda", torch.cuda.current_device())
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
    """Run the block with at most ``n_threads`` threads, then restore.

    Applies ``torch.set_num_threads`` and a threadpoolctl limit on the BLAS
    and OpenMP pools numpy uses (the clustering's matrix products). None
    leaves both alone.
    """
    if n_threads is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(int(n_threads))
    try:
        with threadpool_limits(limits=int(n_threads)):
            yield
    finally:
        torch.set_num_threads(previous)


_FORK_MESSAGE = "Cannot re-initialize CUDA in forked subprocess"


@contextlib.contextmanager
def seeded_torch(seed, device, deterministic=False):
    """Seed torch's RNGs for the block without changing the caller's state.

    ``deterministic=True`` also turns on ``torch.use_deterministic_algorithms``
    (warn-only) and cuDNN's deterministic mode without benchmarking, and
    restores all three afterwards. Bitwise reproducible CUDA runs may also
    need ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` in the environment before CUDA
    starts; CPU and GPU results differ regardless.
    """
    devices = [device] if device.type == "cuda" else []
    previous = (
        torch.are_deterministic_algorithms_enabled(),
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.benchmark,
    )
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        if deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
            torch.backends.cudnn.deterministic = True
            torch.backends.cudnn.benchmark = False
        try:
            yield
        except RuntimeError as exc:
            if _FORK_MESSAGE in str(exc):
                raise RuntimeError(
                    "CUDA was started in the parent process before it forked this "
                    "worker. Use joblib's default 'loky' backend (or the 'spawn' "
                    "start method), n_jobs=1, or device='cpu'."
                ) from exc
            raise
        finally:
            if deterministic:
                torch.use_deterministic_algorithms(previous[0])
                torch.backends.cudnn.deterministic = previous[1]
                torch.backends.cudnn.benchmark = previous[2]


def seed_from(rng):
    """Draw a torch seed from a numpy Generator."""
    return int(rng.integers(np.iinfo(np.int64).max))
