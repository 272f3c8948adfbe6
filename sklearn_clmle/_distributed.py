"""One model trained by several processes: ``torch.distributed`` and DDP.

A fit runs distributed when the default process group is initialised
(``torch.distributed.is_initialized()``) with more than one rank, e.g. in a
script launched by ``torchrun --nproc_per_node=N`` that called
``torch.distributed.init_process_group``. Otherwise every helper here is the
identity and a fit is exactly the single-process fit.

The contract is that of torch's ``DistributedSampler``: every rank passes the
same full ``X``, ``y`` (and ``sample_weight``) and the same parameters, and
draws its own batches from them. Then:

- **The data check** (:func:`same_data_on_every_rank`): before training,
  every rank shares the shape, classes, class counts and checksums of its
  data and its parameters, and every rank raises the same ``ValueError`` when
  they differ; a rank whose data fails validation tells the others, so no
  rank is left waiting.
- **Random streams**: rank 0's seed is every rank's (``random_state=None``
  too). The shared stream (the validation split, the order of uniform
  batches, the clustering on rank 0) is the same on every rank; each rank
  draws its cluster batches, its augmentation and its dropout from streams of
  its own (:meth:`Ranks.stream`, :meth:`Ranks.seed`).
- **Budgets**: an epoch is one pass over the training rows by all ranks
  together, ``ceil(n / world_size)`` rows per rank (:meth:`Ranks.share`),
  so ``max_epochs`` keeps its meaning and each rank runs ``1 / world_size``
  of the steps, each step ``world_size`` times the rows. Iteration budgets
  count optimiser steps, each of ``world_size`` batches.
- **Gradients**: the modules a phase trains (backbone and cross-entropy
  head) run inside one ``DistributedDataParallel`` (:meth:`Ranks.trained`),
  which averages their gradients over the ranks during the backward pass.
- **Embeddings** between rounds, for validation and at the end: each rank
  embeds a contiguous ``1 / world_size`` of the rows and all ranks gather
  them (:meth:`Ranks.sharded`).
- **What is computed once** (the clusterings): on rank 0, sent to every
  rank (:meth:`Ranks.from_root`); an error there is raised on every rank.
- **Every epoch**: the loss in ``history_`` is the mean over the ranks,
  the validation score and the epoch's seconds are rank 0's (so early
  stopping decides the same on every rank), and module buffers are rank 0's.

So every rank ends with the same weights and the same fitted attributes
(only ``fit_stats_``'s timings and ``device_`` are each rank's own), and
the fitted ``module_`` is the plain module, never the DDP wrapper.
"""

import contextlib
import hashlib
import math
import os
import warnings

import numpy as np
import scipy.sparse as sp
import torch
import torch.distributed as dist

from sklearn_clmle._runtime import seed_from

#: Parameters that may differ between ranks: they change nothing that the
#: ranks must agree on (``device``: each rank its own GPU).
_RANK_LOCAL_PARAMETERS = frozenset({"device", "verbose", "n_threads"})
#: Bytes of an array hashed at a time by the data check.
_CHECKSUM_BLOCK_BYTES = 1 << 24


def is_distributed():
    """Whether a fit here trains one model with the other ranks of a job."""
    return (dist.is_available() and dist.is_initialized()
            and dist.get_world_size() > 1)


def is_root():
    """Whether this process logs and saves: rank 0, or the only process."""
    return not is_distributed() or dist.get_rank() == 0


class Ranks:
    """This process's place in a ``torch.distributed`` job, and its collectives.

    Without a process group of more than one rank (``active`` False) this is
    rank 0 of 1 and every method is the identity, so a single-process fit
    runs exactly the code it ran before.

    Attributes
    ----------
    active : bool
    rank, world : int
        This rank and the number of ranks.
    is_root : bool
        Rank 0.
    device : torch.device
        Where collective tensors live: the current CUDA device for NCCL,
        else the CPU.
    """

    def __init__(self):
        self.active = is_distributed()
        self.rank = dist.get_rank() if self.active else 0
        self.world = dist.get_world_size() if self.active else 1
        self.is_root = self.rank == 0
        self.device = _collective_device() if self.active else torch.device("cpu")

    # -- budgets and random streams -------------------------------------------

    def share(self, n):
        """Rows of ``n`` one rank covers in an epoch: ``ceil(n / world)``."""
        return -(-int(n) // self.world)

    def stream(self, rng):
        """This rank's own stream for its batches (``rng`` itself in one process).

        Draws one seed from the shared ``rng`` (at the same point on every
        rank) and mixes in the rank.
        """
        if not self.active:
            return rng
        return np.random.default_rng([seed_from(rng), self.rank])

    def seed(self, seed):
        """This rank's torch seed from the shared ``seed`` (``seed`` in one process)."""
        if not self.active:
            return seed
        state = np.random.SeedSequence([seed, self.rank]).generate_state(1, np.uint64)[0]
        return int(state >> np.uint64(1))

    # -- collectives ----------------------------------------------------------

    def from_root(self, compute):
        """``compute()`` run on rank 0, its result on every rank.

        An exception on rank 0 is raised there and, as a ``RuntimeError``
        naming it, on every other rank: no rank waits for a result that
        never comes.
        """
        if not self.active:
            return compute()
        box = [None]
        if self.is_root:
            try:
                box[0] = (True, compute())
            except Exception as exc:
                box[0] = (False, f"{type(exc).__name__}: {exc}")
                dist.broadcast_object_list(box, src=0, device=self.device)
                raise
        dist.broadcast_object_list(box, src=0, device=self.device)
        ok, value = box[0]
        if not ok:
            raise RuntimeError(f"rank 0 failed ({value}); every rank of the fit stops.")
        return value

    def root_floats(self, *values):
        """Rank 0's ``values`` (floats) on every rank."""
        if not self.active:
            return values
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.broadcast(t, src=0)
        return tuple(t.tolist())

    def mean(self, value):
        """The mean over the ranks of the 0-d tensor ``value`` (``value`` in one process)."""
        if not self.active:
            return value
        t = value.detach().to(device=self.device, dtype=torch.float64)
        dist.all_reduce(t)
        return t / self.world

    def sync_buffers(self, modules):
        """Give every rank rank 0's module buffers (e.g. BatchNorm statistics)."""
        if not self.active:
            return
        with torch.no_grad():
            for module in modules:
                for buf in module.buffers():
                    t = buf.to(self.device)
                    dist.broadcast(t, src=0)
                    if t is not buf:
                        buf.copy_(t)

    def trained(self, modules, device):
        """The call a step's forward pass and loss run through.

        ``trained(compute, *args)`` returns ``compute(*args)``, where
        ``compute`` calls ``modules`` (those the phase's optimiser trains).
        In one process it is that call. Under ``torch.distributed`` the call
        runs inside one ``DistributedDataParallel`` over all of ``modules``,
        so the backward pass averages every trained parameter's gradient
        over the ranks; building it gives every rank rank 0's weights.
        """
        if not self.active:
            return _call
        device_ids = None
        if device.type == "cuda":
            device_ids = [device.index if device.index is not None
                          else torch.cuda.current_device()]
        return torch.nn.parallel.DistributedDataParallel(
            _Trained(modules), device_ids=device_ids
        )

    def sharded(self, fn):
        """``fn(module, rows, *args)`` over all ``rows``, each rank doing its share.

        ``fn`` returns one float32 row per row of ``rows`` (as
        :func:`~sklearn_clmle._rows.embed` does). Each rank computes rows
        ``[rank * m, (rank + 1) * m)`` with ``m = ceil(n / world)`` and the
        ranks gather the rest; ``out=`` (an array of the result's shape) is
        filled instead of a new one. In one process, ``fn`` itself.
        """
        if not self.active:
            return fn

        def on_every_rank(module, rows, *args, out=None):
            m = self.share(rows.n)
            start = min(self.rank * m, rows.n)
            stop = min(start + m, rows.n)
            local = fn(module, _RowRange(rows, start, stop), *args)
            return self._gather_rows(local, rows.n, m, out)

        return on_every_rank

    def _gather_rows(self, local, n, m, out):
        width = torch.tensor([local.shape[1] if local.shape[0] else 0], device=self.device)
        dist.all_reduce(width, op=dist.ReduceOp.MAX)
        block = torch.zeros((m, int(width)), dtype=torch.float32, device=self.device)
        if local.shape[0]:
            block[:local.shape[0]] = torch.from_numpy(np.ascontiguousarray(local))
        full = torch.empty((self.world * m, int(width)), dtype=torch.float32,
                           device=self.device)
        dist.all_gather(list(full.split(m)), block)
        gathered = full[:n].cpu().numpy()
        if out is not None and out.shape == gathered.shape:
            out[...] = gathered
            return out
        return gathered


def _call(compute, *args):
    return compute(*args)


class _Trained(torch.nn.Module):
    """A phase's trained modules as one module, for DDP to cover all of them.

    Its forward runs the step's own ``compute``, which calls the modules.
    """

    def __init__(self, modules):
        super().__init__()
        self.parts = torch.nn.ModuleList(modules)

    def forward(self, compute, *args):
        return compute(*args)


class _RowRange:
    """Rows ``start:stop`` of a :class:`~sklearn_clmle._rows.Rows`, as
    :func:`~sklearn_clmle._rows.embed` reads rows (``n``, ``device``,
    ``chunks``)."""

    def __init__(self, rows, start, stop):
        self.rows, self.start, self.n, self.device = rows, start, stop - start, rows.device

    def chunks(self, batch_size):
        stop = self.start + self.n
        for s in range(self.start, stop, batch_size):
            yield self.rows.take(np.arange(s, min(s + batch_size, stop)))


def _collective_device():
    backend = str(dist.get_backend())
    if "nccl" in backend and "gloo" not in backend:
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


# -- the data check ---------------------------------------------------------


@contextlib.contextmanager
def same_data_on_every_rank(estimator):
    """Validate a fit's data in the block; under ``torch.distributed``, agree on it.

    Yields ``agree(X, y, classes, counts, sample_weight)``, to be called
    with the validated data at the end of the block. In one process it does
    nothing. Under ``torch.distributed`` every rank shares a fingerprint of
    its data (``n_samples``, ``n_features``, the classes and their counts,
    checksums of ``X``, ``y`` and ``sample_weight``) and of its parameters,
    and every rank raises the same ``ValueError`` naming what differs. A rank
    whose validation raises in the block shares that instead (and raises its
    own error); the others raise a ``ValueError`` naming it. Every rank
    reaches the one collective either way, so none waits for the others.
    """
    _warn_if_launched_without_group()
    ranks = Ranks()
    if not ranks.active:
        yield _no_check
        return
    shared = []

    def agree(X, y, classes, counts, sample_weight):
        shared.append(True)
        _compare(ranks, estimator,
                 _fingerprint(estimator, X, y, classes, counts, sample_weight))

    try:
        yield agree
    except Exception as exc:
        if not shared:
            _compare(ranks, estimator, {"error": f"{type(exc).__name__}: {exc}"})
        raise


def _no_check(X, y, classes, counts, sample_weight):
    """The data check of a single-process fit: nothing to agree on."""


def _warn_if_launched_without_group():
    world = os.environ.get("WORLD_SIZE", "1")
    if world.isdigit() and int(world) > 1 and not (dist.is_available()
                                                  and dist.is_initialized()):
        warnings.warn(
            f"WORLD_SIZE={world} (a torchrun launch?) but no torch.distributed "
            "process group is initialised, so every process trains a model of its "
            "own. Call torch.distributed.init_process_group() before fit to train "
            "one model with DistributedDataParallel.",
            UserWarning, stacklevel=4,
        )


#: What the data check compares, in the order its message names it.
_FIELDS = (
    ("n_samples", "n_samples"), ("n_features", "n_features"), ("classes", "classes"),
    ("counts", "class counts"), ("X", "X (checksum of values, dtype and layout)"),
    ("y", "y (checksum)"), ("sample_weight", "sample_weight (checksum)"),
)


def _fingerprint(estimator, X, y, classes, counts, sample_weight):
    return {
        "n_samples": int(X.shape[0]),
        "n_features": int(X.shape[1]),
        "classes": [str(c) for c in np.asarray(classes).tolist()],
        "counts": np.asarray(counts).tolist(),
        "X": _checksum(X),
        "y": _checksum(y),
        "sample_weight": None if sample_weight is None else _checksum(sample_weight),
        "parameters": {k: v for k, v in estimator.get_params(deep=False).items()
                       if k not in _RANK_LOCAL_PARAMETERS and _plain(v)},
    }


def _compare(ranks, estimator, mine):
    entries = [None] * ranks.world
    dist.all_gather_object(entries, mine)
    if "error" in mine:
        return  # this rank raises its own error
    where = f"{type(estimator).__name__}.fit under torch.distributed ({ranks.world} ranks)"
    failed = [(r, e["error"]) for r, e in enumerate(entries) if "error" in e]
    if failed:
        r, error = failed[0]
        raise ValueError(
            f"{where}: rank {r} could not validate its training data ({error}), so "
            "no rank trains. Every rank must pass the same full X and y."
        )
    ref = entries[0]
    diffs = []
    for key, label in _FIELDS:
        bad = [r for r in range(1, ranks.world) if entries[r][key] != ref[key]]
        if bad:
            diffs.append(f"{label}: " + "; ".join(
                f"rank {r} has {_show(key, entries[r][key])}" for r in bad
            ) + f", rank 0 has {_show(key, ref[key])}")
    params = sorted({k for e in entries[1:] for k in set(e["parameters"]) | set(ref["parameters"])
                     if e["parameters"].get(k) != ref["parameters"].get(k)})
    if params:
        diffs.append("parameters: " + ", ".join(
            f"{k} (rank 0: {ref['parameters'].get(k)!r}, " + ", ".join(
                f"rank {r}: {entries[r]['parameters'].get(k)!r}"
                for r in range(1, ranks.world)) + ")"
            for k in params[:10]))
    if diffs:
        raise ValueError(
            f"{where}: the ranks were given different training data or parameters, "
            "so they would train different models or wait for each other forever. "
            "Every rank must pass the same full X, y and sample_weight and the same "
            "parameters (each rank draws its own batches from them). Differences: "
            + "; ".join(diffs) + "."
        )
    if ref["n_samples"] < ranks.world:
        raise ValueError(
            f"{where}: n_samples={ref['n_samples']} is smaller than the number of "
            "ranks; every rank needs rows of its own to train on."
        )


def _show(key, value):
    if key in ("X", "y", "sample_weight"):
        return "none" if value is None else f"checksum {value[:12]}"
    if isinstance(value, list) and len(value) > 10:
        return "[" + ", ".join(map(str, value[:10])) + f", ... ({len(value)} in all)]"
    return str(value)


def _plain(value):
    """Whether ``value`` is data (not a callable, module or random state) to compare."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return not (isinstance(value, float) and math.isnan(value))
    if isinstance(value, (tuple, list)):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return False


def _checksum(a):
    """A hash of the values, dtype and shape of ``a`` (dense or sparse), by blocks."""
    h = hashlib.blake2b(digest_size=16)
    if sp.issparse(a):
        h.update(f"sparse {a.format} {a.shape}".encode())
        for part in (a.data, a.indices, a.indptr):
            _hash_rows(h, np.asarray(part))
        return h.hexdigest()
    a = np.asarray(a)
    h.update(f"{a.dtype.str} {a.shape}".encode())
    _hash_rows(h, a)
    return h.hexdigest()


def _hash_rows(h, a):
    if a.ndim == 0 or a.shape[0] == 0:
        h.update(np.ascontiguousarray(a).tobytes())
        return
    step = max(1, _CHECKSUM_BLOCK_BYTES // max(1, a[:1].nbytes))
    for start in range(0, a.shape[0], step):
        h.update(np.ascontiguousarray(a[start:start + step]).data)
