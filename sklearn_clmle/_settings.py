"""The resolved training settings that every torch estimator hands its engine.

An estimator's ``fit`` turns its (validated) hyper-parameters into one frozen
:class:`TrainSettings`; the engine (:mod:`sklearn_clmle._engine`) reads only
that, never the estimator, so the three torch estimators share one training
procedure and a comparison between them differs only where they say so.
"""

import math
from dataclasses import dataclass
from typing import Callable, Optional

import torch

#: Starting learning rate of ``learning_rate="auto"`` per optimiser, chosen by
#: measurement (``benchmarks/results/engine.md``).
AUTO_LEARNING_RATE = {"sgd": 0.1, "adamw": 3e-3}


@dataclass(frozen=True)
class TrainSettings:
    """What one fit runs: budget, optimiser, schedule, validation, extras.

    ``steps_per_epoch`` is derived from the training rows and the batch size
    (``ceil(n / batch_size)``); budgets given in iterations override the
    epoch budgets (``max_steps``, ``warmup_steps``).
    """

    batch_size: int
    max_epochs: int
    max_steps: Optional[int]
    warmup_epochs: int
    warmup_steps: Optional[int]
    n_rounds: int
    optimizer: str
    learning_rate: float
    momentum: float
    weight_decay: float
    lr_schedule: str
    max_grad_norm: Optional[float]
    early_stopping: bool
    validation_fraction: float
    n_iter_no_change: int
    tol: float
    augment: Optional[Callable]
    ce_loss: str
    ce_input: str
    ce_weight: float
    cost_sensitive: bool
    inference_batch_size: int
    verbose: int
    mixed_precision: Optional[str] = None

    def steps_per_epoch(self, n_rows):
        """Optimiser steps of one pass over ``n_rows`` training rows."""
        return max(1, math.ceil(n_rows / self.batch_size))

    def main_steps(self, n_rows):
        """Steps of the main phase: ``max_steps``, else ``max_epochs`` epochs."""
        if self.max_steps is not None:
            return self.max_steps
        return self.max_epochs * self.steps_per_epoch(n_rows)

    def warmup_total(self, n_rows):
        """Steps of the cross-entropy warm-up."""
        if self.warmup_steps is not None:
            return self.warmup_steps
        return self.warmup_epochs * self.steps_per_epoch(n_rows)

    def make_optimizer(self, params, learning_rate=None):
        """The optimiser over ``params`` at ``learning_rate`` (default: the setting)."""
        lr = self.learning_rate if learning_rate is None else learning_rate
        if self.optimizer == "adamw":
            return torch.optim.AdamW(params, lr=lr, weight_decay=self.weight_decay)
        return torch.optim.SGD(
            params, lr=lr, momentum=self.momentum, weight_decay=self.weight_decay
        )


def resolve_learning_rate(learning_rate, optimizer):
    """``learning_rate`` as a float (``"auto"``: the measured rate of ``optimizer``)."""
    if isinstance(learning_rate, str):
        return AUTO_LEARNING_RATE[optimizer]
    return float(learning_rate)
