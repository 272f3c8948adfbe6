"""What the torch-backed estimators share.

Parameter constraints of the backbone and optimiser knobs, target checks and
encoding, the threaded and locally seeded training block, and pickling with
the weights on the CPU (so a model fitted on CUDA loads without a GPU) and
the package version stamped on, and the modules' rebuild for
:func:`sklearn_clmle.load`.
"""

import contextlib
import copy
import logging
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import is_classifier
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_consistent_length

from sklearn_clmle._distributed import Ranks, is_root, same_data_on_every_rank
from sklearn_clmle._precision import check_mixed_precision
from sklearn_clmle._progress import ensure_log_handler, log_level
from sklearn_clmle._runtime import seed_from, seeded_torch, torch_threads
from sklearn_clmle._settings import TrainSettings, resolve_learning_rate
from sklearn_clmle._validation import (
    check_class_targets,
    check_multilabel_target,
    check_sample_weight,
    check_single_label,
    validate_numeric,
)
from sklearn_clmle._versioning import VersionStampMixin
from sklearn_clmle.backbones import build_backbone

TORCH_PARAMETER_CONSTRAINTS = {
    "embedding_dim": [Interval(Integral, 1, None, closed="left")],
    "backbone": [str, torch.nn.Module, callable],
    "backbone_kwargs": [dict, None],
    "optimizer": [StrOptions({"sgd", "adamw"})],
    "learning_rate": [Interval(Real, 0, None, closed="neither"), StrOptions({"auto"})],
    "lr_schedule": [StrOptions({"constant", "cosine", "plateau"})],
    "max_epochs": [Interval(Integral, 1, None, closed="left")],
    "early_stopping": ["boolean"],
    "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
    "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
    "tol": [Interval(Real, 0, None, closed="left")],
    "augment": [callable, StrOptions({"auto"}), None],
    "momentum": [Interval(Real, 0, 1, closed="left")],
    "weight_decay": [Interval(Real, 0, None, closed="left")],
    "max_grad_norm": [Interval(Real, 0, None, closed="neither"), None],
    "inference_batch_size": [Interval(Integral, 1, None, closed="left")],
    "device": [str, torch.device, None],
    "mixed_precision": [StrOptions({"bf16", "fp16"}), None],
    "n_threads": [Interval(Integral, 1, None, closed="left"), None],
    "deterministic": ["boolean"],
    "random_state": ["random_state"],
    "verbose": ["verbose"],
}


class TorchEstimatorMixin(VersionStampMixin):
    """Fit-time plumbing of the estimators that train a torch backbone."""

    def _validate_training_data(self, X, y, sample_weight=None):
        """Validated ``X``, encoded ``y``, the classes, their counts and the weights.

        ``sample_weight`` comes back as float32 of shape (n_samples,), or None.
        """
        owner = type(self).__name__
        with same_data_on_every_rank(self) as agree:  # under torch.distributed
            check_single_label(y, owner)
            X, y = validate_numeric(
                self, X, y, accept_sparse="csr", dtype=[np.float32, np.float64],
            )
            check_class_targets(y, owner)
            encoder = LabelEncoder().fit(y)
            y_enc = encoder.transform(y)
            counts = np.bincount(y_enc, minlength=encoder.classes_.size)
            sample_weight = check_sample_weight(sample_weight, X)
            agree(X, y_enc, encoder.classes_, counts, sample_weight)
        return X, y_enc, encoder.classes_, counts, sample_weight

    def _validate_multilabel_data(self, X, Y, sample_weight=None):
        """Validated ``X``, the 0/1 ``Y``, its column names, counts and weights.

        ``counts`` has shape (n_labels, 2): the negative and positive rows of
        every label.
        """
        with same_data_on_every_rank(self) as agree:  # under torch.distributed
            Y, names = check_multilabel_target(Y, type(self).__name__)
            X = validate_numeric(self, X, accept_sparse="csr",
                                 dtype=[np.float32, np.float64])
            check_consistent_length(X, Y)
            counts = np.stack([np.bincount(col, minlength=2) for col in Y.T])
            sample_weight = check_sample_weight(sample_weight, X)
            agree(X, Y, names, counts, sample_weight)
        return X, Y, names, counts, sample_weight

    def _numpy_rng(self):
        """The fit's shared numpy stream; under torch.distributed, rank 0's."""
        rng = check_random_state(self.random_state)
        seed = rng.randint(np.iinfo(np.int32).max)
        return np.random.default_rng(Ranks().from_root(lambda: seed))

    @contextlib.contextmanager
    def _torch_session(self, np_rng, device):
        """Thread limit and local torch seed for a fit on ``device``.

        Checks first that ``mixed_precision`` can run on ``device``. Under
        torch.distributed every rank seeds torch from its own stream (its
        dropout); DDP gives every rank rank 0's initial weights.
        """
        check_mixed_precision(self.mixed_precision, device)
        with torch_threads(self.n_threads), seeded_torch(
            Ranks().seed(seed_from(np_rng)), device, self.deterministic
        ):
            yield

    @staticmethod
    def _batch_generator(np_rng, device):
        """The seeded ``torch.Generator`` on ``device`` that ``augment`` draws from
        (under torch.distributed, one stream per rank)."""
        return torch.Generator(device=device).manual_seed(Ranks().seed(seed_from(np_rng)))

    def _build_backbone(self, n_features_in):
        return build_backbone(
            self.backbone, n_features_in, self.embedding_dim, self.backbone_kwargs
        )

    def _train_settings(self, **budget):
        """The :class:`~sklearn_clmle._settings.TrainSettings` of this fit.

        ``budget`` holds what differs between the estimators: ``batch_size``,
        ``max_steps``, ``warmup_epochs``, ``warmup_steps``, ``n_rounds``,
        ``ce_loss``, ``ce_input``, ``ce_weight``, ``cost_sensitive`` and ``augment`` (the
        resolved callable).
        """
        defaults = dict(max_steps=None, warmup_epochs=0, warmup_steps=None, n_rounds=1,
                        ce_loss="plain", ce_input="features", ce_weight=0.0, cost_sensitive=False, augment=None)
        return TrainSettings(**{
            **defaults, **budget,
            "max_epochs": int(self.max_epochs),
            "optimizer": self.optimizer,
            "learning_rate": resolve_learning_rate(self.learning_rate, self.optimizer),
            "momentum": float(self.momentum),
            "weight_decay": float(self.weight_decay),
            "lr_schedule": self.lr_schedule,
            "max_grad_norm": self.max_grad_norm,
            "early_stopping": bool(self.early_stopping),
            "validation_fraction": float(self.validation_fraction),
            "n_iter_no_change": int(self.n_iter_no_change),
            "tol": float(self.tol),
            "inference_batch_size": int(self.inference_batch_size),
            "verbose": int(self.verbose) if is_root() else 0,  # rank 0 logs
            "mixed_precision": self.mixed_precision,
        })

    @contextlib.contextmanager
    def _logging(self):
        """The package logger at INFO (with a handler) when ``verbose``."""
        verbose = self.verbose and is_root()  # under torch.distributed, rank 0 logs
        if verbose:
            ensure_log_handler()
        with log_level(logging.INFO if verbose else None):
            yield

    def _rebuild_modules(self):
        """Untrained modules of the fitted architecture, by attribute name.

        :func:`sklearn_clmle.load` fills them with the saved weights: the
        backbone ``module_`` from the parameters and ``n_features_in_``, and
        for a classifier the linear head ``head_`` (``embedding_dim`` to
        ``n_classes``). Empty when not fitted. torch's global random state is
        left untouched.
        """
        if not hasattr(self, "n_features_in_"):
            return {}
        with torch.random.fork_rng(devices=[]):
            modules = {"module_": self._build_backbone(self.n_features_in_)}
            if is_classifier(self):
                modules["head_"] = torch.nn.Linear(self.embedding_dim, len(self.classes_))
        return modules

    def __getstate__(self):
        """Pickle with the torch modules on the CPU, so they load without a GPU."""
        state = super().__getstate__()
        for name, value in state.items():
            if isinstance(value, torch.nn.Module):
                state[name] = cpu_copy(value)
        return state


def cpu_copy(module):
    """A CPU deep copy of ``module``, leaving the original where it is."""
    params = list(module.parameters()) + list(module.buffers())
    if all(p.device.type == "cpu" for p in params):
        return module
    home = params[0].device
    try:
        return copy.deepcopy(module.to("cpu"))
    finally:
        module.to(home)
