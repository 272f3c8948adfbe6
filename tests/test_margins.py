import math

import numpy as np
import pytest

from sklearn_clmle._margins import a1_bound, a2_bounds, resolve_margins


def test_bounds_formulas():
    assert a1_bound(2) == pytest.approx(2.0)
    assert a1_bound(4) == pytest.approx(1.0)
    assert a1_bound(10) == pytest.approx(1 - math.cos(2 * math.pi / 10))
    np.testing.assert_allclose(
        a2_bounds([75, 25]), [1 - math.cos(1.5 * math.pi), 1 - math.cos(0.5 * math.pi)]
    )


def test_auto_is_half_the_bounds_with_a2_below_a1():
    a1_max, a2_max, a1, a2 = resolve_margins("auto", "auto", [60, 30, 10], [0, 1, 2])
    assert a1 == pytest.approx(a1_max / 2)
    # Half of each bound, but never more than half of a1 (paper Sec. 3.2:
    # between-class margins larger than same-class ones).
    np.testing.assert_allclose(a2, np.minimum(a2_max / 2, a1 / 2))
    assert (a2 < a1).all() and a2[0] < a2_max[0] / 2  # the head class is capped
    _, _, _, a2_set = resolve_margins("auto", 0.6, [60, 30, 10], [0, 1, 2])
    assert a2_set[0] == 0.6  # an explicit a2 is the user's choice


def test_values_within_bounds_are_kept():
    _, _, a1, a2 = resolve_margins(0.3, 0.01, [60, 30, 10], [0, 1, 2])
    assert a1 == 0.3 and np.all(a2 == 0.01)


def test_a1_above_bound_is_clipped_with_warning():
    with pytest.warns(UserWarning, match="a1=5 exceeds"):
        a1_max, _, a1, _ = resolve_margins(5.0, 0.0, [5, 5], ["a", "b"])
    assert a1 == a1_max == pytest.approx(2.0)


def test_a2_clipped_per_class_only():
    counts = [90, 10]
    a2_max = a2_bounds(counts)  # both 1 - cos(0.2 pi) ~ 0.19 (symmetric)
    counts = [50, 40, 10]
    a2_max = a2_bounds(counts)
    a2 = 0.5
    assert (a2_max > a2).any() and (a2_max < a2).any()
    with pytest.warns(UserWarning, match="class\\(es\\) 'c'|class\\(es\\) c"):
        _, _, _, a2_eff = resolve_margins(0.0, a2, counts, ["a", "b", "c"])
    np.testing.assert_allclose(a2_eff, np.minimum(a2, a2_max))
    assert a2_eff[0] == 0.5
