"""Choosing each method's hyper-parameters on a validation split.

The pipeline's steps before the classifier (scaling, resampling, the
embedder) are fitted once per setting of their own parameters and reused for
every classifier setting, and for any later method with the same settings
(the kNN ablation reuses the tuned CLMLE embedder): a fitted-prefix cache
keyed by the steps' parameters. Seeded steps make this exactly what a fresh
fit would give.
"""

import itertools
import time

import numpy as np
from sklearn.base import clone
from sklearn.metrics import balanced_accuracy_score


def validation_split(y, fraction, seed):
    """Train/validation indices: about ``fraction`` of each class held out.

    A class of n >= 2 rows gives ``max(1, round(fraction * n))`` rows (at
    most n - 1) to validation; a class of one row stays in training.
    """
    rng = np.random.default_rng(seed)
    val = []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        if idx.size >= 2:
            val.append(idx[: min(idx.size - 1, max(1, round(fraction * idx.size)))])
    val = np.sort(np.concatenate(val))
    return np.setdiff1d(np.arange(y.size), val), val


def _key(tag, steps):
    return tag, str([(name, sorted(step.get_params().items())) for name, step in steps])


def fit_prefix(pipe, X, y, cache, tag):
    """Fitted steps before the classifier, the data they give, the time taken."""
    steps = pipe.steps[:-1]
    key = _key(tag, steps)
    if key not in cache:
        t0 = time.perf_counter()
        fitted = []
        for _, step in steps:
            step = clone(step)
            if hasattr(step, "fit_resample"):
                X, y = step.fit_resample(X, y)
            else:
                X = step.fit_transform(X, y)
            fitted.append(step)
        cache[key] = (fitted, X, y, time.perf_counter() - t0)
    return cache[key]


def transform_prefix(fitted, X):
    """Apply the fitted steps at prediction time (resamplers are skipped)."""
    for step in fitted:
        if not hasattr(step, "fit_resample"):
            X = step.transform(X)
    return X


def tune(pipe, grid, X_train, y_train, X_val, y_val, cache):
    """Grid point with the best validation balanced accuracy (first on ties).

    A grid point whose fit fails (e.g. a learning rate that diverges) scores
    -inf, like ``GridSearchCV(error_score=-inf)``; if all fail, the last
    error is raised.
    """
    prefix_keys = [k for k in grid if not k.startswith("clf__")]
    clf_keys = [k for k in grid if k.startswith("clf__")]
    best, best_score, error = None, -np.inf, None
    for prefix_values in itertools.product(*(grid[k] for k in prefix_keys)):
        prefix_params = dict(zip(prefix_keys, prefix_values))
        candidate = clone(pipe).set_params(**prefix_params)
        try:
            fitted, Xt, yt, _ = fit_prefix(candidate, X_train, y_train, cache, "tune")
        except (FloatingPointError, ValueError) as exc:
            error = exc
            continue
        Xv = transform_prefix(fitted, X_val)
        for clf_values in itertools.product(*(grid[k] for k in clf_keys)):
            clf_params = dict(zip(clf_keys, clf_values))
            clf = clone(candidate.steps[-1][1]).set_params(
                **{k.removeprefix("clf__"): v for k, v in clf_params.items()}
            )
            try:
                score = balanced_accuracy_score(y_val, clf.fit(Xt, yt).predict(Xv))
            except (FloatingPointError, ValueError) as exc:
                error, score = exc, -np.inf
            if score > best_score:
                best, best_score = {**prefix_params, **clf_params}, score
    if best is None:
        raise error
    return best, best_score
