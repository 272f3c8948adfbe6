"""Learning-rate schedules of the training engine.

- ``"constant"``: the starting rate throughout.
- ``"cosine"``: ``lr_t = lr * (1 + cos(pi * t / T)) / 2`` at step ``t`` of the
  ``T`` steps of the phase (set before every step).
- ``"plateau"``: the papers' rule, "divided by 10 when the error plateaus":
  after ``patience`` epochs in a row without an improvement of more than
  ``tol`` of the monitored value (the validation score when there is a
  validation part, else minus the training loss), the rate is divided by 10;
  at most ``MAX_REDUCTIONS`` times.
"""

import math

#: How many times ``"plateau"`` divides the rate by 10 at most.
MAX_REDUCTIONS = 3


def plateau_patience(n_iter_no_change):
    """Epochs without improvement before ``"plateau"`` divides the rate by 10.

    Half of early stopping's patience, so the rate drops before training
    stops: ``max(1, n_iter_no_change // 2)``.
    """
    return max(1, n_iter_no_change // 2)


class LearningRateSchedule:
    """Sets the learning rate of ``optimizer`` for every step and epoch.

    Parameters
    ----------
    optimizer : torch.optim.Optimizer
    kind : {"constant", "cosine", "plateau"}
    total_steps : int
        Steps of the phase (for ``"cosine"``).
    patience : int
        Epochs without improvement before a division (``"plateau"``).
    tol : float
        Minimum improvement that counts (``"plateau"``).
    """

    def __init__(self, optimizer, kind, total_steps, patience=5, tol=1e-4):
        self.optimizer = optimizer
        self.kind = kind
        self.base = [group["lr"] for group in optimizer.param_groups]
        self.total = max(1, total_steps)
        self.patience = patience
        self.tol = tol
        self.factor = 1.0
        self.best = -math.inf
        self.stale = 0
        self.reductions = 0

    def factor_at(self, step):
        """Multiplier of the starting rate at ``step`` (0-based)."""
        if self.kind == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * min(step, self.total) / self.total))
        return self.factor

    def before_step(self, step):
        factor = self.factor_at(step)
        for group, base in zip(self.optimizer.param_groups, self.base):
            group["lr"] = base * factor

    def after_epoch(self, monitored):
        """Feed the epoch's monitored value (higher is better)."""
        if self.kind != "plateau" or not math.isfinite(monitored):
            return
        if monitored > self.best + self.tol:
            self.best, self.stale = monitored, 0
            return
        self.stale += 1
        if self.stale >= self.patience and self.reductions < MAX_REDUCTIONS:
            self.factor /= 10.0
            self.reductions += 1
            self.stale = 0

    @property
    def learning_rate(self):
        """The rate of the first parameter group now."""
        return self.optimizer.param_groups[0]["lr"]
