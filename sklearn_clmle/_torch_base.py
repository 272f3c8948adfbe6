"""What the torch-backed estimators share.

Parameter constraints of the backbone and optimiser knobs, target checks and
encoding, the threaded and locally seeded training block, and pickling with
the weights on the CPU (so a model fitted on CUDA loads without a GPU).
"""

import contextlib
import copy
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import validate_data

from sklearn_clmle._runtime import seed_from, seeded_torch, torch_threads
from sklearn_clmle._validation import check_class_targets, check_single_label
from sklearn_clmle.backbones import build_backbone

TORCH_PARAMETER_CONSTRAINTS = {
    "embedding_dim": [Interval(Integral, 1, None, closed="left")],
    "backbone": [str, torch.nn.Module, callable],
    "backbone_kwargs": [dict, None],
    "learning_rate": [Interval(Real, 0, None, closed="neither")],
    "momentum": [Interval(Real, 0, 1, closed="left")],
    "weight_decay": [Interval(Real, 0, None, closed="left")],
    "inference_batch_size": [Interval(Integral, 1, None, closed="left")],
    "device": [str, torch.device, None],
    "n_threads": [Interval(Integral, 1, None, closed="left"), None],
    "deterministic": ["boolean"],
    "random_state": ["random_state"],
}


class TorchEstimatorMixin:
    """Fit-time plumbing of the estimators that train a torch backbone."""

    def _validate_training_data(self, X, y):
        """Validated ``X``, encoded ``y``, the classes and their counts."""
        owner = type(self).__name__
        check_single_label(y, owner)
        X, y = validate_data(
            self, X, y, accept_sparse="csr", dtype=[np.float32, np.float64],
        )
        check_class_targets(y, owner)
        encoder = LabelEncoder().fit(y)
        y_enc = encoder.transform(y)
        counts = np.bincount(y_enc, minlength=encoder.classes_.size)
        return X, y_enc, encoder.classes_, counts

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

    def __getstate__(self):
        """Pickle with the torch modules on the CPU, so they load without a GPU."""
        state = self.__dict__.copy()
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
