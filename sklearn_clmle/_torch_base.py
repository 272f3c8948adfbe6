"""What the torch-backed estimators share.

Parameter constraints of the backbone and optimiser knobs, target checks and
encoding, the threaded and locally seeded training block, and pickling with
the weights on the CPU (so a model fitted on CUDA loads without a GPU) and
the package version stamped on, and the modules' rebuild for
:func:`sklearn_clmle.load`.
"""

import contextlib
import copy
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import is_classifier
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval

from sklearn_clmle._runtime import seed_from, seeded_torch, torch_threads
from sklearn_clmle._validation import (
    check_class_targets,
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
    "learning_rate": [Interval(Real, 0, None, closed="neither")],
    "momentum": [Interval(Real, 0, 1, closed="left")],
    "weight_decay": [Interval(Real, 0, None, closed="left")],
    "max_grad_norm": [Interval(Real, 0, None, closed="neither"), None],
    "inference_batch_size": [Interval(Integral, 1, None, closed="left")],
    "device": [str, torch.device, None],
    "n_threads": [Interval(Integral, 1, None, closed="left"), None],
    "deterministic": ["boolean"],
    "random_state": ["random_state"],
}


class TorchEstimatorMixin(VersionStampMixin):
    """Fit-time plumbing of the estimators that train a torch backbone."""

    def _validate_training_data(self, X, y, sample_weight=None):
        """Validated ``X``, encoded ``y``, the classes, their counts and the weights.

        ``sample_weight`` comes back as float32 of shape (n_samples,), or None.
        """
        owner = type(self).__name__
        check_single_label(y, owner)
        X, y = validate_numeric(
            self, X, y, accept_sparse="csr", dtype=[np.float32, np.float64],
        )
        check_class_targets(y, owner)
        encoder = LabelEncoder().fit(y)
        y_enc = encoder.transform(y)
        counts = np.bincount(y_enc, minlength=encoder.classes_.size)
        sample_weight = check_sample_weight(sample_weight, X)
        return X, y_enc, encoder.classes_, counts, sample_weight

    def _numpy_rng(self):
        rng = check_random_state(self.random_state)
        return np.random.default_rng(rng.randint(np.iinfo(np.int32).max))

    @contextlib.contextmanager
    def _torch_session(self, np_rng, device):
        """Thread limit and local torch seed for the block."""
        with torch_threads(self.n_threads), seeded_torch(
            seed_from(np_rng), device, self.deterministic
        ):
            yield

    def _build_backbone(self, n_features_in):
        return build_backbone(
            self.backbone, n_features_in, self.embedding_dim, self.backbone_kwargs
        )

    def _optimizer_factory(self):
        lr, momentum, wd = self.learning_rate, self.momentum, self.weight_decay

        def make_optimizer(params):
            return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=wd)

        return make_optimizer

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
