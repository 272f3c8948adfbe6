"""Out-of-core inference over dask arrays, one block of rows at a time.

This module is imported only on request (``import sklearn_clmle`` never
imports dask); it needs the ``dask`` extra: ``pip install
"sklearn-clmle[dask]"``.

:func:`predict_blocks` applies a fitted estimator's ``predict``,
``predict_proba``, ``transform`` (...) to every block of rows of a
:class:`dask.array.Array`, with the output's shape, chunks and ``meta``
declared correctly, so an array larger than any one machine's (or worker's)
memory is processed block by block, on any dask scheduler. dask-ml's
``ParallelPostFit`` gives the same numbers for ``predict`` and
``predict_proba``, but its lazy ``transform`` declares the *input's* width
(``n_features``) rather than ``embedding_dim``, so the lazy array's shape
and chunks are wrong until it is computed.
"""

import numbers

import numpy as np
from sklearn.utils.validation import check_is_fitted

__all__ = ["predict_blocks"]

#: Row-wise methods that :func:`predict_blocks` can map over blocks.
METHODS = ("predict", "predict_proba", "predict_log_proba", "decision_function",
           "transform", "score_samples")


def _import_dask_array():
    try:
        import dask.array as da
    except ImportError as exc:  # pragma: no cover - the extra is not installed
        raise ImportError(
            "sklearn_clmle.dask needs dask: pip install 'sklearn-clmle[dask]'"
        ) from exc
    return da


def _as_rows(out, n_rows):
    """One array of rows: a list of per-output arrays is joined column-wise."""
    if isinstance(out, (list, tuple)):  # multi-label predict_proba: one per label
        return np.concatenate([np.asarray(o).reshape(n_rows, -1) for o in out], axis=1)
    return np.asarray(out)


def _apply(block, estimator, method):
    """Run ``estimator.method`` on one block of rows (runs on a worker)."""
    return _as_rows(getattr(estimator, method)(block), len(block))


def predict_blocks(estimator, X, method="predict"):
    """Apply a fitted estimator's row-wise method to a dask array, lazily.

    Each block of rows of ``X`` goes through ``getattr(estimator, method)``
    on its own, so the whole array never has to fit in memory: peak memory
    per worker is about one block (plus the model), whatever the number of
    rows. The estimator is put once into the task graph (a single key,
    shipped once to each worker that needs it), not once per block.

    Parameters
    ----------
    estimator : fitted estimator
        Any fitted scikit-learn estimator or ``Pipeline`` (e.g. a
        ``CLMLEEmbedder``, a ``KNearestClusterClassifier``, a
        ``CrossEntropyClassifier``, or a pipeline of an embedder and k-NC).
    X : dask.array.Array of shape (n_samples, n_features)
        The rows. Blocks split along the columns are joined first (each block
        must hold whole rows); unknown row-chunk sizes (``nan``) are allowed.
    method : {"predict", "predict_proba", "predict_log_proba", \
"decision_function", "transform", "score_samples"}, default="predict"
        The method to apply.

    Returns
    -------
    result : dask.array.Array or list of dask.array.Array
        Lazy, with the row chunks of ``X``: shape ``(n_samples,)`` when the
        method returns one value per row (``predict``), else
        ``(n_samples, n_outputs)`` in one column chunk (``n_classes`` for
        ``predict_proba``, ``embedding_dim`` for an embedder's
        ``transform``). Its dtype and ``meta`` are those of the method's
        output, found by running the method on one row of zeros.
        Where the method returns a list of arrays (``predict_proba`` of a
        multi-label estimator: one ``(n_samples, 2)`` array per label), a
        list of such lazy arrays, slices of one mapped array: compute them
        together (``dask.compute(*result)``) so each block runs once.

    Raises
    ------
    ValueError
        If ``method`` is not one of the names above or ``estimator`` has no
        such method, or ``X`` is not 2-D or has an unknown number of columns.
    TypeError
        If ``X`` is not a dask array.
    sklearn.exceptions.NotFittedError
        If ``estimator`` is not fitted.

    Examples
    --------
    >>> import dask.array as da
    >>> from sklearn.datasets import make_classification
    >>> from sklearn_clmle import CLMLEEmbedder
    >>> from sklearn_clmle.dask import predict_blocks
    >>> X, y = make_classification(100, n_features=6, random_state=0)
    >>> emb = CLMLEEmbedder(embedding_dim=4, n_rounds=1, iterations_per_round=2,
    ...                     warmup_iterations=2, random_state=0,
    ...                     n_threads=1).fit(X, y)
    >>> Z = predict_blocks(emb, da.from_array(X, chunks=25), method="transform")
    >>> Z.shape, Z.chunks
    ((100, 4), ((25, 25, 25, 25), (4,)))
    >>> bool(abs(Z.compute() - emb.transform(X)).max() < 1e-6)
    True
    """
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(
            f"method must be one of {', '.join(map(repr, METHODS))}; got {method!r}."
        )
    da = _import_dask_array()
    if not isinstance(X, da.Array):
        raise TypeError(
            "X must be a dask.array.Array (wrap a NumPy array with "
            f"dask.array.from_array); got {type(X).__name__}."
        )
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_features); got {X.ndim}-D.")
    if not isinstance(X.shape[1], numbers.Integral):
        raise ValueError("X has an unknown number of columns; call X.compute_chunk_sizes().")
    if not hasattr(estimator, method):
        raise ValueError(
            f"method={method!r} is not available on {type(estimator).__name__}."
        )
    check_is_fitted(estimator)
    if X.numblocks[1] != 1:
        X = X.rechunk({1: -1})
    raw = getattr(estimator, method)(np.zeros((1, X.shape[1]), dtype=X.dtype))
    probe = _as_rows(raw, 1)
    meta = probe[:0]
    import dask

    # One graph key for the model (not a copy inside every block's task);
    # pure=False skips hashing the whole model.
    model = dask.delayed(estimator, pure=False, traverse=False)
    if probe.ndim == 1:
        return X.map_blocks(_apply, model, method, drop_axis=1, dtype=probe.dtype,
                            meta=meta, chunks=(X.chunks[0],))
    if probe.ndim == 2:
        out = X.map_blocks(_apply, model, method, dtype=probe.dtype, meta=meta,
                           chunks=(X.chunks[0], (probe.shape[1],)))
        if not isinstance(raw, (list, tuple)):
            return out
        parts, start = [], 0  # the per-output arrays back, as column slices
        for part in map(np.asarray, raw):  # the probe: one row each
            width = part.size
            parts.append(out[:, start] if part.ndim == 1
                         else out[:, start:start + width])
            start += width
        return parts
    raise ValueError(  # pragma: no cover - no estimator here returns 3-D rows
        f"{type(estimator).__name__}.{method} returned a {probe.ndim}-D array; "
        "only 1-D and 2-D outputs can be mapped over blocks of rows."
    )
