"""JSON encoding of parameter and attribute values, for :mod:`sklearn_clmle.persistence`.

Plain JSON carries None, bools, ints, floats (NaN and infinities included,
as Python's ``json`` writes them), strings, lists and dicts with string keys.
Everything else is a one-key dict tagged by its type:

- ``{"__tuple__": [...]}``: a tuple;
- ``{"__items__": [[key, value], ...]}``: a dict with non-string keys;
- ``{"__dict__": {...}}``: a dict that would read as a tag;
- ``{"__ndarray__": name}``: a numeric, boolean or unicode array, stored in
  ``arrays.npz`` under ``name``;
- ``{"__object_array__": {"shape": [...], "values": [...]}}``: an object
  array of strings, numbers and bools;
- ``{"__device__": "cuda:0"}``: a :class:`torch.device`;
- ``{"__module__": name}``: a :class:`torch.nn.Module` attribute, written by
  the caller (its weights are stored apart) and resolved through ``modules``;
- ``{"__centroid_index__": {...}}``: the constructor arguments of a
  :class:`~sklearn_clmle._search.CentroidIndex` (its search structure is a
  cache, rebuilt on first use).

Decoding builds only these types; nothing in a file names code to run.
"""

import numbers

import numpy as np
import torch

from sklearn_clmle._search import CentroidIndex

#: Array kinds stored in arrays.npz: bool, integers, floats, complex, unicode.
ARRAY_KINDS = frozenset("biufcU")
_TAGS = frozenset({
    "__tuple__", "__items__", "__dict__", "__ndarray__", "__object_array__",
    "__device__", "__module__", "__centroid_index__",
})
_INDEX_ALGORITHMS = frozenset({"brute", "kd_tree", "nndescent"})


class Encoder:
    """Encode values to JSON, collecting the arrays on the side.

    Attributes
    ----------
    arrays : dict of str to ndarray
        Arrays to store in ``arrays.npz`` (an array met twice is stored once).
    """

    def __init__(self):
        self.arrays = {}
        self._names = {}

    def encode(self, value, where):
        """JSON-ready form of ``value``; ``where`` names it in errors."""
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, np.bool_):
            return bool(value)
        if isinstance(value, numbers.Real):
            return _python_scalar(value, where)
        if isinstance(value, tuple):
            return {"__tuple__": [self.encode(v, where) for v in value]}
        if isinstance(value, list):
            return [self.encode(v, where) for v in value]
        if isinstance(value, dict):
            return self._encode_dict(value, where)
        if isinstance(value, np.ndarray):
            return self._encode_array(value, where)
        if isinstance(value, torch.device):
            return {"__device__": str(value)}
        if isinstance(value, CentroidIndex):
            return {"__centroid_index__": {
                "centers": self._encode_array(value.centers, where),
                "algorithm": value.algorithm,
                "chunk_size": int(value.chunk_size),
                "random_state": self.encode(value.random_state, where),
            }}
        raise _unsupported(value, where)

    def _encode_dict(self, value, where):
        if all(isinstance(k, str) for k in value):
            out = {k: self.encode(v, where) for k, v in value.items()}
            return {"__dict__": out} if len(out) == 1 and set(out) <= _TAGS else out
        return {"__items__": [
            [self.encode(k, where), self.encode(v, where)] for k, v in value.items()
        ]}

    def _encode_array(self, value, where):
        if value.dtype.kind in ARRAY_KINDS:
            name = self._names.get(id(value))
            if name is None:
                name = self._names[id(value)] = f"a{len(self.arrays)}"
                self.arrays[name] = value
            return {"__ndarray__": name}
        if value.dtype.kind == "O":
            flat = [_object_element(v, where) for v in value.ravel(order="C")]
            return {"__object_array__": {"shape": list(value.shape), "values": flat}}
        raise _unsupported(value, where)


def decode(value, arrays, modules):
    """Inverse of :meth:`Encoder.encode`.

    ``arrays`` maps names to the arrays of ``arrays.npz`` and ``modules``
    names to restored modules. Malformed input raises ``ValueError``,
    ``KeyError`` or ``TypeError``.
    """
    if isinstance(value, list):
        return [decode(v, arrays, modules) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) != 1 or not set(value) <= _TAGS:
        return {k: decode(v, arrays, modules) for k, v in value.items()}
    (tag, body), = value.items()
    if tag == "__tuple__":
        return tuple(decode(v, arrays, modules) for v in _check(body, list))
    if tag == "__items__":
        return {_hashable(decode(k, arrays, modules)): decode(v, arrays, modules)
                for k, v in _check(body, list)}
    if tag == "__dict__":
        return {k: decode(v, arrays, modules) for k, v in _check(body, dict).items()}
    if tag == "__ndarray__":
        return arrays[_check(body, str)]
    if tag == "__object_array__":
        return _decode_object_array(_check(body, dict))
    if tag == "__device__":
        return torch.device(_check(body, str))
    if tag == "__module__":
        return modules[_check(body, str)]
    return _decode_index(_check(body, dict), arrays)


def _decode_object_array(body):
    shape = tuple(_check(n, int) for n in _check(body["shape"], list))
    values = _check(body["values"], list)
    for v in values:
        _check(v, (str, int, float))
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out.reshape(shape)


def _decode_index(body, arrays):
    algorithm = _check(body["algorithm"], str)
    if algorithm not in _INDEX_ALGORITHMS:
        raise ValueError(f"unknown centroid search algorithm {algorithm!r}")
    chunk_size = _check(body["chunk_size"], int)
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    random_state = body["random_state"]
    if random_state is not None:
        _check(random_state, int)
    centers = arrays[_check(body["centers"]["__ndarray__"], str)]
    return CentroidIndex(centers, algorithm, chunk_size, random_state)


def _python_scalar(value, where):
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    raise _unsupported(value, where)


def _object_element(value, where):
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, (numbers.Integral, float, np.floating)):
        return _python_scalar(value, where)
    raise TypeError(
        f"{where}: an object array holding {type(value).__name__} cannot be "
        "saved; only strings, numbers and bools are supported."
    )


def _hashable(key):
    if isinstance(key, (list, dict)):
        raise TypeError(f"unhashable dict key {key!r}")
    return key


def _check(value, types):
    if not isinstance(value, types) or (types is int and isinstance(value, bool)):
        raise TypeError(f"expected {types}, got {type(value).__name__}")
    return value


def _unsupported(value, where):
    return TypeError(
        f"{where} holds a value of type {type(value).__module__}."
        f"{type(value).__qualname__}, which sklearn_clmle.save cannot store "
        "safely; supported are None, bool, int, float, str, tuple, list, dict, "
        "numpy arrays, torch.device and torch modules (as attributes)."
    )
