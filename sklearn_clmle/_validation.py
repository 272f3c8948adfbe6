"""Input checks shared by the estimators."""

import contextlib

import numpy as np
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import _check_sample_weight, check_array, validate_data


def is_multi_output(y):
    """True when ``y`` is a 2-D target of more than one column (array or lists)."""
    shape = getattr(y, "shape", None)
    if shape is None:
        return (isinstance(y, (list, tuple)) and len(y) > 0 and np.ndim(y[0]) == 1
                and len(y[0]) > 1)
    return len(shape) == 2 and shape[1] > 1


def check_multilabel_target(Y, owner):
    """A multi-label ``Y`` as an int64 0/1 matrix, and its column names.

    Every column must hold both 0 and 1 (one binary attribute each); the
    names are the columns of a DataFrame, else ``"y0", "y1", ...``.
    """
    columns = getattr(Y, "columns", None)
    Y = check_array(Y, dtype=None, input_name="y", ensure_all_finite=True)
    if Y.dtype.kind not in "biuf":
        raise ValueError(
            f"{owner} takes a multi-label y as a binary indicator matrix of 0s and "
            f"1s, shape (n_samples, n_labels); got values of dtype {Y.dtype}."
        )
    for j in range(Y.shape[1]):
        values = np.unique(Y[:, j])
        if not np.isin(values, (0, 1)).all():
            raise ValueError(
                f"{owner} takes a multi-label y as a binary indicator matrix of 0s "
                f"and 1s (one column per binary label); column {j} holds "
                f"{values[:6].tolist()}. Multiclass-multioutput targets are not "
                "supported: fit one estimator per output."
            )
        if values.size < 2:
            label = f" ({columns[j]!r})" if columns is not None else ""
            raise ValueError(
                f"Column {j}{label} of the multi-label y has the single value "
                f"{int(values[0])}: a label needs positive and negative rows to "
                "learn from. Drop that column."
            )
    names = ([str(c) for c in columns] if columns is not None
             else [f"y{j}" for j in range(Y.shape[1])])
    return Y.astype(np.int64), np.asarray(names, dtype=object)


def check_single_label(y, owner):
    """Reject multi-label / multi-output targets with a clear message."""
    # Only 2-D targets can be multi-label; everything else (None, 1-D, NaN)
    # gets validate_data's standard errors.
    shape = getattr(y, "shape", None)
    if shape is None:
        if not (isinstance(y, (list, tuple)) and len(y) and np.ndim(y[0]) == 1):
            return
    elif len(shape) != 2 or shape[1] == 1:
        return
    kind = type_of_target(y)
    if kind in ("multilabel-indicator", "multiclass-multioutput"):
        raise ValueError(
            f"{owner} supports single-label targets only; got a {kind} y. "
            "Fit one estimator per label instead (CLMLEEmbedder, "
            "KNearestClusterClassifier and CrossEntropyClassifier take "
            "multi-label indicator targets)."
        )


def check_class_targets(y, owner):
    """Classification targets with at least two classes."""
    check_classification_targets(y)
    if np.unique(y).size < 2:
        raise ValueError(
            f"{owner} needs at least 2 classes in y; got 1 class. The cluster "
            "margins separate classes, so one class has nothing to learn."
        )


_NOT_NUMERIC = ("could not convert", "Complex data not supported")


def validate_numeric(estimator, X, y="no_validation", **kwargs):
    """scikit-learn's ``validate_data``, with a clearer error for non-numeric X.

    String, object or complex columns raise a ``ValueError`` that names ``X``
    and says what to do, instead of NumPy's bare conversion message.
    """
    try:
        return validate_data(estimator, X, y, **kwargs)
    except ValueError as exc:
        if not any(m in str(exc) for m in _NOT_NUMERIC):
            raise
        first_line = str(exc).splitlines()[0]
        raise ValueError(
            f"{type(estimator).__name__} needs X of real numbers; got values that "
            f"cannot be cast to float ({first_line}). Encode string or categorical "
            "columns first, e.g. with sklearn.preprocessing.OneHotEncoder."
        ) from exc


def check_sample_weight(sample_weight, X):
    """``None``, or float32 weights of shape (n_samples,): finite, >= 0, not all 0."""
    if sample_weight is None:
        return None
    sample_weight = _check_sample_weight(
        sample_weight, X, dtype=np.float64, ensure_non_negative=True
    )
    if not np.all(np.isfinite(sample_weight)):
        raise ValueError("sample_weight contains NaN or infinity; expected finite weights.")
    return sample_weight.astype(np.float32)


_INPUT_ATTRIBUTES = ("n_features_in_", "feature_names_in_")


@contextlib.contextmanager
def keep_fitted_state_on_failure(estimator):
    """Undo ``validate_data``'s early update of the input attributes if fit fails.

    ``validate_data(reset=True)`` sets ``n_features_in_`` and
    ``feature_names_in_`` before training starts; when ``fit`` then raises (or
    is interrupted), they are put back so that a previously fitted estimator
    stays consistent, never half-updated.
    """
    saved = {a: estimator.__dict__[a] for a in _INPUT_ATTRIBUTES if a in estimator.__dict__}
    try:
        yield
    except BaseException:
        for a in _INPUT_ATTRIBUTES:
            if a in saved:
                setattr(estimator, a, saved[a])
            else:
                estimator.__dict__.pop(a, None)
        raise
