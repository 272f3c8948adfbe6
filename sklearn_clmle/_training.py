"""The alternating training of the embedders (CLMLE Sec. 3.3; LMLE Sec. 3.2).

Kept apart from the estimators so the procedure reads in one sitting:

1. hold out a validation part (``early_stopping``);
2. warm up the backbone with cross-entropy (``init="warmup"``), or take
   the inputs as the first features (``init="input"``);
3. the main phase, in epochs: every ``ceil(max_epochs / n_rounds)`` epochs
   the training rows are embedded and every class re-clustered, then each
   step draws a batch, turns it into the objective's loss (Eq. 9 or LMLE's
   Eq. 2) plus the ``ce_weight`` cross-entropy term, and steps;
   the validation part is scored by the nearest-cluster rule after every
   epoch, and the best epoch's weights are restored;
4. a last embedding of all rows and clustering give the fitted clusters.

Under ``torch.distributed`` the same code trains one model on every rank
(:mod:`sklearn_clmle._distributed`): the steps run through DDP, each rank
embeds its share of the rows, rank 0 clusters and sends the clusters, and
each rank draws its own batches from them.
"""

import math
import time

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.utils import _safe_indexing
from torch.nn import functional as F

from sklearn_clmle._clustering import ClassClusters, _normalize_inplace
from sklearn_clmle._distributed import Ranks
from sklearn_clmle._engine import BatchOrder, Phase, run_phase
from sklearn_clmle._holdout import train_validation_split
from sklearn_clmle._loss import row_weights, weighted_mean
from sklearn_clmle._precision import MixedPrecision
from sklearn_clmle._rows import Rows, embed, to_device
from sklearn_clmle._steps import DIVERGENCE_HINT, CrossEntropyTerm, sgd_step
from sklearn_clmle._validation_score import nearest_cluster_score
from sklearn_clmle.augment import apply_augment


class TrainingData:
    """The rows a fit trains on, its validation part, their device views.

    ``early_stopping`` holds out ``validation_fraction`` of every class
    (:func:`~sklearn_clmle._holdout.train_validation_split`); otherwise all
    rows train and there is no validation part. ``rows_per_rank`` is what
    the epoch budgets count: the training rows, or under torch.distributed
    one rank's share of them (an epoch is one pass by all ranks together).
    """

    def __init__(self, X, y, settings, device, rng, classes, sample_weight=None):
        self.all_rows = Rows(X, device)
        self.val = None
        train = np.arange(y.shape[0])
        if settings.early_stopping:
            train, val = train_validation_split(_strata(y), settings.validation_fraction,
                                                rng, _strata_names(y, classes))
            if val.size:
                self.val = Rows(_safe_indexing(X, val), device)
                self.y_val = y[val]
        # The training rows as given (a subset copy only with a validation part).
        self.X = X if train.size == y.shape[0] else _safe_indexing(X, train)
        self.rows = self.all_rows if self.X is X else Rows(self.X, device)
        self.rows_per_rank = Ranks().share(self.rows.n)
        self.y = y[train]
        self.y_t = torch.as_tensor(self.y, device=device)
        self.counts = (np.bincount(self.y, minlength=classes.size) if y.ndim == 1
                       else np.stack([np.bincount(col, minlength=2) for col in self.y.T]))
        self.sample_weight = None
        if sample_weight is not None:
            self.sample_weight = torch.as_tensor(
                sample_weight[train], dtype=torch.float32, device=device
            )

    def batch(self, idx, augment, generator):
        """Rows ``idx`` of the training part, augmented when asked."""
        xb = self.rows.take(idx)
        return xb if augment is None else apply_augment(augment, xb, generator)

    def weights(self, idx_t):
        return None if self.sample_weight is None else self.sample_weight[idx_t]


def _strata(y):
    """What the hold-out stratifies on: the labels of a single-label ``y``.

    For a multi-label ``y``: each row's rarest positive label (``n_labels``
    for a row with none), so that the positives of rare labels reach both
    the training and the validation part.
    """
    if y.ndim == 1:
        return y
    count = np.where(y == 1, y.sum(axis=0)[None, :], np.inf)
    return np.where(np.isfinite(count.min(axis=1)), count.argmin(axis=1), y.shape[1])


def _strata_names(y, classes):
    """How the hold-out's warning names the strata of :func:`_strata`."""
    if y.ndim == 1:
        return classes
    return np.array([f"'rarest positive label {a}'" for a in range(y.shape[1])]
                    + ["'no positive label'"], dtype=object)


def cluster_batch_loss(objective, out, idx, batch, data, settings, term, head,
                       head_input, y_t):
    """The loss of one cluster batch: Eq. 9 (or LMLE's Eq. 2) plus the CE term.

    ``out`` is the raw backbone output of the batch rows ``idx``; the anchors
    are weighted by the inverse frequency of their class in the batch
    (``cost_sensitive``) times their sample weights, and the ``ce_weight``
    term reads ``head(head_input(out))`` of the anchors against ``y_t``.
    Returns the loss and the detached per-anchor terms.
    """
    per_row, anchor_class, anchors = objective.terms(F.normalize(out, dim=1), batch)
    anchor_idx = to_device(idx, out.device)[anchors]
    sw = data.weights(anchor_idx)
    w = row_weights(anchor_class, settings.cost_sensitive, per_row.dtype)
    loss = weighted_mean(per_row, w if sw is None else w * sw)
    if settings.ce_weight:
        loss = loss + settings.ce_weight * term(
            head(head_input(out[anchors])), y_t[anchor_idx], sw
        )
    return loss, per_row.detach()


def cross_entropy_phase(name, module, head, data, term, optimizer, settings, rng,
                        generator, total_steps, schedule="constant", validate=None,
                        early_stopping=False, label="cross-entropy", head_input=None):
    """A phase of (plain, balanced or logit-adjusted) cross-entropy steps.

    ``head_input`` maps the backbone's output to what ``head`` reads (default:
    the output itself).
    """
    ranks = Ranks()
    order = BatchOrder(data.rows.n, settings.batch_size, rng, ranks)
    head_input = head_input or (lambda out: out)
    amp = MixedPrecision(settings.mixed_precision, data.rows.device)
    trained = ranks.trained([module, head], data.rows.device)

    def forward_loss(xb, idx_t):
        logits = head(head_input(module(xb)))
        return term(logits, data.y_t[idx_t], data.weights(idx_t))

    def step():
        idx = order.next()
        idx_t = to_device(idx, data.rows.device)
        with amp.autocast():
            loss = trained(forward_loss, data.batch(idx, settings.augment, generator), idx_t)
        return loss.detach(), sgd_step(optimizer, loss, settings.max_grad_norm, amp.scaler)

    return Phase(name, step, total_steps, settings.steps_per_epoch(data.rows_per_rank),
                 schedule=schedule, validate=validate, early_stopping=early_stopping,
                 label=label)


def fit_embedding(module, X, y, classes, device, settings, rng, objective, *,
                  init, cluster_size, generator, sample_weight=None):
    """Warm up, alternate clustering and training, cluster the final embedding.

    Returns
    -------
    clusters : ClassClusters
        The clustering of the final embedding of all rows of ``X``.
    history : list of dict
        One row per epoch (see :func:`sklearn_clmle._engine.run_phase`).
    info : dict
        ``best_epoch``, ``n_epochs``, ``n_steps``, ``round_times`` (per
        re-clustering: seconds embedding and clustering).
    """
    n_classes = classes.size
    data = TrainingData(X, y, settings, device, rng, classes, sample_weight)
    ranks = Ranks()
    batch_rng = ranks.stream(rng)  # this rank's cluster batches (rng in one process)
    embed_rows = ranks.sharded(embed)
    module.to(device)
    history, info = [], {"round_times": []}
    head = torch.nn.Linear(_out_width(module, data), n_classes).to(device)
    term = CrossEntropyTerm(settings.ce_loss, data.counts, device)
    head_input = _head_input(settings.ce_input)
    modules = [module, head]
    epoch = 1
    warmup_steps = settings.warmup_total(data.rows_per_rank) if init == "warmup" else 0
    if warmup_steps > 0:
        opt = settings.make_optimizer(list(module.parameters()) + list(head.parameters()))
        result = run_phase(
            cross_entropy_phase("warmup", module, head, data, term, opt, settings, rng,
                                generator, warmup_steps, label="warm-up",
                                head_input=head_input),
            opt, modules, settings, history,
        )
        epoch += result.epochs
        features = embed_rows(module, data.rows, settings.inference_batch_size)
    else:
        features = _input_features(data.X)
    params = list(module.parameters())
    if settings.ce_weight:
        params += list(head.parameters())
    optimizer = settings.make_optimizer(params)
    trained = ranks.trained([module, head] if settings.ce_weight else [module], device)
    state = {"clusters": None, "features": features, "first": True}
    steps_per_epoch, total, every = _main_budget(settings, data.rows_per_rank)

    def recluster(e):
        if e % every:
            return
        t0 = time.perf_counter()
        if not state["first"]:  # the previous round's embedding is refilled
            state["features"] = embed_rows(module, data.rows, settings.inference_batch_size,
                                           out=state["features"])
        state["first"] = False
        t1 = time.perf_counter()
        state["clusters"] = ranks.from_root(lambda: ClassClusters(
            state["features"], data.y, cluster_size, n_classes=n_classes,
            previous=state["clusters"], random_state=rng, device=device,
        ))
        objective.start_round(state["clusters"], state["features"], data.y, batch_rng)
        info["round_times"].append({"embed_time": t1 - t0,
                                    "cluster_time": time.perf_counter() - t1})

    amp = MixedPrecision(settings.mixed_precision, device)

    def forward_loss(xb, idx, batch):
        out = module(xb)
        return cluster_batch_loss(objective, out, idx, batch, data, settings, term, head,
                                  head_input, data.y_t)

    def step():
        idx, batch = objective.sample()
        with amp.autocast():
            loss, per_row = trained(forward_loss, data.batch(idx, settings.augment, generator),
                                    idx, batch)
        norm = sgd_step(optimizer, loss, settings.max_grad_norm, amp.scaler)
        objective.update(idx, per_row)
        return loss.detach(), norm

    def score_validation():
        z_tr = embed_rows(module, data.rows, settings.inference_batch_size)
        z_va = embed_rows(module, data.val, settings.inference_batch_size)
        cl = state["clusters"]
        return nearest_cluster_score(z_tr, cl.labels, cl.cluster_class, z_va,
                                     data.y_val, data.counts, objective.rule)

    validate = None if data.val is None else score_validation

    result = run_phase(
        main_phase(step, total, steps_per_epoch, settings, recluster, validate,
                   objective.margin_names, objective.phase),
        optimizer, modules, settings, history, first_epoch=epoch,
    )
    info.update(best_epoch=result.best_epoch, n_epochs=result.epochs, n_steps=result.steps)
    t0 = time.perf_counter()
    final = embed_rows(module, data.all_rows, settings.inference_batch_size)
    info["final_embed_time"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    # All rows, validation part included: every training sample gets a cluster.
    previous = state["clusters"] if data.rows is data.all_rows else None
    clusters = ranks.from_root(lambda: ClassClusters(
        final, y, cluster_size, n_classes=n_classes, previous=previous,
        random_state=rng, device=device,
    ))
    info["final_cluster_time"] = time.perf_counter() - t0
    info["final_spread"] = _spread(final)
    return clusters, history, info


def main_phase(step, total, steps_per_epoch, settings, recluster, validate,
               margin_names, label):
    """The embedders' main phase: re-clustering epochs of ``step``."""
    return Phase("train", step, total, steps_per_epoch, schedule=settings.lr_schedule,
                 before_epoch=recluster, validate=validate,
                 early_stopping=settings.early_stopping,
                 divergence_hint=DIVERGENCE_HINT
                 + f" Or margins {margin_names} far above their bounds.",
                 label=label)


#: Inverse temperature of the cross-entropy head on the unit-norm embedding
#: (``ce_input="embedding"``): logits ``W (HEAD_SCALE * z) + b``.
HEAD_SCALE = 10.0


def _head_input(ce_input):
    """What the embedders' cross-entropy head reads, from the backbone's output."""
    if ce_input == "features":
        return lambda out: out
    # The last axis: a multi-label warm-up passes (n, n_labels, d) blocks.
    return lambda out: HEAD_SCALE * F.normalize(out, dim=-1)


def _main_budget(settings, n_rows, steps_factor=1):
    """``(steps_per_epoch, total_steps, recluster_every_epochs)`` of the main phase.

    In epochs: ``max_epochs`` passes over the training rows (``steps_factor``
    times the steps of one pass, for alternating multi-label batches),
    re-clustering every ``ceil(max_epochs / n_rounds)`` epochs. With ``iterations_per_round``
    (``max_steps`` set): ``n_rounds`` "epochs" of that many steps, re-clustering
    before each.
    """
    if settings.max_steps is not None:
        per_round = max(1, settings.max_steps // settings.n_rounds)
        return per_round, per_round * settings.n_rounds, 1
    spe = settings.steps_per_epoch(n_rows) * steps_factor
    every = max(1, math.ceil(settings.max_epochs / settings.n_rounds))
    return spe, settings.max_epochs * spe, every


def _out_width(module, data):
    """Width of the backbone's output, from one row."""
    was_training = module.training
    module.eval()
    with torch.no_grad():
        width = module(data.rows.take(np.arange(1))).shape[1]
    module.train(was_training)
    return width


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
