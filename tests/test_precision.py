"""Mixed precision (``mixed_precision``) and the step's gradient scaler."""

import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification
from sklearn.metrics import balanced_accuracy_score
from sklearn.pipeline import make_pipeline

from sklearn_clmle import (
    CLMLEEmbedder,
    CrossEntropyClassifier,
    KNearestClusterClassifier,
    LMLEEmbedder,
)
from sklearn_clmle._precision import MixedPrecision, check_mixed_precision
from sklearn_clmle._steps import sgd_step

BF16_ON_CPU = hasattr(torch.backends, "mkldnn") and torch.backends.mkldnn.is_available()


def _data():
    X, y = make_classification(600, n_features=10, n_informative=6, n_classes=3,
                               weights=[0.6, 0.3, 0.1], random_state=0)
    return X.astype(np.float32), y


@pytest.mark.parametrize("Est", [CLMLEEmbedder, LMLEEmbedder, CrossEntropyClassifier])
def test_fp16_needs_cuda(Est):
    X, y = _data()
    with pytest.raises(ValueError, match="mixed_precision='fp16' needs a CUDA device"):
        Est(mixed_precision="fp16", device="cpu").fit(X, y)


@pytest.mark.parametrize("value", ["float16", "bfloat16", 16, True])
def test_bad_mixed_precision(value):
    X, y = _data()
    with pytest.raises((ValueError, TypeError), match="mixed_precision"):
        CrossEntropyClassifier(mixed_precision=value, device="cpu").fit(X, y)


def test_check_mixed_precision_names_the_value():
    with pytest.raises(ValueError, match="'half'"):
        check_mixed_precision("half", torch.device("cpu"))


@pytest.mark.skipif(not BF16_ON_CPU, reason="no bfloat16 kernels on this CPU")
def test_bf16_fit_matches_float32_accuracy():
    X, y = _data()
    scores = {}
    for mode in (None, "bf16"):
        pipe = make_pipeline(
            CLMLEEmbedder(n_rounds=2, iterations_per_round=60, warmup_iterations=60,
                          cluster_size=20, mixed_precision=mode, device="cpu",
                          random_state=0),
            KNearestClusterClassifier(n_neighbors=5, cluster_size=20, random_state=0),
        ).fit(X[:450], y[:450])
        scores[mode] = balanced_accuracy_score(y[450:], pipe.predict(X[450:]))
        Z = pipe[0].transform(X[:5])
        assert Z.dtype == np.float32  # inference stays float32
    assert scores["bf16"] >= scores[None] - 0.1


@pytest.mark.skipif(not BF16_ON_CPU, reason="no bfloat16 kernels on this CPU")
def test_autocast_runs_the_forward_in_bf16():
    amp = MixedPrecision("bf16", torch.device("cpu"))
    layer = torch.nn.Linear(4, 3)
    with amp.autocast():
        out = layer(torch.ones(2, 4))
    assert out.dtype == torch.bfloat16 and layer.weight.dtype == torch.float32
    assert amp.scaler is None
    with MixedPrecision(None, torch.device("cpu")).autocast():
        assert layer(torch.ones(2, 4)).dtype == torch.float32


@pytest.mark.skipif(not hasattr(torch.amp, "GradScaler"), reason="torch < 2.3")
def test_grad_scaler_step_equals_plain_step():
    # Scaling by a power of two and unscaling is exact: the same update.
    def run(scaler):
        torch.manual_seed(0)
        layer = torch.nn.Linear(5, 2)
        opt = torch.optim.SGD(layer.parameters(), lr=0.1, momentum=0.9)
        x = torch.randn(8, 5)
        for _ in range(3):
            norm = sgd_step(opt, layer(x).pow(2).mean(), max_grad_norm=0.5, scaler=scaler)
        return layer.weight.detach().clone(), norm

    plain, plain_norm = run(None)
    scaled, scaled_norm = run(torch.amp.GradScaler("cpu", init_scale=2.0 ** 10))
    torch.testing.assert_close(scaled, plain, rtol=0, atol=0)
    torch.testing.assert_close(scaled_norm, plain_norm, rtol=0, atol=0)


@pytest.mark.cuda
@pytest.mark.parametrize("mode", ["bf16", "fp16"])
def test_cuda_mixed_precision_fit(mode):
    X, y = _data()
    est = CLMLEEmbedder(n_rounds=2, iterations_per_round=30, warmup_iterations=30,
                        cluster_size=20, mixed_precision=mode, device="cuda",
                        random_state=0).fit(X, y)
    assert np.isfinite([r["loss"] for r in est.history_]).all()
    assert est.transform(X).dtype == np.float32
