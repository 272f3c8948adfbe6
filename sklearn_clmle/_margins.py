"""Angular margin bounds of CLMLE (CLMLE paper, Sec. 3.2, Fig. 4).

``a1 <= 1 - cos(2 pi / C)`` between classes and, for class c with L_c of the
L training samples, ``a2 <= 1 - cos(2 pi L_c / L)`` within the class.
"""

import warnings

import numpy as np

#: Fraction of the bound used by ``a1="auto"`` and ``a2="auto"``.
AUTO_FRACTION = 0.5


def a1_bound(n_classes):
    """Upper bound of the between-class margin, ``1 - cos(2 pi / C)``."""
    return float(1.0 - np.cos(2.0 * np.pi / n_classes))


def a2_bounds(class_counts):
    """Per-class upper bounds of the within-class margin, ``1 - cos(2 pi L_c / L)``."""
    counts = np.asarray(class_counts, dtype=np.float64)
    return 1.0 - np.cos(2.0 * np.pi * counts / counts.sum())


def resolve_margins(a1, a2, class_counts, classes):
    """Effective margins: ``"auto"`` resolved, values above a bound clipped.

    Returns
    -------
    a1_max, a2_max : float, ndarray of shape (n_classes,)
        The bounds.
    a1_eff, a2_eff : float, ndarray of shape (n_classes,)
        The margins used in training. A value above its bound is clipped to
        the bound (per class for ``a2``) with a ``UserWarning`` naming the
        parameter and the classes concerned.
    """
    a1_max = a1_bound(len(class_counts))
    a2_max = a2_bounds(class_counts)
    if isinstance(a1, str):
        a1_eff = AUTO_FRACTION * a1_max
    else:
        a1_eff = float(a1)
        if a1_eff > a1_max:
            warnings.warn(
                f"a1={a1_eff:g} exceeds its bound 1 - cos(2*pi/C) = {a1_max:.4g} for "
                f"C={len(class_counts)} classes; using a1={a1_max:.4g}.",
                UserWarning,
                stacklevel=4,
            )
            a1_eff = a1_max
    if isinstance(a2, str):
        a2_eff = AUTO_FRACTION * a2_max
    else:
        a2_eff = np.full(a2_max.shape, float(a2))
        over = a2_eff > a2_max
        if over.any():
            names = ", ".join(str(c) for c in np.asarray(classes)[over][:10])
            warnings.warn(
                f"a2={float(a2):g} exceeds its per-class bound 1 - cos(2*pi*L_c/L) for "
                f"class(es) {names}; a2 is clipped to the bound for those classes.",
                UserWarning,
                stacklevel=4,
            )
            a2_eff = np.minimum(a2_eff, a2_max)
    return a1_max, a2_max, a1_eff, a2_eff
