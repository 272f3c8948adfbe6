"""The methods the suite compares, each an imbalanced-learn Pipeline.

Every method is ``StandardScaler -> [resampler] -> model`` with a small grid
of its most important hyper-parameters, chosen by the suite on a validation
split carved from the training part (never on test). The deep methods run on
one engine with the package defaults (``benchmarks/results/engine.md``): the
same backbone, batches of 240 rows, optimiser, schedule, clipping and
augmentation, and the same budget of 180 epochs (the embedders: 30
cross-entropy warm-up + 150 main epochs); each tunes its starting learning
rate over the same two values, and the cluster-based ones also their
classifier's N.
"""

from _resampling import SmallClassSMOTE
from imblearn.ensemble import BalancedRandomForestClassifier
from imblearn.pipeline import Pipeline
from imblearn.under_sampling import RandomUnderSampler
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler

from sklearn_clmle import (
    CLMLEEmbedder,
    CrossEntropyClassifier,
    KNearestClusterClassifier,
    LMLEEmbedder,
)

#: The deep methods tune their starting learning rate (the package default
#: 0.1 and half of it); CLMLE and LMLE also their classifier's N.
LEARNING_RATES = [0.05, 0.1]
DEEP_GRID = {"clf__learning_rate": LEARNING_RATES}
CLMLE_GRID = {"embed__learning_rate": LEARNING_RATES, "clf__n_neighbors": [1, 5]}
NEIGHBORS_GRID = {"clf__n_neighbors": [1, 5]}
FOREST_GRID = {"clf__min_samples_leaf": [1, 3]}

#: Methods derived from the tuned "CLMLE + k-NC": they take its chosen
#: embedder settings (and its N, when ``inherit_clf``), then change one
#: thing. ``name: (changes, inherit_clf)``. The ablations are the CLMLE
#: paper's Table 7 questions plus our cross-entropy term.
DERIVED = {
    "SMOTE + CLMLE + k-NC": ({}, False),
    "CLMLE, paper loss": ({"embed__ce_weight": 0.0}, True),
    "CLMLE, uniform query": ({"embed__query_sampling": "uniform"}, True),
    "CLMLE, no cost-sens.": ({"embed__cost_sensitive": False}, True),
    "CLMLE + kNN": ({}, False),
}


def _pipe(*steps, seed, resampler=None):
    head = [("scale", StandardScaler())]
    if resampler == "smote":
        head.append(("resample", SmallClassSMOTE(random_state=seed)))
    elif resampler == "under":
        head.append(("resample", RandomUnderSampler(random_state=seed)))
    return Pipeline(head + list(steps))


def _deep(task, seed):
    return dict(backbone=task.backbone, backbone_kwargs=task.backbone_kwargs,
                random_state=seed, n_threads=1)


def _clmle(task, seed, resampler=None, classifier=None, embedder=CLMLEEmbedder):
    clf = classifier or KNearestClusterClassifier(random_state=seed)
    return _pipe(("embed", embedder(**_deep(task, seed))), ("clf", clf),
                 seed=seed, resampler=resampler)


def methods(task, seed):
    """``{name: (pipeline, grid)}`` for ``task`` and ``seed``."""
    deep = _deep(task, seed)
    forest = dict(n_estimators=100, random_state=seed, n_jobs=1)
    return {
        "SMOTE + LR": (
            _pipe(("clf", LogisticRegression(max_iter=2000)), seed=seed, resampler="smote"),
            {"clf__C": [0.1, 1.0, 10.0]},
        ),
        "SMOTE + kNN": (
            _pipe(("clf", KNeighborsClassifier()), seed=seed, resampler="smote"),
            {"clf__n_neighbors": [1, 5]},
        ),
        "SMOTE + RF": (
            _pipe(("clf", RandomForestClassifier(**forest)), seed=seed, resampler="smote"),
            FOREST_GRID,
        ),
        "SMOTE + MLP": (
            _pipe(("clf", MLPClassifier((512,), max_iter=300, random_state=seed)),
                  seed=seed, resampler="smote"),
            {"clf__alpha": [1e-4, 1e-2]},
        ),
        "BalancedRF": (
            _pipe(("clf", BalancedRandomForestClassifier(
                sampling_strategy="all", replacement=True, bootstrap=False, **forest)),
                seed=seed),
            FOREST_GRID,
        ),
        "RUS + RF": (
            _pipe(("clf", RandomForestClassifier(**forest)), seed=seed, resampler="under"),
            FOREST_GRID,
        ),
        "CE": (_pipe(("clf", CrossEntropyClassifier(**deep)), seed=seed), DEEP_GRID),
        "weighted CE": (
            _pipe(("clf", CrossEntropyClassifier(class_weight="balanced", **deep)), seed=seed),
            DEEP_GRID,
        ),
        "logit-adj. CE": (
            _pipe(("clf", CrossEntropyClassifier(logit_adjustment=1.0, **deep)), seed=seed),
            DEEP_GRID,
        ),
        "CLMLE + k-NC": (_clmle(task, seed), CLMLE_GRID),
        "LMLE-kNN": (
            _clmle(task, seed, embedder=LMLEEmbedder,
                   classifier=KNearestClusterClassifier(rule="lmle", random_state=seed)),
            CLMLE_GRID,
        ),
        "SMOTE + CLMLE + k-NC": (_clmle(task, seed, resampler="smote"), NEIGHBORS_GRID),
        "CLMLE, paper loss": (_clmle(task, seed), {}),
        "CLMLE, uniform query": (_clmle(task, seed), {}),
        "CLMLE, no cost-sens.": (_clmle(task, seed), {}),
        "CLMLE + kNN": (
            _clmle(task, seed, classifier=KNeighborsClassifier()), NEIGHBORS_GRID
        ),
    }


#: Short labels for the result tables, in the order the columns appear.
SHORT = {
    "SMOTE + LR": "SM+LR",
    "SMOTE + kNN": "SM+kNN",
    "SMOTE + RF": "SM+RF",
    "SMOTE + MLP": "SM+MLP",
    "BalancedRF": "BRF",
    "RUS + RF": "RUS+RF",
    "CE": "CE",
    "weighted CE": "wCE",
    "logit-adj. CE": "LA-CE",
    "CLMLE + k-NC": "CLMLE",
    "LMLE-kNN": "LMLE",
    "SMOTE + CLMLE + k-NC": "SM+CLMLE",
    "CLMLE, paper loss": "abl:paper",
    "CLMLE, uniform query": "abl:unif",
    "CLMLE, no cost-sens.": "abl:noCS",
    "CLMLE + kNN": "abl:kNN",
}
