"""What a fit shows while it runs: one log line per epoch, and a progress bar.

Silent unless ``verbose >= 1``: then every epoch logs one line (epoch, loss,
validation score, learning rate, seconds) on the ``sklearn_clmle`` logger at
INFO, and, when standard error is a terminal and ``tqdm`` is installed (the
``progress`` extra), a bar over the phase's epochs is drawn as well. A fit
inside a ``GridSearchCV`` worker is silent unless its estimator has
``verbose`` set.
"""

import logging
import sys

logger = logging.getLogger("sklearn_clmle")


def _tqdm():
    try:
        from tqdm.auto import tqdm
    except ImportError:  # the optional extra is not installed
        return None
    return tqdm


class EpochProgress:
    """Per-epoch log lines and, on a terminal, a bar over ``n_epochs``."""

    def __init__(self, n_epochs, label, verbose):
        self.label = label
        self.n_epochs = n_epochs
        self.verbose = verbose
        self.bar = None
        tqdm = _tqdm() if verbose else None
        if tqdm is not None and getattr(sys.stderr, "isatty", lambda: False)():
            self.bar = tqdm(total=n_epochs, desc=label, leave=False, file=sys.stderr)

    def update(self, row, epoch_in_phase):
        if not self.verbose:
            return
        logger.info(
            "%s epoch %d/%d: loss %.4f, validation %.4f, lr %.3g, %.2fs",
            self.label, epoch_in_phase, self.n_epochs, row["loss"], row["val_score"],
            row["learning_rate"], row["seconds"],
        )
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{row['loss']:.4f}", val=f"{row['val_score']:.4f}")
            self.bar.update(1)

    def close(self):
        if self.bar is not None:
            self.bar.close()


class log_level:
    """Temporarily lower the package logger's level (None: leave it)."""

    def __init__(self, level):
        self.level = level

    def __enter__(self):
        self.previous = logger.level
        if self.level is not None:
            logger.setLevel(self.level)

    def __exit__(self, *exc):
        logger.setLevel(self.previous)


class _TqdmSafeHandler(logging.StreamHandler):
    """Writes through ``tqdm.write`` when tqdm is there, so a bar is not torn."""

    def emit(self, record):
        tqdm = _tqdm()
        if tqdm is None:
            return super().emit(record)
        try:
            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # pragma: no cover - logging must never raise
            self.handleError(record)


def ensure_log_handler():
    """A stderr handler on the package logger when nothing would show its lines."""
    if not logger.handlers and not logging.getLogger().handlers:
        handler = _TqdmSafeHandler()
        handler.setFormatter(logging.Formatter("[sklearn_clmle] %(message)s"))
        logger.addHandler(handler)
