"""Multi-label CLMLE: one shared backbone, one Eq. 9 per binary label (Sec. 5).

The CLMLE paper trains CelebA's 40 attributes with one shared network and
"one extra 64-d FC layer for each binary attribute via Eq. (9) in a
multi-task manner", with cost-sensitive weights in the batch because
re-sampling cannot balance many labels at once. It does not say how a batch
is drawn for many labels. Here each label ``a`` has its own clustering of its
negatives and positives (on its own embedding block) and its own
:class:`~sklearn_clmle._objectives.ClusterMarginObjective`; a step is

- ``batches="joint"``: one CLMLE cluster batch per label (a query
  cluster of a random class of that label, its nearest clusters, ``s`` rows
  each), all forwarded together; the loss is the sum over labels of Eq. 9 on
  that label's own batch through its own head, weighted in that batch by the
  inverse frequency of the label's classes, plus each label's ``ce_weight``
  term. Every label gets a hard batch of its own at every step, and the
  shared backbone sees all labels' gradients at once.
- ``batches="alternate"``: one label's cluster batch per step, the labels in
  turn, and only that label's loss.
- ``batches="shared"`` (the estimator's default): one label's cluster batch
  per step, the labels in turn, scored by every label: for label ``a`` the rows are grouped by
  their clusters in label ``a``'s clustering, and the cost-sensitive weights
  rebalance label ``a``'s classes in that batch. This is how the paper's
  ablation reads ("class-balanced batch samples for one attribute will
  almost certainly be imbalanced for the other attributes. This is when the
  class costs can help"), though it does not state it.

The alternatives are measured in ``benchmarks/results/multilabel.md``. An
epoch gives every label ``ceil(n / (M s))`` batches of its own under the
first two rules (as a single-label fit of each label would get), and
``ceil(n / (M s))`` shared batches under the third. The warm-up is the per-label
cross-entropy on uniform batches of ``M s`` rows, summed over labels.

Under ``torch.distributed`` it trains one model on every rank as the
single-label fit does (:mod:`sklearn_clmle._distributed`): every rank draws
its own batches for the label whose turn it is.
"""

import time

import numpy as np

from sklearn_clmle._clustering import ClassClusters
from sklearn_clmle._distributed import Ranks
from sklearn_clmle._engine import run_phase
from sklearn_clmle._multihead import BlockLinear, normalize_blocks
from sklearn_clmle._rows import network_outputs
from sklearn_clmle._precision import MixedPrecision
from sklearn_clmle._steps import CrossEntropyTerm, sgd_step
from sklearn_clmle._training import (
    TrainingData,
    _head_input,
    _main_budget,
    _spread,
    cluster_batch_loss,
    cross_entropy_phase,
    main_phase,
)
from sklearn_clmle._validation_score import nearest_cluster_score


def block_embedding(net, rows, batch_size):
    """Per-label unit-norm embeddings of all rows, shape (n, n_labels * d)."""
    return normalize_blocks(network_outputs(net, rows, batch_size), net.n_heads)


def fit_multilabel_embedding(net, X, Y, device, settings, rng, objectives, *,
                             init, cluster_size, generator, sample_weight=None,
                             batches="shared"):
    """Warm up, alternate clustering and training per label, cluster the end.

    Parameters
    ----------
    net : MultiHeadNet
    X : array-like of shape (n_samples, n_features)
    Y : ndarray of shape (n_samples, n_labels)
        0/1 labels.
    objectives : list of ClusterMarginObjective
        One per label.
    init : {"warmup", "input"}
        ``"input"`` is refused by the estimator for multi-label targets.
    batches : {"joint", "alternate", "shared"}

    Returns
    -------
    clusters : list of ClassClusters
        Per label, the clustering of the final embedding of all rows.
    history, info
        As :func:`sklearn_clmle._training.fit_embedding`.
    """
    n_labels, dim = net.n_heads, net.embedding_dim
    data = TrainingData(X, Y, settings, device, rng, None, sample_weight)
    ranks = Ranks()
    batch_rng = ranks.stream(rng)  # this rank's cluster batches (rng in one process)
    embed_blocks = ranks.sharded(block_embedding)
    net.to(device)
    history, info = [], {"round_times": []}
    heads = BlockLinear(n_labels, dim, 2).to(device)
    terms = [CrossEntropyTerm(settings.ce_loss, data.counts[a], device)
             for a in range(n_labels)]
    y_cols = [data.y_t[:, a] for a in range(n_labels)]
    head_input = _head_input(settings.ce_input)
    modules = [net, heads]
    epoch = 1
    warmup_steps = settings.warmup_total(data.rows_per_rank) if init == "warmup" else 0
    if warmup_steps > 0:
        opt = settings.make_optimizer(list(net.parameters()) + list(heads.parameters()))
        result = run_phase(
            cross_entropy_phase("warmup", net, heads, data, _SummedTerms(terms), opt,
                                settings, rng, generator, warmup_steps, label="warm-up",
                                head_input=lambda out: head_input(net.blocks(out))),
            opt, modules, settings, history,
        )
        epoch += result.epochs
    params = list(net.parameters())
    if settings.ce_weight:
        params += list(heads.parameters())
    optimizer = settings.make_optimizer(params)
    trained = ranks.trained([net, heads] if settings.ce_weight else [net], device)
    state = {"clusters": [None] * n_labels, "features": None}
    # An epoch: ceil(n / (M s)) joint or shared steps, or n_labels times as
    # many alternating ones.
    steps_per_epoch, total, every = _main_budget(
        settings, data.rows_per_rank, n_labels if batches == "alternate" else 1
    )

    def recluster(e):
        if e % every:
            return
        t0 = time.perf_counter()
        state["features"] = embed_blocks(net, data.rows, settings.inference_batch_size)
        t1 = time.perf_counter()
        for a in range(n_labels):
            block = state["features"][:, a * dim:(a + 1) * dim]
            state["clusters"][a] = ranks.from_root(lambda: ClassClusters(
                block, data.y[:, a], cluster_size, n_classes=2,
                previous=state["clusters"][a], random_state=rng, device=device,
            ))
            objectives[a].start_round(state["clusters"][a], block, data.y[:, a], batch_rng)
        info["round_times"].append({"embed_time": t1 - t0,
                                    "cluster_time": time.perf_counter() - t1})

    turn = {"step": 0}

    def draw():
        """The rows to forward, and per scored label ``(label, rows of the
        forward batch, its row indices, what its objective needs)``."""
        t = turn["step"]
        turn["step"] += 1
        if batches == "shared":  # one label's batch, grouped by every label's clusters
            drawn = t % n_labels
            idx, batch = objectives[drawn].sample()
            return idx, [(a, slice(None), idx,
                          batch if a == drawn else objectives[a].batch_of(idx))
                         for a in range(n_labels)]
        labels = range(n_labels) if batches == "joint" else [t % n_labels]
        parts, start = [], 0
        for a in labels:
            idx_a, batch_a = objectives[a].sample()
            parts.append((a, slice(start, start + idx_a.size), idx_a, batch_a))
            start += idx_a.size
        return np.concatenate([p[2] for p in parts]), parts

    amp = MixedPrecision(settings.mixed_precision, device)

    def forward_loss(xb, parts):
        out = net.blocks(net(xb))
        loss, done = 0.0, []
        for a, rows, idx_a, batch_a in parts:
            loss_a, per_row = cluster_batch_loss(
                objectives[a], out[rows, a], idx_a, batch_a, data, settings, terms[a],
                lambda z, a=a: heads.block(z, a), head_input, y_cols[a],
            )
            loss = loss + loss_a
            done.append((a, idx_a, per_row))
        return loss, done

    def step():
        idx, parts = draw()
        with amp.autocast():
            loss, done = trained(forward_loss, data.batch(idx, settings.augment, generator),
                                 parts)
        norm = sgd_step(optimizer, loss, settings.max_grad_norm, amp.scaler)
        for a, idx_a, per_row in done:
            objectives[a].update(idx_a, per_row)
        return loss.detach(), norm

    def score_validation():
        z_tr = embed_blocks(net, data.rows, settings.inference_batch_size)
        z_va = embed_blocks(net, data.val, settings.inference_batch_size)
        scores = []
        for a in range(n_labels):
            cl, cols = state["clusters"][a], slice(a * dim, (a + 1) * dim)
            scores.append(nearest_cluster_score(
                z_tr[:, cols], cl.labels, cl.cluster_class, z_va[:, cols],
                data.y_val[:, a], data.counts[a], "clmle",
            ))
        return float(np.mean(scores))

    validate = None if data.val is None else score_validation
    result = run_phase(
        main_phase(step, total, steps_per_epoch, settings, recluster, validate,
                   objectives[0].margin_names, objectives[0].phase),
        optimizer, modules, settings, history, first_epoch=epoch,
    )
    info.update(best_epoch=result.best_epoch, n_epochs=result.epochs, n_steps=result.steps)
    t0 = time.perf_counter()
    final = embed_blocks(net, data.all_rows, settings.inference_batch_size)
    info["final_embed_time"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    same_rows = data.rows is data.all_rows
    clusters = ranks.from_root(lambda: [
        ClassClusters(final[:, a * dim:(a + 1) * dim], Y[:, a], cluster_size, n_classes=2,
                      previous=state["clusters"][a] if same_rows else None,
                      random_state=rng, device=device)
        for a in range(n_labels)
    ])
    info["final_cluster_time"] = time.perf_counter() - t0
    info["final_spread"] = [_spread(final[:, a * dim:(a + 1) * dim])
                            for a in range(n_labels)]
    return clusters, history, info


class _SummedTerms:
    """The warm-up's loss: every label's cross-entropy term, summed.

    ``logits`` of shape (n, n_labels, 2), ``target`` (n, n_labels).
    """

    def __init__(self, terms):
        self.terms = terms

    def __call__(self, logits, target, sample_weight=None):
        return sum(term(logits[:, a], target[:, a], sample_weight)
                   for a, term in enumerate(self.terms))
