"""Margin bounds of CLMLE (Sec. 3.2, Fig. 4) and LMLE (Sec. 3.2).

CLMLE (angular): ``a1 <= 1 - cos(2 pi / C)`` between classes and, for class c
with L_c of the L training samples, ``a2 <= 1 - cos(2 pi L_c / L)``.

LMLE (chords of the unit sphere, with the classes filling all of it, s = 1):
``g1 <= 2 sin(pi l / L)`` between clusters (l the cluster size),
``g2 <= 2 sin(pi max(L_c - l, 0) / L)`` for class c, ``g3 <= 2 sin(pi / C)``.

``"auto"`` uses ``AUTO_FRACTION`` of a bound; a value above its bound is
clipped to it (per class where the bound is per class) with a
``UserWarning`` naming the parameter and the classes concerned. CLMLE's
``a2="auto"`` is also kept at most ``AUTO_A2_CAP * a1``: the paper (Sec.
3.2) wants "a larger angular margin for those between-class clusters than
for same-class clusters", which half of each bound alone breaks for every
head class (long-tailed digits at IR 10: a1 = 0.095, a2 up to 0.485).
"""

import warnings

import numpy as np

#: Fraction of the bound used by a margin set to ``"auto"``.
AUTO_FRACTION = 0.5
#: ``a2="auto"`` is at most this fraction of the ``a1`` in use (None: no cap).
AUTO_A2_CAP = 0.5


def a1_bound(n_classes):
    """Upper bound of the between-class margin, ``1 - cos(2 pi / C)``."""
    return float(1.0 - np.cos(2.0 * np.pi / n_classes))


def a2_bounds(class_counts):
    """Per-class upper bounds of the within-class margin, ``1 - cos(2 pi L_c / L)``."""
    counts = np.asarray(class_counts, dtype=np.float64)
    return 1.0 - np.cos(2.0 * np.pi * counts / counts.sum())


def lmle_bounds(class_counts, cluster_size):
    """``(g1_max, g2_max, g3_max)`` of LMLE Sec. 3.2 with s = 1 (g2 per class)."""
    counts = np.asarray(class_counts, dtype=np.float64)
    total = counts.sum()
    g1 = float(2.0 * np.sin(np.pi * min(cluster_size, total) / total))
    g2 = 2.0 * np.sin(np.pi * np.maximum(counts - cluster_size, 0.0) / total)
    g3 = float(2.0 * np.sin(np.pi / counts.size))
    return g1, g2, g3


def _scalar(name, value, bound, formula):
    if isinstance(value, str):
        return AUTO_FRACTION * bound
    value = float(value)
    if value > bound:
        warnings.warn(
            f"{name}={value:g} exceeds its bound {formula} = {bound:.4g}; "
            f"using {name}={bound:.4g}.",
            UserWarning,
            stacklevel=5,
        )
        return bound
    return value


def _per_class(name, value, bounds, classes, formula):
    if isinstance(value, str):
        return AUTO_FRACTION * bounds
    eff = np.full(bounds.shape, float(value))
    over = eff > bounds
    if over.any():
        names = ", ".join(str(c) for c in np.asarray(classes)[over][:10])
        warnings.warn(
            f"{name}={float(value):g} exceeds its per-class bound {formula} for "
            f"class(es) {names}; {name} is clipped to the bound for those classes.",
            UserWarning,
            stacklevel=5,
        )
        eff = np.minimum(eff, bounds)
    return eff


def resolve_margins(a1, a2, class_counts, classes):
    """CLMLE's effective margins: ``"auto"`` resolved, values above a bound clipped.

    Returns
    -------
    a1_max, a2_max : float, ndarray of shape (n_classes,)
        The bounds.
    a1_eff, a2_eff : float, ndarray of shape (n_classes,)
        The margins used in training.
    """
    a1_max = a1_bound(len(class_counts))
    a2_max = a2_bounds(class_counts)
    a1_eff = _scalar("a1", a1, a1_max, f"1 - cos(2*pi/C) for C={len(class_counts)} classes")
    a2_eff = _per_class("a2", a2, a2_max, classes, "1 - cos(2*pi*L_c/L)")
    if isinstance(a2, str) and AUTO_A2_CAP is not None:
        a2_eff = np.minimum(a2_eff, AUTO_A2_CAP * a1_eff)
    return a1_max, a2_max, a1_eff, a2_eff


def resolve_lmle_margins(g1, g2, g3, class_counts, classes, cluster_size):
    """LMLE's bounds ``(g1_max, g2_max, g3_max)`` and effective ``(g1, g2, g3)``."""
    g1_max, g2_max, g3_max = lmle_bounds(class_counts, cluster_size)
    effective = (
        _scalar("g1", g1, g1_max, f"2*sin(pi*l/L) for l={cluster_size}"),
        _per_class("g2", g2, g2_max, classes, "2*sin(pi*(L_c-l)/L)"),
        _scalar("g3", g3, g3_max, f"2*sin(pi/C) for C={len(class_counts)} classes"),
    )
    return (g1_max, g2_max, g3_max), effective
