"""report/stats.py: mean ± sample std over seeds, and Welch's t-test (scipy) on cases with a
closed-form answer."""

from __future__ import annotations

import math

import pytest

from amodal_depth.report import Stat, welch_test


def test_stat_mean_and_sample_std() -> None:
    s = Stat.of([1.0, 2.0, 3.0])
    assert (s.mean, s.std, s.n) == (2.0, 1.0, 3)
    one = Stat.of([4.0, None])
    assert one.n == 1 and one.mean == 4.0 and math.isnan(one.std)
    assert Stat.of([]).n == 0
    assert Stat.of([1.0, math.nan, 3.0]) == Stat(2.0, math.sqrt(2.0), 2)  # a failed metric


def test_welch_t_and_df_match_hand_computation() -> None:
    a, b = [1.0, 2.0, 3.0], [4.0, 6.0, 8.0]
    t, df, p = welch_test(a, b)
    # va = 1/3, vb = 4/3: t = -4 / sqrt(5/3); df = (5/3)^2 / ((1/3)^2/2 + (4/3)^2/2)
    assert t == pytest.approx(-4 / math.sqrt(5 / 3), rel=1e-12)
    assert df == pytest.approx((5 / 3) ** 2 / ((1 / 9) / 2 + (16 / 9) / 2), rel=1e-12)
    # what the incomplete-beta code the report used before scipy gave (0.0547867660...)
    assert p == pytest.approx(0.054786766, abs=1e-9)


def test_welch_p_values_have_the_t_distributions_closed_forms() -> None:
    # one constant group of two: df = 1, the Cauchy distribution, P(|T| > t) = 1 - 2 atan(t)/pi
    t, df, p = welch_test([1.0, 1.0], [2.0, 4.0])
    assert (t, df) == pytest.approx((-2.0, 1.0))
    assert p == pytest.approx(1 - 2 * math.atan(2.0) / math.pi, rel=1e-10)
    # two of two with equal spread: df = 2, P(|T| > t) = 1 - t / sqrt(2 + t^2)
    t, df, p = welch_test([0.0, 2.0], [5.0, 7.0])
    assert (t, df) == pytest.approx((-5 / math.sqrt(2), 2.0))
    assert p == pytest.approx(1 - abs(t) / math.sqrt(2 + t * t), rel=1e-10)
    # three of three with equal spread: df = 4, whose 5 % critical value is 2.776445
    x = 2.776445 * math.sqrt(2 / 3)
    t, df, p = welch_test([0.0, 1.0, 2.0], [x, x + 1.0, x + 2.0])
    assert df == pytest.approx(4.0) and p == pytest.approx(0.05, abs=1e-6)


def test_welch_edge_cases() -> None:
    assert all(math.isnan(x) for x in welch_test([1.0], [2.0, 3.0]))
    assert math.isnan(welch_test([1.0, None], [2.0, 3.0])[2])  # None is no value
    assert welch_test([0.5, 0.5, 0.5], [0.5, 0.5]) == (0.0, math.inf, 1.0)  # constant, equal
    t, _, p = welch_test([0.2, 0.2], [0.5, 0.5, 0.5])  # constant and different: exact
    assert t == -math.inf and p == 0.0
    # the same numbers in another order give the same test
    assert welch_test([3.0, 1.0, 2.0], [8.0, 4.0, 6.0]) == pytest.approx(
        welch_test([1.0, 2.0, 3.0], [4.0, 6.0, 8.0])
    )
