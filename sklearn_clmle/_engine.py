"""The training engine every torch estimator runs: epochs, schedule, early stopping.

:func:`run_phase` runs one phase of a fit (a cross-entropy warm-up, the
CLMLE/LMLE rounds, or a classifier's whole training) as a sequence of
epochs. Each epoch: an optional hook (re-clustering), ``steps_per_epoch``
optimiser steps with the learning rate set by the schedule, one history row
(``phase``, ``epoch``, ``steps``, ``loss``, ``val_score``,
``learning_rate``, ``grad_norm``, ``seconds``), the schedule's epoch update,
and early stopping on the validation score with the best epoch's weights
kept and restored at the end.

The loss of every step stays on the device: one host copy per epoch, so a
GPU never waits on the host between steps.

Under ``torch.distributed`` (:mod:`sklearn_clmle._distributed`) the epoch's
loss is the mean over the ranks, and its validation score and seconds, and
the modules' buffers, are rank 0's: every rank writes the same history and
makes the same early-stopping decision.
"""

import math
import time

import numpy as np
import torch

from sklearn_clmle._distributed import Ranks
from sklearn_clmle._progress import EpochProgress, logger
from sklearn_clmle._schedules import LearningRateSchedule, plateau_patience
from sklearn_clmle._steps import DIVERGENCE_HINT, check_finite


class Phase:
    """One phase of a fit.

    Parameters
    ----------
    name : str
        ``"warmup"`` or ``"train"`` in the history.
    step : callable
        ``step() -> (loss, grad_norm)``: one optimiser step; the loss a
        detached 0-d tensor, the norm a tensor or None.
    total_steps : int
    steps_per_epoch : int
    schedule : {"constant", "cosine", "plateau"}
    before_epoch : callable, optional
        ``before_epoch(epoch_in_phase)``, e.g. re-clustering.
    validate : callable, optional
        ``validate() -> float``, the validation score (higher is better).
    early_stopping : bool
        Stop after ``n_iter_no_change`` epochs without a validation
        improvement of more than ``tol``; restore the best weights.
    divergence_hint : str
        Appended to the error when the loss stops being finite.
    """

    def __init__(self, name, step, total_steps, steps_per_epoch, schedule="constant",
                 before_epoch=None, validate=None, early_stopping=False,
                 divergence_hint=DIVERGENCE_HINT, label=None):
        self.name = name
        self.step = step
        self.total_steps = int(total_steps)
        self.steps_per_epoch = max(1, int(steps_per_epoch))
        self.schedule = schedule
        self.before_epoch = before_epoch
        self.validate = validate
        self.early_stopping = early_stopping and validate is not None
        self.divergence_hint = divergence_hint
        self.label = label or name

    @property
    def n_epochs(self):
        return math.ceil(self.total_steps / self.steps_per_epoch)


class PhaseResult:
    """What :func:`run_phase` reports: epochs and steps run, the best epoch."""

    def __init__(self, epochs, steps, best_epoch, best_score):
        self.epochs = epochs
        self.steps = steps
        self.best_epoch = best_epoch
        self.best_score = best_score


def run_phase(phase, optimizer, modules, settings, history, first_epoch=1):
    """Run ``phase``; append one row per epoch to ``history``.

    Parameters
    ----------
    phase : Phase
    optimizer : torch.optim.Optimizer
    modules : list of torch.nn.Module
        What early stopping snapshots and restores.
    settings : TrainSettings
        ``n_iter_no_change``, ``tol`` and ``verbose`` are read.
    history : list of dict
    first_epoch : int
        Number of the phase's first epoch in the fit (epochs count over all
        phases, from 1).

    Returns
    -------
    PhaseResult
    """
    schedule = LearningRateSchedule(
        optimizer, phase.schedule, phase.total_steps,
        patience=plateau_patience(settings.n_iter_no_change), tol=settings.tol,
    )
    best_score, best_epoch, best_state, stale = -math.inf, None, None, 0
    step = epochs = 0
    ranks = Ranks()
    progress = EpochProgress(phase.n_epochs, phase.label, settings.verbose)
    try:
        for epoch in range(phase.n_epochs):
            t0 = time.perf_counter()
            if phase.before_epoch is not None:
                phase.before_epoch(epoch)
            n = min(phase.steps_per_epoch, phase.total_steps - step)
            schedule.before_step(step)
            lr = schedule.learning_rate  # the rate of the epoch's first step
            loss_sum, norms = None, []
            for _ in range(n):
                schedule.before_step(step)
                loss, norm = phase.step()
                loss_sum = loss if loss_sum is None else loss_sum + loss
                if norm is not None:
                    norms.append(norm)
                step += 1
            mean_loss = float(ranks.mean(loss_sum)) / n  # the epoch's one host sync
            check_finite(mean_loss, phase.label, phase.divergence_hint)
            ranks.sync_buffers(modules)
            score = phase.validate() if phase.validate is not None else float("nan")
            # Rank 0's score decides on every rank (the same early stopping).
            score, seconds = ranks.root_floats(score, time.perf_counter() - t0)
            epochs += 1
            number = first_epoch + epoch
            row = {
                "phase": phase.name, "epoch": number, "steps": n, "loss": mean_loss,
                "val_score": score, "learning_rate": lr,
                "grad_norm": float(torch.stack(norms).max()) if norms else float("nan"),
                "seconds": seconds,
            }
            history.append(row)
            progress.update(row, epoch + 1)
            schedule.after_epoch(score if phase.validate is not None else -mean_loss)
            if phase.validate is not None and score > best_score + settings.tol:
                best_score, best_epoch, stale = score, number, 0
                if phase.early_stopping:
                    best_state = [_snapshot(m) for m in modules]
            elif phase.validate is not None:
                stale += 1
                if phase.early_stopping and stale >= settings.n_iter_no_change:
                    logger.info(
                        "%s: validation score did not improve by more than tol=%g for "
                        "%d epochs; stopping at epoch %d and restoring epoch %d.",
                        phase.label, settings.tol, settings.n_iter_no_change,
                        number, best_epoch,
                    )
                    break
    finally:
        progress.close()
    if best_state is not None:
        for module, state in zip(modules, best_state):
            module.load_state_dict(state)
    return PhaseResult(epochs, step, best_epoch, best_score)


def _snapshot(module):
    """A copy of ``module``'s weights that later steps do not change."""
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


class BatchOrder:
    """Row indices of uniform mini-batches, a fresh permutation every pass.

    Every row is seen once per pass over the data (an epoch), as in
    skorch or a ``DataLoader(shuffle=True)``. Under ``torch.distributed``
    (``ranks``), as with a ``DistributedSampler``: ``rng`` is the same on
    every rank, a step takes the next ``world x batch_size`` rows of the
    shared permutation and each rank every ``world``-th of them.
    """

    def __init__(self, n, batch_size, rng, ranks=None):
        self.n = n
        self.world, self.rank = (1, 0) if ranks is None else (ranks.world, ranks.rank)
        self.batch = min(batch_size * self.world, n)
        self.rng = rng
        self.order = np.empty(0, dtype=np.int64)

    def next(self):
        if self.order.size < self.batch:
            self.order = np.concatenate([self.order, self.rng.permutation(self.n)])
        idx, self.order = self.order[:self.batch], self.order[self.batch:]
        return idx if self.world == 1 else idx[self.rank::self.world]
