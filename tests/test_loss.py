import math

import numpy as np
import pytest
import torch

from sklearn_clmle import ClusterMarginLoss
from sklearn_clmle._loss import cluster_margin_terms


def reference_terms(E, ids, classes, a1, a2):
    """Eq. 9 written out with Python loops, straight from the paper."""
    E = np.asarray(E, dtype=np.float64)
    M = len(classes)
    mus = {k: E[ids == k].mean(axis=0) for k in range(M) if np.any(ids == k)}
    t1, t2 = [], []
    for i, m in enumerate(ids):
        s = {k: E[i] @ mu for k, mu in mus.items()}
        other = [s[k] for k in mus if classes[k] != classes[m]]
        same = [s[k] for k in mus if k != m and classes[k] == classes[m]]
        t1.append(max(0.0, a1 - s[m] + math.log(sum(map(math.exp, other)))) if other else 0.0)
        t2.append(max(0.0, a2 - s[m] + math.log(sum(map(math.exp, same)))) if same else 0.0)
    return np.array(t1), np.array(t2)


def unit(rows):
    return torch.nn.functional.normalize(torch.tensor(rows, dtype=torch.float64), dim=1)


def test_hand_computed_two_clusters():
    # Two clusters of one row each, different classes, orthogonal rows:
    # mu_0 = e0, mu_1 = e1, s_own = 1, s_other = 0, term1 = [a1 - 1 + log e^0]_+.
    E = unit([[1.0, 0.0], [0.0, 1.0]])
    ids = torch.tensor([0, 1])
    classes = torch.tensor([0, 1])
    loss = ClusterMarginLoss(a1=1.5, a2=0.3)
    assert loss(E, ids, classes).item() == pytest.approx(0.5)
    # Below the margin the hinge is inactive.
    assert ClusterMarginLoss(a1=0.5, a2=0.3)(E, ids, classes).item() == 0.0


def test_hand_computed_with_same_class_term():
    # Rows at angles 0 and 90 degrees in class 0 (two clusters), 180 in class 1.
    E = unit([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    ids = torch.tensor([0, 1, 2])
    classes = torch.tensor([0, 0, 1])
    t1, t2 = cluster_margin_terms(E, ids, classes, 1.2, 0.1)
    # Row 0: s_own=1, other: s_2=-1, same: s_1=0.
    assert t1[0].item() == pytest.approx(max(0, 1.2 - 1 - 1))
    assert t2[0].item() == pytest.approx(max(0, 0.1 - 1 + 0))
    # Row 2: only class 1 cluster is its own: term2 absent, term1 over s_0=-1, s_1=0.
    assert t2[2].item() == 0.0
    assert t1[2].item() == pytest.approx(1.2 - 1 + math.log(math.exp(-1) + 1))


@pytest.mark.parametrize("seed", range(5))
def test_matches_reference_loops(seed):
    rng = np.random.default_rng(seed)
    n, M = 17, 5
    E = unit(rng.normal(size=(n, 3)))
    ids = rng.integers(0, M, n)
    classes = rng.integers(0, 3, M)
    t1, t2 = cluster_margin_terms(E, torch.tensor(ids), torch.tensor(classes), 0.7, 0.4)
    r1, r2 = reference_terms(E.numpy(), ids, classes, 0.7, 0.4)
    np.testing.assert_allclose(t1.numpy(), r1, atol=1e-12)
    np.testing.assert_allclose(t2.numpy(), r2, atol=1e-12)


def test_weights_cost_sensitive_and_uniform():
    rng = np.random.default_rng(0)
    E = unit(rng.normal(size=(9, 4)))
    ids = torch.tensor([0, 0, 0, 0, 0, 0, 1, 1, 2])
    classes = torch.tensor([0, 1, 1])
    per = ClusterMarginLoss(1.0, 0.5).per_sample(E, ids, classes).numpy()
    # Class 0 has 6 rows, class 1 has 3: weights 1/6 and 1/3, each class sums to 1.
    w = np.r_[np.full(6, 1 / 6), np.full(3, 1 / 3)]
    cs = ClusterMarginLoss(1.0, 0.5, cost_sensitive=True)(E, ids, classes).item()
    assert cs == pytest.approx((w * per).sum() / w.sum())
    plain = ClusterMarginLoss(1.0, 0.5, cost_sensitive=False)(E, ids, classes).item()
    assert plain == pytest.approx(per.mean())
    sw = torch.arange(1.0, 10.0, dtype=torch.float64)
    weighted = ClusterMarginLoss(1.0, 0.5)(E, ids, classes, sample_weight=sw).item()
    assert weighted == pytest.approx((sw.numpy() * per).sum() / sw.sum().item())
    ones = ClusterMarginLoss(1.0, 0.5, cost_sensitive=False)(
        E, ids, classes, sample_weight=torch.ones(9, dtype=torch.float64)
    ).item()
    assert ones == pytest.approx(plain)


def test_empty_sums_are_absent_not_nan():
    E = unit([[1.0, 0.0], [0.6, 0.8]]).requires_grad_()
    # One cluster: neither term has anything to sum over.
    loss = ClusterMarginLoss(1.0, 1.0)(E, torch.tensor([0, 0]), torch.tensor([0]))
    loss.backward()
    assert loss.item() == 0.0
    assert torch.isfinite(E.grad).all() and (E.grad == 0).all()
    # Two clusters of one class: term1 absent, term2 present and finite.
    E.grad = None
    loss = ClusterMarginLoss(1.0, 1.0)(E, torch.tensor([0, 1]), torch.tensor([0, 0]))
    loss.backward()
    assert loss.item() > 0 and torch.isfinite(E.grad).all()


def test_listed_cluster_without_rows_is_ignored():
    rng = np.random.default_rng(1)
    E = unit(rng.normal(size=(6, 3)))
    ids = torch.tensor([0, 0, 1, 1, 2, 2])
    base = ClusterMarginLoss(0.5, 0.2)(E, ids, torch.tensor([0, 1, 0]))
    extra = ClusterMarginLoss(0.5, 0.2)(E, ids, torch.tensor([0, 1, 0, 1, 0]))
    assert extra.item() == pytest.approx(base.item())


def test_empty_batch_gives_zero_with_grad():
    E = torch.empty(0, 3, requires_grad=True)
    loss = ClusterMarginLoss()(E, torch.empty(0, dtype=torch.long), torch.tensor([0]))
    loss.backward()
    assert loss.item() == 0.0


def test_gradcheck_float64():
    rng = np.random.default_rng(2)
    E = unit(rng.normal(size=(8, 3))).requires_grad_()
    ids = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    classes = torch.tensor([0, 0, 1, 1])
    # Margins large enough that every hinge is active (away from the kink).
    loss = ClusterMarginLoss(a1=3.0, a2=3.0)
    assert torch.autograd.gradcheck(lambda e: loss(e, ids, classes), (E,))
    scaled = ClusterMarginLoss(a1=3.0, a2=3.0, scale=4.0, cost_sensitive=False)
    assert torch.autograd.gradcheck(lambda e: scaled(e, ids, classes), (E,))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_any_float_dtype(dtype):
    rng = np.random.default_rng(3)
    E = unit(rng.normal(size=(6, 4))).to(dtype).requires_grad_()
    loss = ClusterMarginLoss(0.3, 0.1)(E, torch.tensor([0, 0, 1, 1, 2, 2]), torch.tensor([0, 1, 1]))
    loss.backward()
    assert loss.dtype == dtype
    assert torch.isfinite(loss) and torch.isfinite(E.grad).all()


def test_large_scale_approaches_hard_max():
    rng = np.random.default_rng(4)
    E = unit(rng.normal(size=(6, 3)))
    ids, classes = torch.tensor([0, 0, 1, 1, 2, 2]), torch.tensor([0, 1, 1])
    t1, _ = cluster_margin_terms(E, ids, classes, 2.0, 0.0, scale=1e4)
    mus = torch.stack([E[ids == k].mean(0) for k in range(3)])
    s = E @ mus.T
    # Row 0 (class 0): the hard maximum over the class-1 clusters 1 and 2.
    expected = 2.0 - s[0, 0] + s[0, 1:].max()
    assert t1[0].item() == pytest.approx(expected.item(), abs=1e-3)


@pytest.mark.parametrize(
    "args, exc, match",
    [
        ((torch.ones(3), torch.tensor([0, 0, 1]), torch.tensor([0, 1])), ValueError, "embeddings"),
        ((torch.ones(3, 2), torch.tensor([0.0, 0, 1]), torch.tensor([0, 1])), TypeError, "cluster_ids"),
        ((torch.ones(3, 2), torch.tensor([0, 1]), torch.tensor([0, 1])), ValueError, "cluster_ids"),
        ((torch.ones(3, 2), torch.tensor([0, 1, 2]), torch.tensor([0, 1])), ValueError, r"\[0, 2\)"),
        ((torch.ones(3, 2, dtype=torch.long), torch.tensor([0, 1, 1]), torch.tensor([0, 1])), TypeError, "floating"),
    ],
)
def test_bad_inputs(args, exc, match):
    with pytest.raises(exc, match=match):
        ClusterMarginLoss()(*args)


def test_bad_sample_weight():
    with pytest.raises(ValueError, match="sample_weight"):
        ClusterMarginLoss()(
            torch.ones(3, 2), torch.tensor([0, 1, 1]), torch.tensor([0, 1]),
            sample_weight=torch.ones(2),
        )
