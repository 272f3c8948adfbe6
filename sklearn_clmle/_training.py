"""The alternating training procedure (CLMLE Sec. 3.3; LMLE Sec. 3.2 steps 1-6).

Kept apart from the estimator so that the loop reads in one sitting:
cluster -> (sample a batch -> Eq. 9 loss -> step) x iterations -> re-cluster.
"""

import logging
import time

import numpy as np
import scipy.sparse as sp
import torch
from torch.nn import functional as F

from sklearn_clmle._clustering import ClassClusters, _normalize_inplace
from sklearn_clmle._loss import row_weights, weighted_mean

logger = logging.getLogger("sklearn_clmle")

#: Keep the whole training matrix on a GPU when it is at most this large.
_DEVICE_COPY_BYTES = 1 << 30


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
        if self.X.device == self.device:
            return self.X[torch.as_tensor(idx, device=self.device)]
        return self.X[torch.from_numpy(np.asarray(idx))].to(self.device, non_blocking=True)

    def _slice(self, start, stop):
        """Rows ``start:stop``, as ``take`` gives them, without a gather."""
        if self.sparse:
            return self._dense(self.X[start:stop])
        if isinstance(self.X, np.ndarray):
            return self._cast(self.X[start:stop])
        return self.take(np.arange(start, stop))  # a copy: the module may write to it

    def _dense(self, block):
        """A CSR block of rows as a dense float32 tensor on the device."""
        dense = block.astype(np.float32, copy=False).toarray()
        return torch.from_numpy(dense).to(self.device)

    def _cast(self, block):
        """A numpy block of rows as a float32 tensor on the device (always a copy)."""
        return torch.from_numpy(np.array(block, dtype=np.float32, order="C")).to(self.device)

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


def embed(module, rows, batch_size, normalize=True, out=None):
    """Outputs of ``module`` for all rows, eval mode, no grad, in batches.

    Unit-norm embeddings by default; ``normalize=False`` gives the raw
    outputs (e.g. logits). Memory: the (n, out) float32 output plus one
    batch (its input rows as :class:`Rows` gives them, and the activations).
    ``out``, a float32 array of that shape no longer needed (e.g. the
    previous round's embedding), is filled in place of a new one.
    """
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


_DIVERGENCE_HINT = (
    "learning_rate too high, or inputs on a large scale (standardise them, e.g. "
    "with a StandardScaler first); max_grad_norm clips exploding gradients."
)


def _check_finite(value, phase, hint):
    if not np.isfinite(value):
        raise FloatingPointError(
            f"The {phase} loss became {value} during fit. Likely causes: {hint}"
        )


def sgd_step(optimizer, loss, max_grad_norm=None):
    """Backward pass and one optimiser step; returns the gradient norm.

    With ``max_grad_norm`` the gradients are first rescaled so that their
    total L2 norm is at most that value (``clip_grad_norm_``; a step whose
    norm is below it is left bitwise unchanged) and the norm before
    clipping is returned; without it, NaN.
    """
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    norm = float("nan")
    if max_grad_norm is not None:
        params = [p for group in optimizer.param_groups for p in group["params"]]
        norm = float(torch.nn.utils.clip_grad_norm_(params, max_grad_norm))
    optimizer.step()
    return norm


def weighted_cross_entropy(logits, target, class_weight=None, sample_weight=None):
    """Cross-entropy averaged with weights ``class_weight[y_i] * sample_weight_i``.

    ``sum_i w_i l_i / sum_i w_i``, as ``F.cross_entropy(weight=...)`` does for
    class weights; unit sample weights give exactly the unweighted value.
    """
    per_row = F.cross_entropy(logits, target, reduction="none")
    w = (torch.ones_like(per_row) if class_weight is None
         else class_weight[target].to(per_row.dtype))
    if sample_weight is not None:
        w = w * sample_weight
    return weighted_mean(per_row, w)


def cross_entropy_steps(module, head, rows, y, optimizer, iterations, batch_size, rng,
                        class_weight=None, logit_offset=None, sample_weight=None,
                        max_grad_norm=None):
    """``iterations`` SGD steps of (weighted, logit-adjusted) cross-entropy.

    Mini-batches are drawn uniformly without replacement. ``class_weight``
    (per class) and ``sample_weight`` (per row, a tensor on the rows' device)
    weight the loss; ``logit_offset`` (per class) is added to the logits
    during training only, as in logit-adjusted cross-entropy. Returns the
    per-iteration loss and gradient norm (see :func:`sgd_step`).
    """
    y_t = torch.as_tensor(y, device=rows.device)
    batch = min(batch_size, rows.n)
    losses = np.empty(iterations)
    norms = np.empty(iterations)
    module.train()
    head.train()
    for it in range(iterations):
        idx = rng.choice(rows.n, batch, replace=False)
        logits = head(module(rows.take(idx)))
        if logit_offset is not None:
            logits = logits + logit_offset
        idx_t = torch.as_tensor(idx, device=rows.device)
        loss = weighted_cross_entropy(
            logits, y_t[idx_t], class_weight,
            None if sample_weight is None else sample_weight[idx_t],
        )
        norms[it] = sgd_step(optimizer, loss, max_grad_norm)
        losses[it] = loss.item()
        _check_finite(losses[it], "cross-entropy", _DIVERGENCE_HINT)
    return losses, norms


def warmup(module, head, rows, y, cfg, rng, sample_weight=None):
    """Cross-entropy warm-up of the backbone; per-iteration loss and gradient norm.

    A linear head on the backbone output is trained with the backbone; it is
    thrown away afterwards (like the pre-trained network of the paper) unless
    ``ce_weight > 0`` keeps it for the cross-entropy term.
    """
    opt = cfg["make_optimizer"](list(module.parameters()) + list(head.parameters()))
    return cross_entropy_steps(
        module, head, rows, y, opt, cfg["warmup_iterations"], cfg["batch_size"], rng,
        sample_weight=sample_weight, max_grad_norm=cfg["max_grad_norm"],
    )


def train_round(module, head, rows, y, objective, optimizer, cfg, sample_weight=None):
    """``iterations_per_round`` steps of ``objective`` on this round's clusters.

    Each step forwards the batch's rows, L2-normalises them, takes the
    objective's per-anchor terms and their cost-sensitive weights (inverse
    class frequency of the anchors in the batch), times ``sample_weight``
    of the anchors when given. With ``cfg["ce_weight"] > 0`` the
    cross-entropy of ``head`` on the anchors is added (not in the papers).
    Returns the per-iteration loss and gradient norm, and the time spent
    building batches.
    """
    ce_weight = cfg["ce_weight"]
    y_t = torch.as_tensor(y, device=rows.device)
    losses = np.empty(cfg["iterations_per_round"])
    norms = np.empty(cfg["iterations_per_round"])
    sample_time = 0.0
    module.train()
    for it in range(cfg["iterations_per_round"]):
        t0 = time.perf_counter()
        idx, batch = objective.sample()
        sample_time += time.perf_counter() - t0
        out = module(rows.take(idx))
        per_row, anchor_class, anchors = objective.terms(F.normalize(out, dim=1), batch)
        anchor_idx = torch.as_tensor(idx, device=rows.device)[anchors]
        sw = None if sample_weight is None else sample_weight[anchor_idx]
        w = row_weights(anchor_class, cfg["cost_sensitive"], per_row.dtype)
        loss = weighted_mean(per_row, w if sw is None else w * sw)
        if ce_weight:
            loss = loss + ce_weight * weighted_cross_entropy(
                head(out[anchors]), y_t[anchor_idx], sample_weight=sw
            )
        norms[it] = sgd_step(optimizer, loss, cfg["max_grad_norm"])
        losses[it] = loss.item()
        _check_finite(
            losses[it], objective.phase,
            _DIVERGENCE_HINT + f" Or margins {objective.margin_names} far above their bounds.",
        )
        objective.update(idx, per_row.detach())
    return losses, norms, sample_time


def fit_embedding(module, X, y, n_classes, device, cfg, rng, objective, sample_weight=None):
    """Run the alternation; returns the final clusters and the history.

    Warm-up (or the inputs) gives the first features; each round clusters
    every class on the current embedding, sets ``objective`` up on it and
    trains ``iterations_per_round`` steps; a last embedding and clustering
    give the fitted clusters. ``sample_weight`` (ndarray of shape (n,) or
    None) weights every row's loss terms, in the warm-up and in the rounds.
    """
    rows = Rows(X, device)
    if sample_weight is not None:
        sample_weight = torch.as_tensor(sample_weight, dtype=torch.float32, device=device)
    history = {"warmup_loss": np.empty(0), "warmup_grad_norm": np.empty(0),
               "loss": [], "grad_norm": [], "rounds": []}
    module.to(device)
    t0 = time.perf_counter()
    head = torch.nn.Linear(cfg["embedding_dim"], n_classes).to(device)
    if cfg["init"] == "warmup" and cfg["warmup_iterations"] > 0:
        history["warmup_loss"], history["warmup_grad_norm"] = warmup(
            module, head, rows, y, cfg, rng, sample_weight
        )
        features = embed(module, rows, cfg["inference_batch_size"])
    else:
        features = _input_features(X)
    history["warmup_time"] = time.perf_counter() - t0
    params = list(module.parameters())
    if cfg["ce_weight"]:
        params += list(head.parameters())
    optimizer = cfg["make_optimizer"](params)
    clusters = None
    for r in range(cfg["n_rounds"]):
        t0 = time.perf_counter()
        if r > 0:  # the previous round's embedding is refilled, not kept
            features = embed(module, rows, cfg["inference_batch_size"], out=features)
        embed_time = time.perf_counter() - t0
        t0 = time.perf_counter()
        clusters = ClassClusters(
            features, y, cfg["cluster_size"], n_classes=n_classes,
            previous=clusters, random_state=rng,
        )
        cluster_time = time.perf_counter() - t0
        t0 = time.perf_counter()
        objective.start_round(clusters, features, y, rng)
        setup_time = time.perf_counter() - t0
        t0 = time.perf_counter()
        losses, norms, sample_time = train_round(
            module, head, rows, y, objective, optimizer, cfg, sample_weight
        )
        train_time = time.perf_counter() - t0
        history["loss"].append(losses)
        history["grad_norm"].append(norms)
        history["rounds"].append({
            "round": r,
            "n_clusters": clusters.n_clusters,
            "embed_time": embed_time,
            "cluster_time": cluster_time,
            "setup_time": setup_time,
            "train_time": train_time,
            "sample_time": sample_time,
            "mean_loss": float(losses.mean()) if losses.size else float("nan"),
            "spread": _spread(features),
        })
        if cfg["verbose"]:
            logger.info(
                "round %d/%d: %d clusters, mean loss %.4f, clustering %.2fs, training %.2fs",
                r + 1, cfg["n_rounds"], clusters.n_clusters,
                history["rounds"][-1]["mean_loss"], cluster_time, train_time,
            )
    t0 = time.perf_counter()
    features = embed(module, rows, cfg["inference_batch_size"], out=features)
    history["final_embed_time"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    clusters = ClassClusters(
        features, y, cfg["cluster_size"], n_classes=n_classes,
        previous=clusters, random_state=rng,
    )
    history["final_cluster_time"] = time.perf_counter() - t0
    history["final_spread"] = _spread(features)
    for key in ("loss", "grad_norm"):
        history[key] = np.concatenate(history[key]) if history[key] else np.empty(0)
    return clusters, history


def _input_features(X):
    """The L2-normalised inputs, as float32: one copy of ``X``, no temporaries.

    Clustering the inputs needs them dense; sparse ``X`` is refused rather
    than densified whole.
    """
    if sp.issparse(X):
        raise ValueError(
            "init='input' (or warmup_iterations=0) clusters the raw inputs, which "
            f"needs dense X (a dense copy of this sparse X would be {X.shape[0]} x "
            f"{X.shape[1]} floats). "
            "Use init='warmup' with warmup_iterations > 0 (the default), which "
            "clusters the warmed-up embedding and densifies one batch at a time, "
            "or pass a dense array."
        )
    return _normalize_inplace(np.array(X, dtype=np.float32))


def _spread(features):
    """Mean squared distance between unit embeddings, ``2 (1 - |mean|^2)``.

    Near 0 means the embedding has collapsed to a point.
    """
    if features.shape[0] == 0:
        return float("nan")
    mean = features.mean(axis=0, dtype=np.float64)
    return float(2.0 * (1.0 - mean @ mean))
