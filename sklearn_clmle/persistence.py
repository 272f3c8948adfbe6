"""Save and load estimators in a file format that runs no code when loaded.

Pickle (and joblib) files can run arbitrary code when loaded, so they must
come from a trusted source. :func:`save` writes one zip archive instead:

- ``meta.json``: format version, class name, the sklearn_clmle, torch,
  numpy and scikit-learn versions, and whether the backbone was custom;
- ``params.json``: ``get_params(deep=False)``;
- ``attributes.json``: the fitted attributes (see :mod:`sklearn_clmle._codec`);
- ``arrays.npz``: their numeric, boolean and unicode arrays, read with
  ``allow_pickle=False``;
- ``weights.pt``: the state dicts of the torch modules, read with
  ``torch.load(weights_only=True)`` and checked to hold tensors only.

:func:`load` rebuilds only the three estimators of this package, and their
modules from the parameters; a custom backbone (a module or a factory) is
code, so it is never stored: pass it again to :func:`load`.
"""

import io
import json
import os
import pickle
import warnings
import zipfile

import numpy as np
import sklearn
import torch
from sklearn.utils._metadata_requests import SIMPLE_METHODS

from sklearn_clmle._classifier import KNearestClusterClassifier
from sklearn_clmle._codec import ARRAY_KINDS, Encoder, decode
from sklearn_clmle._cross_entropy import CrossEntropyClassifier
from sklearn_clmle._embedder import CLMLEEmbedder
from sklearn_clmle._lmle import LMLEEmbedder
from sklearn_clmle._versioning import package_version, warn_if_other_version

__all__ = ["FORMAT_VERSION", "load", "save"]

#: Version of the file layout; :func:`load` reads this version only.
FORMAT_VERSION = 1
_FORMAT_NAME = "sklearn_clmle"
#: The only classes :func:`load` builds, by name.
_CLASSES = {
    cls.__name__: cls
    for cls in (CLMLEEmbedder, CrossEntropyClassifier, KNearestClusterClassifier,
                LMLEEmbedder)
}
_MEMBERS = ("meta.json", "params.json", "attributes.json", "arrays.npz", "weights.pt")
_REQUESTS = "_metadata_request"


def save(estimator, path):
    """Write ``estimator`` to ``path`` in the safe sklearn_clmle format.

    Parameters
    ----------
    estimator : CLMLEEmbedder, LMLEEmbedder, CrossEntropyClassifier or
        KNearestClusterClassifier
        Fitted or not. Its modules are stored on the CPU.
    path : str, path-like or binary file object
        Destination; an existing file is replaced.

    Raises
    ------
    TypeError
        If ``estimator`` is of another class, or a parameter or attribute
        holds a value the format cannot store (the message names it).

    Warns
    -----
    UserWarning
        When ``random_state`` is a ``RandomState`` or ``Generator``: it is
        stored as None (only refitting uses it).

    See Also
    --------
    load : Read the file back.

    Notes
    -----
    A custom backbone (a ``torch.nn.Module`` or a factory) is not stored,
    only its class or function name; :func:`load` needs it again.

    Examples
    --------
    >>> import os, tempfile
    >>> from sklearn.datasets import make_classification
    >>> from sklearn_clmle import KNearestClusterClassifier, load, save
    >>> X, y = make_classification(200, n_features=6, random_state=0)
    >>> clf = KNearestClusterClassifier(cluster_size=10).fit(X, y)
    >>> path = os.path.join(tempfile.mkdtemp(), "knc.zip")
    >>> save(clf, path)
    >>> bool((load(path).predict(X) == clf.predict(X)).all())
    True
    """
    cls = type(estimator)
    if _CLASSES.get(cls.__name__) is not cls:
        raise TypeError(
            f"save supports {sorted(_CLASSES)}; got {cls.__module__}.{cls.__qualname__}."
        )
    params = estimator.get_params(deep=False)
    custom = None
    if "backbone" in params and not isinstance(params["backbone"], str):
        custom = _describe(params["backbone"])
        params["backbone"] = None
    if isinstance(params.get("random_state"), (np.random.RandomState, np.random.Generator)):
        warnings.warn(
            f"{cls.__name__}.random_state is a {type(params['random_state']).__name__} "
            "instance, which is saved as None; predictions are unaffected, only "
            "refitting the loaded estimator is no longer seeded.",
            UserWarning, stacklevel=2,
        )
        params["random_state"] = None
    encoder = Encoder()
    params_json = {k: encoder.encode(v, f"parameter {k!r}") for k, v in params.items()}
    attributes, weights = {}, {}
    for name, value in vars(estimator).items():
        if name in params:
            continue
        if isinstance(value, torch.nn.Module):
            weights[name] = _cpu_state_dict(value)
            attributes[name] = {"__module__": name}
        elif name == _REQUESTS:
            attributes[name] = value._serialize()
        else:
            attributes[name] = encoder.encode(value, f"attribute {name!r}")
    meta = {
        "format": _FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "class": cls.__name__,
        "sklearn_clmle_version": package_version(),
        "custom_backbone": custom,
        "torch_version": torch.__version__,
        "numpy_version": np.__version__,
        "sklearn_version": sklearn.__version__,
    }
    arrays, weights_pt = io.BytesIO(), io.BytesIO()
    np.savez(arrays, **encoder.arrays)
    torch.save(weights, weights_pt)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("meta.json", json.dumps(meta, indent=1))
        archive.writestr("params.json", json.dumps(params_json))
        archive.writestr("attributes.json", json.dumps(attributes))
        archive.writestr("arrays.npz", arrays.getvalue())
        archive.writestr("weights.pt", weights_pt.getvalue())


def load(path, *, backbone=None):
    """Read an estimator written by :func:`save`; no code in the file runs.

    Parameters
    ----------
    path : str, path-like or binary file object
        A file written by :func:`save`.
    backbone : torch.nn.Module or callable, default=None
        Required when the estimator was saved with a custom backbone: the
        same module (or factory) as at fit time; the loaded estimator's
        ``backbone`` parameter is set to it. Must be None otherwise.

    Returns
    -------
    estimator : CLMLEEmbedder, LMLEEmbedder, CrossEntropyClassifier or
        KNearestClusterClassifier
        With the saved parameters and fitted attributes; its modules are on
        the CPU, in eval mode. ``device_`` is kept as saved.

    Raises
    ------
    ValueError
        If the file is not a valid sklearn_clmle model file (not an archive,
        a member missing or malformed, a pickle with anything but tensors,
        weights not matching the architecture), has another format version
        or class, or ``backbone`` is missing or not expected.

    Warns
    -----
    InconsistentVersionWarning
        When the file was saved by another sklearn_clmle version.

    See Also
    --------
    save : Write the file.

    Examples
    --------
    >>> import os, tempfile
    >>> from sklearn.datasets import make_classification
    >>> from sklearn_clmle import CLMLEEmbedder, load, save
    >>> X, y = make_classification(200, n_features=6, random_state=0)
    >>> emb = CLMLEEmbedder(embedding_dim=4, n_rounds=1, iterations_per_round=5,
    ...                     warmup_iterations=5, random_state=0).fit(X, y)
    >>> path = os.path.join(tempfile.mkdtemp(), "embedder.zip")
    >>> save(emb, path)
    >>> bool((load(path).transform(X) == emb.transform(X)).all())
    True
    """
    with _invalid_file(path):
        members = _read_members(path)
        meta = _expect(json.loads(members["meta.json"]), dict)
        if meta.get("format") != _FORMAT_NAME:
            raise ValueError("meta.json does not describe an sklearn_clmle model")
        version = _expect(meta["sklearn_clmle_version"], str)
        custom = meta.get("custom_backbone")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{_name(path)} has format version {meta.get('format_version')!r}; this "
            f"sklearn_clmle ({package_version()}) reads format version "
            f"{FORMAT_VERSION} only. Load it with the sklearn_clmle version that "
            f"saved it ({version}) and refit or re-save."
        )
    cls = _CLASSES.get(meta.get("class"))
    if cls is None:
        raise ValueError(
            f"{_name(path)} holds a {meta.get('class')!r}; load builds only "
            f"{sorted(_CLASSES)}."
        )
    warn_if_other_version(cls.__name__, version)
    _check_backbone(custom, backbone, cls)
    with _invalid_file(path):
        estimator = _restore(cls, members, backbone if custom else None)
    return estimator


def _restore(cls, members, backbone):
    with np.load(io.BytesIO(members["arrays.npz"]), allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    for name, array in arrays.items():
        if array.dtype.kind not in ARRAY_KINDS:
            raise ValueError(f"array {name!r} has unsupported dtype {array.dtype}")
    weights = _tensor_dicts(torch.load(
        io.BytesIO(members["weights.pt"]), map_location="cpu", weights_only=True
    ))
    params = decode(_expect(json.loads(members["params.json"]), dict), arrays, {})
    if backbone is not None:
        params["backbone"] = backbone
    estimator = cls(**params)
    attributes = _expect(json.loads(members["attributes.json"]), dict)
    module_names = {k for k, v in attributes.items() if v == {"__module__": k}}
    requests = attributes.pop(_REQUESTS, None)
    for name, value in attributes.items():
        if name in params or not name.isidentifier() or name.startswith("__"):
            raise ValueError(f"{name!r} is not a valid attribute name")
        if name not in module_names:
            setattr(estimator, name, decode(value, arrays, {}))
    if requests is not None:
        _restore_requests(estimator, _expect(requests, dict))
    modules = estimator._rebuild_modules() if hasattr(estimator, "_rebuild_modules") else {}
    if not set(modules) == module_names == set(weights):
        raise ValueError(
            f"modules {sorted(module_names)} and weights {sorted(weights)} do not "
            f"match the estimator's {sorted(modules)}"
        )
    for name, module in modules.items():
        module.load_state_dict(weights[name], strict=True)
        setattr(estimator, name, module.eval())
    return estimator


def _read_members(path):
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in _MEMBERS}


def _tensor_dicts(weights):
    """Check that ``weights`` maps names to state dicts of tensors only."""
    for name, state in _expect(weights, dict).items():
        _expect(name, str)
        for key, tensor in _expect(state, dict).items():
            if not isinstance(key, str) or not isinstance(tensor, torch.Tensor):
                raise ValueError(f"weights of {name!r} hold a non-tensor entry {key!r}")
    return weights


def _cpu_state_dict(module):
    state = module.state_dict()
    cpu = type(state)((k, v.detach().cpu()) for k, v in state.items())
    if hasattr(state, "_metadata"):
        cpu._metadata = state._metadata
    return cpu


def _restore_requests(estimator, requests):
    """Re-apply ``set_{method}_request`` calls (metadata routing)."""
    with sklearn.config_context(enable_metadata_routing=True):
        for method, request in requests.items():
            if method not in SIMPLE_METHODS:
                raise ValueError(f"unknown metadata request method {method!r}")
            request = _expect(request, dict)
            setter = getattr(estimator, f"set_{method}_request", None)
            if setter is not None:
                setter(**request)
            elif any(v is not None for v in request.values()):
                raise ValueError(f"{type(estimator).__name__} has no {method} requests")


def _check_backbone(custom, backbone, cls):
    if custom is not None and backbone is None:
        raise ValueError(
            f"This {cls.__name__} was saved with a custom backbone ({custom}); its "
            "code is not stored in the file. Pass the same module or factory: "
            "load(path, backbone=...)."
        )
    if custom is None and backbone is not None:
        raise ValueError(
            "backbone= is only for models saved with a custom backbone; this "
            f"{cls.__name__} uses a registered one (see its backbone parameter)."
        )


class _invalid_file:
    """Turn any failure to read the file into one ValueError, chained."""

    def __init__(self, path):
        self.path = path

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None and issubclass(exc_type, Exception):
            raise ValueError(
                f"{_name(self.path)} is not a valid sklearn_clmle model file "
                f"({_summary(exc)})."
            ) from exc
        return False


def _summary(exc):
    if isinstance(exc, pickle.UnpicklingError):
        # torch's own message suggests weights_only=False: not for this file.
        return "weights.pt holds objects other than tensors; refused unread"
    text = " ".join(line.strip() for line in str(exc).splitlines())
    return f"{type(exc).__name__}: {text[:300]}"


def _expect(value, kind):
    if not isinstance(value, kind):
        raise TypeError(f"expected {kind.__name__}, got {type(value).__name__}")
    return value


def _describe(backbone):
    """``module.QualName`` of a custom backbone's class, or of its factory."""
    kind = type(backbone) if isinstance(backbone, torch.nn.Module) else backbone
    name = getattr(kind, "__qualname__", None) or type(kind).__qualname__
    return f"{getattr(kind, '__module__', None) or '?'}.{name}"


def _name(path):
    return repr(os.fspath(path)) if isinstance(path, (str, os.PathLike)) else repr(path)
