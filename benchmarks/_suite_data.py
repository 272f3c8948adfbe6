"""The benchmark suite's tasks: a dataset, its split for a seed, its backbone.

Long-tailed digits and MNIST-1D follow the SPEC protocol (stratified split,
then only the training part is long-tailed; test untouched). KEEL sets get a
stratified 70/30 split per seed. Features are raw here; every method's
pipeline standardises them on its training part.
"""

from dataclasses import dataclass

import numpy as np
from _keel import KEEL_DATASETS, load_keel
from sklearn.model_selection import train_test_split

from sklearn_clmle.datasets import load_long_tailed_digits, load_long_tailed_mnist1d

#: Imbalance ratios of the long-tailed sets (1 is the balanced control).
LT_RATIOS = (1, 10, 100)
#: Test fraction of the digits and KEEL splits (MNIST-1D has its own).
TEST_SIZE = 0.3


@dataclass(frozen=True)
class Task:
    """One dataset of the suite."""

    name: str
    group: str  # "digits", "mnist1d" or "keel"
    imbalance_ratio: float
    backbone: str
    backbone_kwargs: dict | None = None

    def split(self, seed):
        """``X_train, X_test, y_train, y_test`` for ``seed``."""
        if self.group == "digits":
            return load_long_tailed_digits(
                self.imbalance_ratio, test_size=TEST_SIZE, random_state=seed
            )
        if self.group == "mnist1d":
            return _mnist1d(self.imbalance_ratio, seed)
        X, y, _ = load_keel(self.name)
        return train_test_split(X, y, test_size=TEST_SIZE, stratify=y, random_state=seed)


_MNIST1D = {}


def _mnist1d(ir, seed):
    # Generating MNIST-1D takes a few seconds; the subsampling is cheap.
    key = (ir, seed)
    if key not in _MNIST1D:
        _MNIST1D[key] = load_long_tailed_mnist1d(ir, random_state=seed)
    return _MNIST1D[key]


def long_tailed_tasks(digits_backbone="mlp"):
    """Digits and MNIST-1D at each of ``LT_RATIOS``."""
    tasks = [Task(f"digits IR{ir}", "digits", ir, digits_backbone) for ir in LT_RATIOS]
    tasks += [Task(f"mnist1d IR{ir}", "mnist1d", ir, "cnn1d") for ir in LT_RATIOS]
    return tasks


def keel_tasks(names=KEEL_DATASETS):
    """KEEL sets with their measured imbalance ratio, MLP backbone."""
    tasks = []
    for name in names:
        _, y, info = load_keel(name)
        tasks.append(Task(name, "keel", info["imbalance_ratio"], "mlp"))
    return tasks


def class_counts(y):
    """Training class counts in label order."""
    return np.unique(y, return_counts=True)[1]
