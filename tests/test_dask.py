"""Out-of-core inference (``sklearn_clmle.dask``) and searches on a Dask cluster.

One module-scoped ``LocalCluster`` (2 worker processes x 1 thread, on
127.0.0.1, no dashboard) serves every test; every wait has a timeout, and
every test (and the cluster's start and stop) runs under a SIGALRM deadline,
so nothing here can hang.
"""

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")
joblib = pytest.importorskip("joblib")

from _estimators import FAST_PARAMS, cross_entropy, embedder, knc  # noqa: E402

try:  # joblib < 1.5 vendors cloudpickle; newer versions depend on it
    from joblib.externals import cloudpickle
except ImportError:  # pragma: no cover
    import cloudpickle
from sklearn.datasets import make_classification, make_multilabel_classification  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402

from sklearn_clmle import CLMLEEmbedder, KNearestClusterClassifier  # noqa: E402
from sklearn_clmle.dask import predict_blocks  # noqa: E402

# Workers cannot import this test module: send its functions by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])

TIMEOUT = 120  # seconds, for any single wait on the cluster
DEADLINE = 300  # seconds, for a whole test
WORKER_MEMORY = 1 << 30  # 1 GiB per worker
BIG_COLUMNS = 1024  # wide rows: fewer rows per byte, so less predict work
BIG_CHUNK_ROWS = 5_000  # 20 MiB float32 blocks


@contextlib.contextmanager
def _deadline(seconds):
    """Raise ``TimeoutError`` in the main thread after ``seconds`` (SIGALRM).

    A catch-all beside the per-call timeouts: a wait that has none of its
    own (``client.run``, a joblib search on the cluster) fails instead of
    hanging. Nested deadlines re-arm the outer one on exit. A no-op where
    SIGALRM is missing or off the main thread.
    """
    if (not hasattr(signal, "SIGALRM")
            or threading.current_thread() is not threading.main_thread()):
        yield
        return

    def fail(signum, frame):
        raise TimeoutError(f"ran past its {seconds} s deadline")

    previous = signal.signal(signal.SIGALRM, fail)
    outer = signal.alarm(seconds)  # seconds left on an enclosing deadline
    start = time.monotonic()
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
        if outer:
            signal.alarm(max(1, outer - int(time.monotonic() - start)))


@pytest.fixture(autouse=True)
def _test_deadline():
    with _deadline(DEADLINE):
        yield


@pytest.fixture(scope="module")
def client():
    with _deadline(TIMEOUT):
        cluster = distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
            dashboard_address=None, memory_limit=WORKER_MEMORY,
            silence_logs=40,  # logging.ERROR
        )
        dask_client = distributed.Client(cluster, timeout=TIMEOUT)
    try:
        with _deadline(TIMEOUT):
            dask_client.wait_for_workers(2, timeout=TIMEOUT)
        yield dask_client
    finally:
        with _deadline(TIMEOUT):
            dask_client.close(timeout=TIMEOUT)
            cluster.close(timeout=TIMEOUT)


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(
        200, n_features=6, n_informative=4, n_classes=3, weights=[0.6, 0.3, 0.1],
        random_state=0,
    )
    return X.astype(np.float32), y


@pytest.fixture(scope="module")
def fitted(data):
    X, y = data
    emb = embedder().fit(X, y)
    Z = emb.transform(X)
    return {
        "embedder": emb,
        "knc": knc().fit(Z, y),
        "pipeline": make_pipeline(embedder(), knc()).fit(X, y),
        "cross_entropy": cross_entropy().fit(X, y),
        "Z": Z,
    }


def _compute(client, array):
    return client.compute(array).result(timeout=TIMEOUT)


@pytest.mark.parametrize("name, method, width", [
    ("embedder", "transform", FAST_PARAMS["embedding_dim"]),
    ("knc", "predict", None),
    ("knc", "predict_proba", 3),
    ("pipeline", "predict", None),
    ("pipeline", "predict_proba", 3),
    ("cross_entropy", "predict", None),
    ("cross_entropy", "predict_proba", 3),
])
def test_blocks_equal_numpy_with_right_shape_chunks_and_meta(client, data, fitted,
                                                             name, method, width):
    X = fitted["Z"] if name == "knc" else data[0]
    est = fitted[name]
    expected = getattr(est, method)(X)
    lazy = predict_blocks(est, da.from_array(X, chunks=(64, -1)), method=method)
    rows = (64, 64, 64, 8)
    if width is None:
        assert lazy.shape == (200,) and lazy.chunks == (rows,)
    else:
        assert lazy.shape == (200, width) and lazy.chunks == (rows, (width,))
    assert lazy.dtype == expected.dtype and lazy._meta.dtype == expected.dtype
    assert isinstance(lazy._meta, np.ndarray) and lazy._meta.ndim == expected.ndim
    got = _compute(client, lazy)
    assert got.shape == expected.shape and got.dtype == expected.dtype
    # Labels must be equal. Floats are bit-equal here too (one thread, the
    # same torch and BLAS kernels block by block), but a BLAS may block a
    # 64-row product differently from a 200-row one, so compare to 1e-6.
    if method == "predict":
        np.testing.assert_array_equal(got, expected)
    else:
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)


def test_string_labels_column_chunks_and_unknown_row_chunks(client, data):
    X, y = data
    labels = np.array(["rare", "mid", "common"])[y]
    pipe = make_pipeline(embedder(), knc()).fit(X, labels)
    dX = da.from_array(X, chunks=(50, 3))  # columns split: joined first
    pred = predict_blocks(pipe, dX, method="predict")
    assert pred.dtype == pipe.predict(X[:1]).dtype and pred.chunks == ((50,) * 4,)
    np.testing.assert_array_equal(_compute(client, pred), pipe.predict(X))
    unknown = dX[da.from_array(np.ones(200, bool), chunks=50)]  # nan row chunks
    assert np.isnan(unknown.shape[0])
    got = _compute(client, predict_blocks(pipe, unknown, method="predict_proba"))
    np.testing.assert_allclose(got, pipe.predict_proba(X), atol=1e-6)


def test_multilabel_predict_proba_is_a_list_like_the_estimators(client):
    X, Y = make_multilabel_classification(120, n_features=6, n_classes=3,
                                          random_state=0)
    X = X.astype(np.float32)
    dX = da.from_array(X, chunks=(50, -1))
    for est in (cross_entropy().fit(X, Y), knc().fit(X, Y)):
        expected = est.predict_proba(X)  # a list: one (n, 2) array per label
        lazy = predict_blocks(est, dX, method="predict_proba")
        assert isinstance(lazy, list) and len(lazy) == len(expected) == 3
        got = [f.result(timeout=TIMEOUT) for f in client.compute(lazy)]
        for part, value, want in zip(lazy, got, expected):
            assert part.shape == want.shape and part.chunks == ((50, 50, 20), (2,))
            assert part.dtype == value.dtype == want.dtype
            np.testing.assert_allclose(value, want, rtol=1e-6, atol=1e-6)
        np.testing.assert_array_equal(_compute(client, predict_blocks(est, dX)),
                                      est.predict(X))  # (n, n_labels) indicators


def test_bad_input_names_the_parameter(data, fitted):
    X = da.from_array(data[0], chunks=50)
    with pytest.raises(ValueError, match="method must be one of"):
        predict_blocks(fitted["pipeline"], X, method="fit")
    with pytest.raises(ValueError, match="method must be one of"):
        predict_blocks(fitted["pipeline"], X, method=None)
    with pytest.raises(ValueError, match="method='transform' is not available"):
        predict_blocks(fitted["knc"], X, method="transform")
    with pytest.raises(TypeError, match="X must be a dask.array.Array"):
        predict_blocks(fitted["pipeline"], data[0])
    with pytest.raises(ValueError, match="X must be 2-D"):
        predict_blocks(fitted["pipeline"], X[:, 0])
    from sklearn.exceptions import NotFittedError
    with pytest.raises(NotFittedError):
        predict_blocks(CLMLEEmbedder(), X, method="transform")


def _block(block_id, n_rows, seed=0):
    """A lazily generated block of the big array (same numbers everywhere).

    Random rows repeated 20 times: the block is fully allocated (what the
    memory test needs) at a fraction of the cost of drawing every number.
    """
    rng = np.random.default_rng([seed, block_id[0]])
    return np.tile(rng.random((-(-n_rows // 20), BIG_COLUMNS), dtype=np.float32),
                   (20, 1))[:n_rows]


def _big_array(n_blocks):
    return da.map_blocks(
        lambda block_id=None: _block(block_id, BIG_CHUNK_ROWS),
        dtype=np.float32, meta=np.empty((0, 0), np.float32),
        chunks=((BIG_CHUNK_ROWS,) * n_blocks, (BIG_COLUMNS,)),
    )


def _peak_rss_bytes():
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def _worker_pids(client):
    return client.run(os.getpid)


def test_array_bigger_than_worker_memory_predicts_without_losing_a_worker(client):
    rng = np.random.default_rng(0)
    X = rng.random((300, BIG_COLUMNS), dtype=np.float32)
    y = (X[:, 0] + X[:, 1] > 1).astype(int) + (X[:, 2] > 0.8)
    pipe = make_pipeline(embedder(), KNearestClusterClassifier(
        n_neighbors=3, cluster_size=30, random_state=0)).fit(X, y)
    # bigger than both workers' memory limits together
    n_blocks = int(2.1 * WORKER_MEMORY // (BIG_CHUNK_ROWS * BIG_COLUMNS * 4)) + 1
    big = _big_array(n_blocks)
    assert big.nbytes > 2 * WORKER_MEMORY
    pids = _worker_pids(client)
    pred = predict_blocks(pipe, big, method="predict")
    counts = _compute(client, da.bincount(pred, minlength=3))
    assert counts.sum() == big.shape[0]
    assert _worker_pids(client) == pids  # no worker was killed and restarted
    peaks = client.run(_peak_rss_bytes)
    assert all(peak < WORKER_MEMORY for peak in peaks.values()), peaks
    # the first and last blocks, regenerated here, give the same labels
    first = _compute(client, pred[:BIG_CHUNK_ROWS])
    np.testing.assert_array_equal(first, pipe.predict(_block((0,), BIG_CHUNK_ROWS)))
    last = _compute(client, pred[-BIG_CHUNK_ROWS:])
    np.testing.assert_array_equal(
        last, pipe.predict(_block((n_blocks - 1,), BIG_CHUNK_ROWS)))


def _search(X, y):
    pipe = make_pipeline(embedder(n_threads=1), knc())
    return GridSearchCV(
        pipe, {"clmleembedder__a1": [0.05, 0.2], "clmleembedder__a2": [0.02, 0.05]},
        cv=2, scoring="balanced_accuracy", n_jobs=2,
    )


def test_grid_search_through_joblib_dask_backend_matches_sequential(client, data):
    X, y = data
    sequential = _search(X, y).set_params(n_jobs=None).fit(X, y)
    distributed_search = _search(X, y)

    with (distributed.get_task_stream(client) as stream, _deadline(TIMEOUT),
          joblib.parallel_backend("dask", wait_for_workers_timeout=TIMEOUT)):
        distributed_search.fit(X, y)
    assert distributed_search.best_params_ == sequential.best_params_
    np.testing.assert_allclose(distributed_search.cv_results_["mean_test_score"],
                               sequential.cv_results_["mean_test_score"])
    # the fits ran on the cluster's workers, each capped to one thread
    # (n_threads=1, and dask's nanny sets OMP_NUM_THREADS=1 in every worker
    # process, so torch's own default there is one thread too)
    ran_on = {task["worker"] for task in stream.data}
    assert ran_on and ran_on <= set(client.scheduler_info()["workers"])
    assert set(client.run(lambda: os.environ.get("OMP_NUM_THREADS")).values()) == {"1"}
    assert set(client.run(_torch_threads).values()) == {1}


def _torch_threads():
    import torch

    return torch.get_num_threads()


def test_core_import_does_not_import_dask():
    code = ("import sys, sklearn_clmle, sklearn_clmle.metrics, sklearn_clmle.persistence;"
            "print(sorted(m for m in sys.modules "
            "if m.split('.')[0] in ('dask', 'distributed', 'dask_ml')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=TIMEOUT, check=True).stdout
    assert out.strip() == "[]"
