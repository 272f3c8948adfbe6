"""The training engine: budgets in epochs, schedules, early stopping, augmentation,
the validation split and progress output."""

import logging
import math

import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification

from sklearn_clmle import CLMLEEmbedder, CrossEntropyClassifier, LMLEEmbedder
from sklearn_clmle._engine import Phase, run_phase
from sklearn_clmle._holdout import train_validation_split
from sklearn_clmle._schedules import LearningRateSchedule
from sklearn_clmle._settings import AUTO_LEARNING_RATE, TrainSettings
from sklearn_clmle.augment import HorizontalFlip, RandomShift

SMALL = dict(embedding_dim=4, backbone_kwargs={"hidden_layer_sizes": (8,)},
             random_state=0, n_threads=1)
EMBEDDER_SMALL = dict(SMALL, n_rounds=2, max_epochs=4, warmup_epochs=2)


def _settings(**kw):
    base = dict(batch_size=10, max_epochs=5, max_steps=None, warmup_epochs=0,
                warmup_steps=None, n_rounds=1, optimizer="sgd", learning_rate=0.1,
                momentum=0.0, weight_decay=0.0, lr_schedule="constant",
                max_grad_norm=None, early_stopping=True, validation_fraction=0.1,
                n_iter_no_change=2, tol=0.0, augment=None, ce_loss="plain", ce_input="features",
                ce_weight=0.0, cost_sensitive=False, inference_batch_size=100,
                verbose=0)
    return TrainSettings(**{**base, **kw})


def _toy_phase(scores, settings, snapshots):
    """A phase whose validation scores are scripted; weights change every step."""
    module = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(module.parameters(), lr=0.1)
    x = torch.randn(8, 2, generator=torch.Generator().manual_seed(0))

    def step():
        loss = module(x).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.detach(), None

    it = iter(scores)

    def validate():
        snapshots.append({k: v.clone() for k, v in module.state_dict().items()})
        return next(it)

    phase = Phase("train", step, total_steps=3 * len(scores), steps_per_epoch=3,
                  validate=validate, early_stopping=settings.early_stopping)
    return module, opt, phase


def test_early_stopping_stops_and_restores_the_best_epoch():
    settings = _settings(n_iter_no_change=2)
    snapshots, history = [], []
    module, opt, phase = _toy_phase([0.1, 0.5, 0.3, 0.2, 0.9, 0.9], settings, snapshots)
    result = run_phase(phase, opt, [module], settings, history)
    # Epoch 2 is best; epochs 3 and 4 do not improve: stop after epoch 4.
    assert result.epochs == 4 and result.best_epoch == 2 and len(history) == 4
    for k, v in module.state_dict().items():
        torch.testing.assert_close(v, snapshots[1][k])
    assert not torch.equal(module.weight, snapshots[3]["weight"])
    assert [row["val_score"] for row in history] == [0.1, 0.5, 0.3, 0.2]


def test_tol_counts_small_gains_as_no_improvement():
    settings = _settings(n_iter_no_change=2, tol=0.1)
    snapshots, history = [], []
    module, opt, phase = _toy_phase([0.5, 0.55, 0.58, 0.9], settings, snapshots)
    result = run_phase(phase, opt, [module], settings, history)
    assert result.epochs == 3 and result.best_epoch == 1


def test_without_early_stopping_the_last_weights_are_kept():
    settings = _settings(early_stopping=False)
    snapshots, history = [], []
    module, opt, phase = _toy_phase([0.9, 0.1, 0.1, 0.1], settings, snapshots)
    result = run_phase(phase, opt, [module], settings, history)
    assert result.epochs == 4
    torch.testing.assert_close(module.weight, snapshots[-1]["weight"])


def test_cosine_schedule_sequence():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.2)
    sched = LearningRateSchedule(opt, "cosine", total_steps=10)
    seen = []
    for t in range(10):
        sched.before_step(t)
        seen.append(opt.param_groups[0]["lr"])
    expected = [0.2 * 0.5 * (1 + math.cos(math.pi * t / 10)) for t in range(10)]
    np.testing.assert_allclose(seen, expected)


def test_plateau_schedule_divides_by_ten_after_patience():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = LearningRateSchedule(opt, "plateau", total_steps=100, patience=2)
    rates = []
    for score in [0.1, 0.2, 0.2, 0.2, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3]:
        sched.after_epoch(score)
        sched.before_step(0)
        rates.append(opt.param_groups[0]["lr"])
    # Two stale epochs -> /10; again; again; then never more than 3 times.
    np.testing.assert_allclose(
        rates, [1, 1, 1, 0.1, 0.1, 0.1, 0.01, 0.01, 0.001, 0.001, 0.001, 0.001]
    )


@pytest.mark.parametrize("kind", ["constant", "cosine", "plateau"])
def test_history_records_the_schedule(kind):
    X, y = make_classification(240, n_features=6, random_state=0)
    clf = CrossEntropyClassifier(max_epochs=6, batch_size=40, lr_schedule=kind,
                                 learning_rate=0.1, **SMALL).fit(X, y)
    rates = [row["learning_rate"] for row in clf.history_]
    assert len(rates) == 6 and clf.n_steps_ == 36
    if kind == "cosine":
        np.testing.assert_allclose(
            rates, [0.1 * 0.5 * (1 + math.cos(math.pi * 6 * e / 36)) for e in range(6)]
        )
    else:
        assert rates[0] == 0.1 and all(r <= 0.1 for r in rates)
        if kind == "constant":
            assert set(rates) == {0.1}


@pytest.mark.parametrize("factory", [
    lambda: CrossEntropyClassifier(max_epochs=3, batch_size=30, **SMALL),
    lambda: CLMLEEmbedder(**{**EMBEDDER_SMALL, "max_epochs": 3, "warmup_epochs": 1,
                             "clusters_per_batch": 3, "samples_per_cluster": 10}),
    lambda: LMLEEmbedder(**{**EMBEDDER_SMALL, "max_epochs": 3, "warmup_epochs": 1,
                            "batch_size": 30}),
])
def test_ten_times_the_data_gets_ten_times_the_steps(factory):
    X, y = make_classification(600, n_features=6, random_state=0)
    small = factory().fit(X[:60], y[:60])
    large = factory().fit(X, y)
    assert large.n_steps_ == 10 * small.n_steps_
    warm = [sum(r["steps"] for r in est.history_ if r["phase"] == "warmup")
            for est in (small, large)]
    assert warm[1] == 10 * warm[0]


def test_iteration_level_control_overrides_epochs():
    X, y = make_classification(300, n_features=6, random_state=0)
    emb = CLMLEEmbedder(**{**EMBEDDER_SMALL, "iterations_per_round": 7,
                           "warmup_iterations": 5}).fit(X, y)
    assert emb.n_steps_ == 14 and emb.n_iter_ == 2
    assert sum(r["steps"] for r in emb.history_ if r["phase"] == "warmup") == 5
    clf = CrossEntropyClassifier(max_iter=13, **SMALL).fit(X, y)
    assert clf.n_steps_ == 13


class RecordingAugment:
    """Adds noise; counts its calls and the batch shapes it saw."""

    def __init__(self):
        self.shapes = []

    def __call__(self, batch, generator):
        self.shapes.append(tuple(batch.shape))
        return batch + 0.01 * torch.randn(batch.shape, generator=generator,
                                          device=batch.device)


@pytest.mark.parametrize("make", [
    lambda aug: CLMLEEmbedder(augment=aug, **EMBEDDER_SMALL),
    lambda aug: CrossEntropyClassifier(augment=aug, max_epochs=3, **SMALL),
])
def test_augment_runs_in_training_only(make):
    X, y = make_classification(200, n_features=6, random_state=0)
    aug = RecordingAugment()
    est = make(aug).fit(X, y)
    n_train_steps = sum(row["steps"] for row in est.history_)
    assert len(aug.shapes) == n_train_steps and all(s[1] == 6 for s in aug.shapes)
    before = len(aug.shapes)
    out = est.transform(X) if hasattr(est, "transform") else est.predict_proba(X)
    assert len(aug.shapes) == before and np.isfinite(out).all()
    # Seeded: the same fit twice gives the same model.
    again = make(RecordingAugment()).fit(X, y)
    a = est.transform(X) if hasattr(est, "transform") else est.predict_proba(X)
    b = again.transform(X) if hasattr(again, "transform") else again.predict_proba(X)
    np.testing.assert_array_equal(a, b)


def test_augment_that_changes_the_shape_is_a_clear_error():
    X, y = make_classification(100, n_features=6, random_state=0)
    with pytest.raises(ValueError, match=r"augment must return a tensor of the batch's shape"):
        CrossEntropyClassifier(augment=lambda b, g: b[:, :3], max_epochs=1, **SMALL).fit(X, y)
    with pytest.raises(ValueError, match=r"augment must return a tensor"):
        CLMLEEmbedder(augment=lambda b, g: b.numpy(), **EMBEDDER_SMALL).fit(X, y)


def test_builtin_augmentations():
    g = torch.Generator().manual_seed(0)
    flip = HorizontalFlip((2, 3), p=1.0)
    batch = torch.arange(12.0).reshape(2, 6)
    np.testing.assert_array_equal(
        flip(batch, g).numpy(),
        batch.reshape(2, 2, 3).flip(-1).reshape(2, 6).numpy(),
    )
    assert torch.equal(HorizontalFlip((2, 3), p=0.0)(batch, g), batch)
    shift = RandomShift(max_shift=2)
    signals = torch.arange(1.0, 11.0).repeat(50, 1)
    out = shift(signals, g)
    assert out.shape == signals.shape
    for row in out:
        # A shifted copy of 1..10 with zeros filling what moved in.
        nz = row[row != 0]
        assert torch.equal(nz, torch.arange(nz[0].item(), nz[0].item() + nz.numel()))
    assert len({tuple(r.tolist()) for r in out}) > 1


def test_augment_auto_picks_the_backbone_builtin():
    from sklearn_clmle.augment import resolve_augment
    from sklearn_clmle.backbones import CNN1D, CNN2D, MLP

    assert isinstance(resolve_augment("auto", CNN2D(64, 4)), HorizontalFlip)
    assert isinstance(resolve_augment("auto", CNN1D(40, 4)), RandomShift)
    assert resolve_augment("auto", MLP(5, 4)) is None
    X, y = make_classification(120, n_features=64, random_state=0)
    CLMLEEmbedder(**{**EMBEDDER_SMALL, "backbone": "cnn2d", "backbone_kwargs": None,
                     "augment": "auto"}).fit(X, y)


def test_validation_split_keeps_tiny_classes_in_training():
    y = np.array([0] * 50 + [1] * 20 + [2] * 2 + [3])
    with pytest.warns(UserWarning, match=r"class\(es\) c, d have fewer than 3 rows"):
        train, val = train_validation_split(y, 0.2, np.random.default_rng(0),
                                            classes=np.array(list("abcd")))
    assert set(y[train]) == {0, 1, 2, 3}
    assert np.bincount(y[val], minlength=4).tolist() == [10, 4, 0, 0]
    assert np.intersect1d(train, val).size == 0 and train.size + val.size == y.size


@pytest.mark.parametrize("make", [
    lambda: CLMLEEmbedder(early_stopping=True, **EMBEDDER_SMALL),
    lambda: CrossEntropyClassifier(early_stopping=True, max_epochs=4, **SMALL),
])
def test_early_stopping_fit_warns_and_keeps_the_rare_class(make):
    X, y = make_classification(200, n_features=6, n_classes=3, n_informative=4,
                               weights=[0.6, 0.39, 0.01], random_state=0)
    y[:200] = np.where(np.arange(200) < 2, 2, np.where(y == 2, 0, y))
    assert np.sum(y == 2) == 2
    with pytest.warns(UserWarning, match=r"class\(es\) 2 have fewer than 3 rows"):
        est = make().fit(X, y)
    assert est.best_epoch_ is not None
    assert all(np.isfinite(row["val_score"]) for row in est.history_
               if row["phase"] == "train")
    if hasattr(est, "cluster_classes_"):
        assert 2 in est.cluster_classes_ and est.cluster_labels_.shape == (200,)


def test_embedder_early_stopping_scores_by_the_cluster_rule():
    X, y = make_classification(300, n_features=8, n_informative=5, n_classes=3,
                               random_state=0)
    emb = CLMLEEmbedder(early_stopping=True, n_iter_no_change=3,
                        **{**EMBEDDER_SMALL, "max_epochs": 40}).fit(X, y)
    scores = [row["val_score"] for row in emb.history_ if row["phase"] == "train"]
    assert emb.n_iter_ == len(scores) <= 40
    assert 0.0 <= min(scores) and max(scores) <= 1.0
    best = emb.best_epoch_ - emb.history_[0]["epoch"]
    assert emb.history_[best]["val_score"] == max(scores)
    if emb.n_iter_ < 40:  # stopped: the last n_iter_no_change epochs did not improve
        assert all(s <= max(scores) for s in scores[-3:])


def test_verbose_logs_one_line_per_epoch(caplog):
    X, y = make_classification(120, n_features=6, random_state=0)
    with caplog.at_level(logging.INFO, logger="sklearn_clmle"):
        CrossEntropyClassifier(max_epochs=3, verbose=1, learning_rate=0.05,
                               **SMALL).fit(X, y)
    lines = [r.getMessage() for r in caplog.records if "epoch" in r.getMessage()]
    assert len(lines) == 3
    assert lines[0].startswith("cross-entropy epoch 1/3: loss ")
    assert "validation nan" in lines[0] and "lr 0.05" in lines[0]
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="sklearn_clmle"):
        CrossEntropyClassifier(max_epochs=3, **SMALL).fit(X, y)
    assert not caplog.records


@pytest.mark.parametrize("optimizer, cls", [("sgd", torch.optim.SGD),
                                            ("adamw", torch.optim.AdamW)])
def test_optimizers(optimizer, cls, monkeypatch):
    seen = []
    original = TrainSettings.make_optimizer

    def spy(self, params, learning_rate=None):
        opt = original(self, params, learning_rate)
        seen.append(opt)
        return opt

    monkeypatch.setattr(TrainSettings, "make_optimizer", spy)
    X, y = make_classification(120, n_features=6, random_state=0)
    CrossEntropyClassifier(optimizer=optimizer, max_epochs=2, **SMALL).fit(X, y)
    assert isinstance(seen[0], cls)
    expected = AUTO_LEARNING_RATE[optimizer]
    assert seen[0].defaults["lr"] == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("make", [
    lambda: CLMLEEmbedder(early_stopping=True, **EMBEDDER_SMALL),
    lambda: CrossEntropyClassifier(early_stopping=True, max_epochs=4, **SMALL),
])
def test_new_attributes_survive_save_and_load(make, tmp_path):
    from sklearn_clmle import load, save

    X, y = make_classification(200, n_features=6, random_state=0)
    est = make().fit(X, y)
    save(est, tmp_path / "model.zip")
    back = load(tmp_path / "model.zip")
    assert back.best_epoch_ == est.best_epoch_ and back.n_steps_ == est.n_steps_
    assert len(back.history_) == len(est.history_)
    for a, b in zip(back.history_, est.history_):
        assert a.keys() == b.keys()
        np.testing.assert_array_equal([a[k] for k in a if k != "phase"],
                                      [b[k] for k in b if k != "phase"])
    if hasattr(est, "validation_scores_"):
        np.testing.assert_array_equal(back.validation_scores_, est.validation_scores_)
        np.testing.assert_array_equal(back.predict(X), est.predict(X))
    else:
        np.testing.assert_array_equal(back.transform(X), est.transform(X))
