"""Thread limits, parallel search and reproducibility across processes."""

import sys

import numpy as np
import pytest
import torch
from _estimators import FAST_PARAMS
from joblib import Parallel, delayed

try:  # joblib < 1.5 vendors cloudpickle; newer versions depend on it
    from joblib.externals import cloudpickle
except ImportError:
    import cloudpickle
from sklearn.datasets import make_classification
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_info

from sklearn_clmle import (
    CLMLEEmbedder,
    CrossEntropyClassifier,
    KNearestClusterClassifier,
)

# loky workers cannot import this test module: send its functions by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


def _blas_threads():
    return max((p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"),
               default=None)


class ThreadRecorder(torch.nn.Module):
    """A linear backbone that records the thread limits seen in forward."""

    def __init__(self, n_features_in, embedding_dim):
        super().__init__()
        self.linear = torch.nn.Linear(n_features_in, embedding_dim)
        self.torch_threads = set()
        self.blas_threads = set()

    def forward(self, x):
        self.torch_threads.add(torch.get_num_threads())
        if len(self.blas_threads) < 2:  # threadpool_info is slow; twice is enough
            self.blas_threads.add(_blas_threads())
        return self.linear(x)


@pytest.fixture(scope="module")
def data():
    return make_classification(
        120, n_features=6, n_informative=4, n_classes=3, weights=[0.6, 0.3, 0.1],
        random_state=0,
    )


@pytest.mark.parametrize("make", [
    lambda: CLMLEEmbedder(**dict(FAST_PARAMS, backbone=ThreadRecorder, backbone_kwargs=None, n_threads=1)),
    lambda: CrossEntropyClassifier(backbone=ThreadRecorder, max_iter=5, n_threads=1,
                                   random_state=0),
])
def test_n_threads_applied_inside_fit_and_transform_then_restored(data, make):
    X, y = data
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        est = make().fit(X, y)
        assert torch.get_num_threads() == 2
        assert _blas_threads() in (None, 2) or _blas_threads() >= 2
        est.module_.torch_threads.clear()
        est.module_.blas_threads.clear()
        (est.transform if hasattr(est, "transform") else est.predict)(X)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(previous)
    assert est.module_.torch_threads == {1}
    assert est.module_.blas_threads <= {1, None}


def _threads_in_fit(estimator, X, y):
    """Scorer: the largest torch thread count the embedder saw while fitting."""
    return max(estimator.named_steps["clmleembedder"].module_.torch_threads)


def test_grid_search_n_jobs_2_keeps_one_thread_per_worker(data):
    X, y = data
    pipe = make_pipeline(
        StandardScaler(),
        CLMLEEmbedder(**dict(FAST_PARAMS, backbone=ThreadRecorder, backbone_kwargs=None, n_threads=1)),
        KNearestClusterClassifier(n_neighbors=3, cluster_size=5, random_state=0),
    )
    search = GridSearchCV(
        pipe, {"clmleembedder__a1": [0.05, 0.2]}, cv=2, n_jobs=2, scoring=_threads_in_fit,
    )
    search.fit(X, y)
    np.testing.assert_array_equal(search.cv_results_["mean_test_score"], [1.0, 1.0])


def _fit_transform(X, y, random_state):
    est = CLMLEEmbedder(**dict(FAST_PARAMS, random_state=random_state))
    return est.fit(X, y).transform(X)


def test_same_random_state_same_result_across_processes(data):
    X, y = data
    here = [_fit_transform(X, y, 7), _fit_transform(X, y, 7)]
    there = Parallel(n_jobs=2, backend="loky")(
        delayed(_fit_transform)(X, y, seed) for seed in (7, 7, 8)
    )
    np.testing.assert_array_equal(here[0], here[1])
    np.testing.assert_array_equal(here[0], there[0])
    np.testing.assert_array_equal(here[0], there[1])
    assert not np.array_equal(here[0], there[2])


def test_deterministic_switch_is_restored(data):
    X, y = data
    before = (torch.are_deterministic_algorithms_enabled(),
              torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    a = CLMLEEmbedder(**dict(FAST_PARAMS, deterministic=True)).fit(X, y).transform(X)
    after = (torch.are_deterministic_algorithms_enabled(),
             torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    assert after == before
    b = CLMLEEmbedder(**FAST_PARAMS).fit(X, y).transform(X)
    np.testing.assert_array_equal(a, b)  # on CPU the switch changes nothing


def test_cuda_fork_error_gets_a_hint(data):
    X, y = data

    def factory(n_features_in, embedding_dim):
        raise RuntimeError("Cannot re-initialize CUDA in forked subprocess. To use ...")

    with pytest.raises(RuntimeError, match="loky"):
        CLMLEEmbedder(**dict(FAST_PARAMS, backbone=factory, backbone_kwargs=None)).fit(X, y)
