"""One model trained by two processes: torch.distributed with gloo on the CPU.

Every test launches two ranks of this file as a script (``python
test_distributed.py <scenario> <folder>``, the ``__main__`` block at the
end). They meet through a file in the test's temporary folder
(``init_method="file://..."``), so nothing listens on a TCP port, and gloo's
own connections use the loopback interface (``GLOO_SOCKET_IFNAME=lo``). Each
rank runs one thread (``OMP_NUM_THREADS=1``, ``n_threads=1``), every launch
has a timeout and is killed when it runs past it, and the ranks write what
they fitted to the folder for the test to compare. ``torchrun`` itself (its
TCP store listens on every interface) runs only inside a private network
namespace (``unshare -n``), where the loopback interface is the only one;
those tests are skipped where that is not allowed.
"""

import json
import os
import pickle
import shlex
import shutil
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
from sklearn.metrics import balanced_accuracy_score

from sklearn_clmle import (
    CLMLEEmbedder,
    CrossEntropyClassifier,
    KNearestClusterClassifier,
    LMLEEmbedder,
    load,
    save,
)
from sklearn_clmle.datasets import load_long_tailed_digits

pytestmark = pytest.mark.skipif(
    not dist.is_available() or not dist.is_gloo_available(),
    reason="torch.distributed with gloo is not available",
)

ROOT = Path(__file__).resolve().parents[1]
#: The process group's timeout in the ranks: the crash tests must end well
#: before it.
PG_TIMEOUT = 120
#: Most seconds a launch may take before it is killed (imports included).
LAUNCH_TIMEOUT = 150

SMALL = dict(embedding_dim=16, backbone_kwargs={"hidden_layer_sizes": (64,)},
             n_threads=1, random_state=0)
#: The fits of the "fit" scenario, a few seconds each on one core.
MAKE = {
    "clmle": lambda: CLMLEEmbedder(**SMALL, warmup_epochs=20, max_epochs=20, n_rounds=2,
                                   early_stopping=True, n_iter_no_change=5),
    "lmle": lambda: LMLEEmbedder(**SMALL, warmup_epochs=4, max_epochs=4, n_rounds=2),
    "ce": lambda: CrossEntropyClassifier(**SMALL, max_epochs=60),
    "ce_early_stopping": lambda: CrossEntropyClassifier(**SMALL, max_epochs=20,
                                                        early_stopping=True),
    "clmle_multilabel": lambda: CLMLEEmbedder(**SMALL, warmup_epochs=3, max_epochs=3,
                                              n_rounds=1),
    "ce_multilabel": lambda: CrossEntropyClassifier(**SMALL, max_epochs=5),
}
#: Iteration budgets for the data-check and failure scenarios.
FAST = dict(SMALL, n_rounds=2, iterations_per_round=5, warmup_iterations=5)


def _problem():
    """Long-tailed digits (imbalance ratio 10): 352 training rows, 899 test rows."""
    X_tr, X_te, y_tr, y_te = load_long_tailed_digits(10, random_state=0)
    return X_tr / 16.0, X_te / 16.0, y_tr, y_te


def _attributes(y):
    """Three 0/1 attributes of a digit: >= 5, even, a zero."""
    return np.column_stack([y >= 5, y % 2 == 0, y == 0]).astype(int)


# -- the launchers ---------------------------------------------------------------


def _launch(scenario, folder, timeout=LAUNCH_TIMEOUT):
    """Run ``scenario`` on two ranks; return their exit codes, logs and seconds."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               OPENBLAS_NUM_THREADS="1", GLOO_SOCKET_IFNAME="lo", WORLD_SIZE="2",
               CLMLE_TEST_INIT=f"file://{folder / 'rendezvous'}")
    logs = [folder / f"rank{rank}.log" for rank in range(2)]
    procs = []
    t0 = time.monotonic()
    try:
        for rank, log in enumerate(logs):
            with open(log, "w") as fh:
                procs.append(subprocess.Popen(
                    [sys.executable, __file__, scenario, str(folder)],
                    env=dict(env, RANK=str(rank), LOCAL_RANK=str(rank)), stdout=fh,
                    stderr=subprocess.STDOUT, start_new_session=True,
                ))
        for proc in procs:
            proc.wait(timeout=max(1.0, timeout - (time.monotonic() - t0)))
    except subprocess.TimeoutExpired:
        pytest.fail(f"{scenario}: the two ranks ran past {timeout} s\n" + _tails(logs))
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    return ([p.returncode for p in procs], [log.read_text() for log in logs],
            time.monotonic() - t0)


def _torchrun(args, timeout=LAUNCH_TIMEOUT):
    """``torchrun --nproc_per_node=2 ...`` in a network namespace of its own."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        pytest.skip("needs unshare and ip for a private network namespace")
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("no private network namespace here (unshare -n refused)")
    command = "ip link set lo up && exec " + shlex.join([
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
        "--master_addr=127.0.0.1", "--master_port=29500", *args,
    ])
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               OPENBLAS_NUM_THREADS="1")
    t0 = time.monotonic()
    proc = subprocess.Popen(["unshare", "-n", "sh", "-c", command], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(f"torchrun ran past {timeout} s\n{out[-4000:]}")
    return proc.returncode, out, time.monotonic() - t0


def _tails(logs):
    return "\n".join(f"--- {log.name}\n{log.read_text()[-3000:]}" for log in logs
                     if log.exists())


def _check_ran(codes, logs):
    assert codes == [0, 0], "\n".join(f"--- rank {r}\n{t[-3000:]}"
                                      for r, t in enumerate(logs))


# -- the tests -------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_rank_fits(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fit")
    codes, logs, _ = _launch("fit", folder)  # and the data-check cases
    _check_ran(codes, logs)
    fitted = [pickle.loads((folder / f"rank{r}.pkl").read_bytes()) for r in range(2)]
    return folder, fitted, logs


@pytest.mark.parametrize("name", list(MAKE))
def test_both_ranks_end_with_the_same_weights_and_attributes(two_rank_fits, name):
    _, fitted, _ = two_rank_fits
    a, b = fitted[0][name], fitted[1][name]
    for attr in ("module_", "head_"):
        if hasattr(a, attr):
            assert type(getattr(a, attr)).__name__ != "DistributedDataParallel"
            sa, sb = getattr(a, attr).state_dict(), getattr(b, attr).state_dict()
            assert sa.keys() == sb.keys()
            for key in sa:
                assert torch.equal(sa[key], sb[key]), (name, attr, key)
    local = {"module_", "head_", "fit_stats_", "device_"}
    names = sorted(k for k in vars(a) if k.endswith("_") and k not in local)
    assert names == sorted(k for k in vars(b) if k.endswith("_") and k not in local)
    for key in names:
        va, vb = getattr(a, key), getattr(b, key)
        if isinstance(va, list) and va and isinstance(va[0], np.ndarray):
            assert all(np.array_equal(x, y) for x, y in zip(va, vb)), (name, key)
        elif isinstance(va, np.ndarray):
            np.testing.assert_array_equal(va, vb, err_msg=f"{name}.{key}")
        else:  # repr: exact for floats, and NaN equals NaN
            assert repr(va) == repr(vb), (name, key)
    # the loss the mean over the ranks, the scores and seconds rank 0's
    assert repr(a.history_) == repr(b.history_)


def test_the_loss_falls_and_budgets_count_passes_over_the_data(two_rank_fits):
    _, fitted, _ = two_rank_fits
    for name in ("clmle", "ce"):
        losses = [row["loss"] for row in fitted[0][name].history_]
        assert losses[-1] < 0.7 * losses[0], (name, losses)
    # An epoch is one pass by both ranks together: the 352 rows in steps of
    # 2 x 120 rows are 2 steps a rank (as one process in steps of 240), the
    # 317 training rows of ce_early_stopping in steps of 2 x 240 are 1.
    assert {row["steps"] for row in fitted[0]["ce"].history_} == {2}
    assert {row["steps"] for row in fitted[0]["ce_early_stopping"].history_} == {1}
    # early stopping decided the same on both ranks
    es = [fitted[r]["ce_early_stopping"] for r in range(2)]
    assert es[0].best_epoch_ is not None and es[0].best_epoch_ == es[1].best_epoch_
    assert fitted[0]["clmle"].n_iter_ == fitted[1]["clmle"].n_iter_


def _scores(models, X_tr, X_te, y_tr, y_te):
    clmle, ce = models["clmle"], models["ce"]
    knc = KNearestClusterClassifier(n_neighbors=1, random_state=0).fit(
        clmle.transform(X_tr), y_tr)
    return {
        "clmle": balanced_accuracy_score(y_te, knc.predict(clmle.transform(X_te))),
        "ce": balanced_accuracy_score(y_te, ce.predict(X_te)),
    }


def test_two_ranks_reach_the_accuracy_of_one_process(two_rank_fits):
    """The same budget in epochs, other random streams.

    CE splits the one-process batch of 240 rows over the ranks (the same
    steps); CLMLE keeps its batch of 12 clusters x 20 rows a rank (half the
    steps of twice the rows, with early stopping). Over random_state 0-4 one
    process's balanced accuracy on these 899 test rows spans 0.860-0.905
    (CE) and 0.867-0.894 (CLMLE + k-NC): a two-rank fit must be within 0.05
    of the one-process fit, about that seed-to-seed range.
    """
    _, fitted, _ = two_rank_fits
    X_tr, X_te, y_tr, y_te = _problem()
    one = _scores({k: MAKE[k]().fit(X_tr, y_tr) for k in ("clmle", "ce")},
                  X_tr, X_te, y_tr, y_te)
    two = _scores(fitted[0], X_tr, X_te, y_tr, y_te)
    for name in one:
        assert two[name] > one[name] - 0.05, (name, one, two)


def test_rank_0_saves_and_the_model_loads_on_the_cpu(two_rank_fits):
    folder, fitted, _ = two_rank_fits
    X, _, _, _ = _problem()
    for name in ("clmle", "ce"):
        loaded = load(folder / f"{name}.zip")
        assert next(loaded.module_.parameters()).device.type == "cpu"
        out = loaded.transform(X) if name == "clmle" else loaded.predict_proba(X)
        np.testing.assert_array_equal(out, np.load(folder / f"{name}_rank0.npy"))
        # the pickle of a DDP-trained model too, from either rank
        again = pickle.loads(pickle.dumps(fitted[1][name]))
        np.testing.assert_array_equal(
            again.transform(X) if name == "clmle" else again.predict_proba(X), out)


def test_only_rank_0_logs(two_rank_fits):
    _, _, logs = two_rank_fits
    assert "[sklearn_clmle] warm-up epoch 1/" in logs[0]
    assert "[sklearn_clmle]" not in logs[1]


def test_different_data_on_the_ranks_is_a_value_error_on_both(two_rank_fits):
    folder, _, _ = two_rank_fits
    msgs = [json.loads((folder / f"mismatch{r}.json").read_text()) for r in range(2)]
    expected = {
        "y": "y (checksum)", "X": "X (checksum", "n_samples": "n_samples: rank 1 has 351",
        "classes": "classes: rank 1 has", "parameters": "max_epochs (rank 0: 3, rank 1: 4)",
        "ce": "y (checksum)",
    }
    for case, text in expected.items():
        for rank in range(2):
            assert msgs[rank][case] is not None, (case, rank)
            assert "different training data or parameters" in msgs[rank][case]
            assert text in msgs[rank][case], (case, rank, msgs[rank][case])
    # The rank whose data is invalid raises its own error, the other names it.
    assert "NaN" in msgs[1]["nan"] and "could not validate" not in msgs[1]["nan"]
    assert "rank 1 could not validate its training data" in msgs[0]["nan"]
    assert "NaN" in msgs[0]["nan"]
    # and afterwards the ranks still train together
    assert msgs[0]["same"] is None and msgs[1]["same"] is None


def test_a_rank_that_raises_mid_fit_ends_the_job(tmp_path):
    codes, logs, seconds = _launch("crash", tmp_path)
    assert codes[1] != 0 and "injected failure on rank 1" in logs[1], logs[1][-3000:]
    # Rank 0 does not wait for the process group's timeout: its peer is gone.
    assert codes[0] != 0, logs[0][-3000:]
    assert "Connection closed by peer" in logs[0] or "remote worker" in logs[0], logs[0]
    assert seconds < PG_TIMEOUT / 2, seconds


def test_under_torchrun_a_failing_rank_ends_the_job(tmp_path):
    code, out, seconds = _torchrun([__file__, "crash", str(tmp_path)])
    assert code != 0 and "injected failure on rank 1" in out, out[-4000:]
    assert seconds < PG_TIMEOUT / 2, seconds


def test_the_example_script_runs_under_torchrun(tmp_path):
    script = ROOT / "examples" / "distributed" / "train_ddp.py"
    code, out, _ = _torchrun([str(script), "--max-epochs", "3", "--warmup-epochs", "3",
                              "--out", str(tmp_path / "model.zip")])
    assert code == 0, out[-4000:]
    assert out.count("test balanced accuracy") == 1, out[-4000:]  # rank 0 only
    X, _, _, _ = _problem()
    assert load(tmp_path / "model.zip").transform(X).shape == (X.shape[0], 64)


def test_a_torchrun_launch_without_a_process_group_warns(monkeypatch):
    X, _, y, _ = _problem()
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.warns(UserWarning, match="no torch.distributed process group"):
        CrossEntropyClassifier(**SMALL, max_iter=2).fit(X, y)


# -- what the ranks run (python test_distributed.py <scenario> <folder>) --------


def _fit(rank, folder):
    """Every estimator on the same data; rank 0 saves two of them."""
    X, _, y, _ = _problem()
    fitted = {}
    for name, make in MAKE.items():
        est = make()
        if name == "clmle":
            est.set_params(verbose=1)
        if name == "ce":  # the one-process batch of 240 rows, split over the ranks
            est.set_params(batch_size=est.batch_size // dist.get_world_size())
        fitted[name] = est.fit(X, _attributes(y) if "multilabel" in name else y)
    (folder / f"rank{rank}.pkl").write_bytes(pickle.dumps(fitted))
    if rank == 0:
        for name in ("clmle", "ce"):
            est = fitted[name]
            save(est, folder / f"{name}.zip")
            np.save(folder / f"{name}_rank0.npy",
                    est.transform(X) if name == "clmle" else est.predict_proba(X))


def _mismatch(rank, folder):
    """Fits whose data or parameters differ on rank 1: each must raise on both."""
    X, _, y, _ = _problem()
    other = rank == 1
    y_flip = y.copy()
    y_flip[0] = (y[0] + 1) % 10
    X_nan = X.copy()
    X_nan[3, 5] = np.nan
    cases = {
        "y": (X, y_flip if other else y, {}),
        "X": (X + 1e-3 if other else X, y, {}),
        "n_samples": (X[:-1] if other else X, y[:-1] if other else y, {}),
        "classes": (X, np.where(y == 9, 10, y) if other else y, {}),
        "parameters": (X, y, {"max_epochs": 4 if other else 3}),
        "nan": (X_nan if other else X, y, {}),
        "ce": (X, y_flip if other else y, {"ce": True}),
        "same": (X, y, {}),
    }
    messages = {}
    for case, (X_r, y_r, params) in cases.items():
        if params.pop("ce", False):
            est = CrossEntropyClassifier(**SMALL, max_iter=3)
        else:
            est = CLMLEEmbedder(**{**FAST, "iterations_per_round": 2, **params})
        try:
            est.fit(X_r, y_r)
            messages[case] = None
        except ValueError as exc:
            messages[case] = str(exc)
    (folder / f"mismatch{rank}.json").write_text(json.dumps(messages))


class _FailOnRank1:
    """An augment that raises on rank 1 at its 8th batch (in the main phase)."""

    def __init__(self):
        self.calls = 0

    def __call__(self, batch, generator):
        self.calls += 1
        if dist.get_rank() == 1 and self.calls == 8:
            raise RuntimeError("injected failure on rank 1")
        return batch


def _crash(rank, folder):
    X, _, y, _ = _problem()
    CLMLEEmbedder(**FAST, augment=_FailOnRank1()).fit(X, y)


def _fit_and_mismatch(rank, folder):
    _fit(rank, folder)
    _mismatch(rank, folder)


SCENARIOS = {"fit": _fit_and_mismatch, "crash": _crash}


def _rank_main(scenario, folder):
    timeout = timedelta(seconds=PG_TIMEOUT)
    if "TORCHELASTIC_RUN_ID" in os.environ:  # launched by torchrun: env://
        dist.init_process_group("gloo", timeout=timeout)
    else:
        dist.init_process_group(
            "gloo", init_method=os.environ["CLMLE_TEST_INIT"],
            rank=int(os.environ["RANK"]), world_size=int(os.environ["WORLD_SIZE"]),
            timeout=timeout,
        )
    SCENARIOS[scenario](dist.get_rank(), Path(folder))
    dist.destroy_process_group()


if __name__ == "__main__":
    _rank_main(sys.argv[1], sys.argv[2])
