"""Rows of the training or inference data on the device, and batched forwards.

:class:`Rows` gathers rows of ``X`` (dense or sparse, any float dtype) into
float32 tensors on the device without a full-size host copy; :func:`embed`
and :func:`network_outputs` run a module over all rows in batches.
"""

import numpy as np
import scipy.sparse as sp
import torch
from torch.nn import functional as F

#: Keep the whole training matrix on a GPU when it is at most this large.
_DEVICE_COPY_BYTES = 1 << 30


def to_device(a, device):
    """The numpy array ``a`` as a tensor on ``device``, without a host wait.

    On the CPU, ``torch.as_tensor`` (zero copy where it can). On an
    accelerator the array goes through pinned memory with a non-blocking
    copy: a copy from pageable memory would make the host wait until the
    device has finished all the work queued before it, once per step.
    """
    if isinstance(a, torch.Tensor) and a.device.type != "cpu":
        return a.to(device)  # already on an accelerator: nothing to pin
    if device.type == "cpu":
        return torch.as_tensor(a)
    # Contiguous first: pinning keeps a view's strides (and its whole base).
    t = torch.as_tensor(a).contiguous()
    return t.pin_memory().to(device, non_blocking=True)


class Rows:
    """Rows of ``X``, gathered into float32 tensors on ``device`` by index.

    No full-size host copy of ``X`` is made:

    - dense C-contiguous float32 ``X`` is used in place (zero copy);
    - other dense ``X`` (float64, non-contiguous) is kept as given, and each
      batch of rows is gathered with numpy and cast to float32 on its own;
    - on a GPU, dense ``X`` of at most ``_DEVICE_COPY_BYTES`` (1 GiB) as
      float32 is copied to the device once, cast block by block during the
      copy;
    - sparse ``X`` is kept as CSR in its own dtype; each batch of rows is
      sliced, cast and densified into a (batch, n_features) array, never the
      whole matrix.

    So memory beyond ``X`` itself is one batch (plus, on a GPU, the device
    copy).
    """

    def __init__(self, X, device):
        self.device = device
        self.sparse = sp.issparse(X)
        if self.sparse:
            self.X = X if X.format == "csr" else X.tocsr()
        else:
            X = np.asarray(X)
            in_place = X.dtype == np.float32 and X.flags.c_contiguous
            if device.type != "cpu" and X.size * 4 <= _DEVICE_COPY_BYTES:
                self.X = (torch.from_numpy(X).to(device) if in_place
                          else _device_copy(X, device))
            else:
                # A CPU tensor over X itself, or X as given (cast per batch).
                self.X = torch.from_numpy(X) if in_place else X
        self.n = self.X.shape[0]

    def take(self, idx):
        if self.sparse:
            return self._dense(self.X[idx])
        if isinstance(self.X, np.ndarray):
            return self._cast(self.X[np.asarray(idx)])
        if self.X.device.type != "cpu":  # the device copy made in __init__
            return self.X[to_device(np.asarray(idx), self.device)]
        return to_device(self.X[torch.from_numpy(np.asarray(idx))], self.device)

    def _slice(self, start, stop):
        """Rows ``start:stop``, as ``take`` gives them, without a gather."""
        if self.sparse:
            return self._dense(self.X[start:stop])
        if isinstance(self.X, np.ndarray):
            return self._cast(self.X[start:stop])
        return self.take(np.arange(start, stop))  # a copy: the module may write to it

    def _dense(self, block):
        """A CSR block of rows as a dense float32 tensor on the device."""
        return to_device(block.astype(np.float32, copy=False).toarray(), self.device)

    def _cast(self, block):
        """A numpy block of rows as a float32 tensor on the device (always a copy)."""
        return to_device(np.array(block, dtype=np.float32, order="C"), self.device)

    def chunks(self, batch_size):
        for start in range(0, self.n, batch_size):
            yield self._slice(start, min(start + batch_size, self.n))


def _device_copy(X, device):
    """``X`` as a float32 tensor on ``device``, cast on the host block by block."""
    out = torch.empty(X.shape, dtype=torch.float32, device=device)
    step = max(1, (1 << 24) // max(1, X.shape[1]))  # 64 MiB of float32 a block
    for start in range(0, X.shape[0], step):
        out[start:start + step] = torch.from_numpy(
            np.ascontiguousarray(X[start:start + step], dtype=np.float32)
        ).to(device)
    return out


def embed(module, rows, batch_size, out=None):
    """Unit-norm outputs of ``module`` for all rows (eval mode, no grad, batched).

    Memory: the (n, out) float32 output plus one batch (its input rows as
    :class:`Rows` gives them, and the activations). ``out``, a float32
    array of that shape no longer needed (e.g. the previous round's
    embedding), is filled in place of a new one.
    """
    return _batched_outputs(module, rows, batch_size, True, out)


def network_outputs(module, rows, batch_size):
    """Raw outputs of ``module`` (e.g. logits) for all rows, as :func:`embed`."""
    return _batched_outputs(module, rows, batch_size, False, None)


def _batched_outputs(module, rows, batch_size, normalize, out):
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            for start, xb in zip(range(0, rows.n, batch_size), rows.chunks(batch_size)):
                z = module(xb).float()
                z = (F.normalize(z, dim=1) if normalize else z).cpu().numpy()
                if out is None or out.shape != (rows.n, z.shape[1]):
                    # The output is filled in place: no second copy.
                    out = np.empty((rows.n, z.shape[1]), dtype=np.float32)
                out[start:start + len(z)] = z
    finally:
        module.train(was_training)
    return np.empty((0, 0), dtype=np.float32) if out is None else out
