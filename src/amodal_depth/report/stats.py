"""Statistics over seeds: mean ± sample standard deviation, and Welch's t-test (scipy)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from scipy import stats as _scipy_stats

ALPHA = 0.05
"""Significance level of the claim tests (two-sided)."""


@dataclass(frozen=True)
class Stat:
    """Mean ± sample standard deviation (ddof = 1) over seeds; NaN std when n < 2."""

    mean: float
    std: float
    n: int

    @staticmethod
    def of(values: Iterable[float | None]) -> Stat:
        v = _finite(values)
        if not v:
            return Stat(math.nan, math.nan, 0)
        mean = math.fsum(v) / len(v)
        if len(v) < 2:
            return Stat(mean, math.nan, len(v))
        var = math.fsum((x - mean) ** 2 for x in v) / (len(v) - 1)
        return Stat(mean, math.sqrt(var), len(v))


def welch_test(a: Sequence[float], b: Sequence[float]) -> tuple[float, float, float]:
    """Welch's unequal-variance t-test: (t, df, two-sided p) for mean(a) - mean(b).

    `scipy.stats.ttest_ind(a, b, equal_var=False)`, with the two cases it leaves undefined
    made explicit: fewer than two values in a group gives NaNs (no spread is known), and two
    constant groups give an exact answer (p = 0 when their means differ, else p = 1)."""
    a, b = _finite(a), _finite(b)
    sa, sb = Stat.of(a), Stat.of(b)
    if sa.n < 2 or sb.n < 2:
        return math.nan, math.nan, math.nan
    diff = sa.mean - sb.mean
    if sa.std == 0.0 and sb.std == 0.0:  # both groups constant: any difference is exact
        return (math.copysign(math.inf, diff), math.inf, 0.0) if diff else (0.0, math.inf, 1.0)
    with warnings.catch_warnings():  # near-identical values: the test is still well defined
        warnings.filterwarnings("ignore", "Precision loss", RuntimeWarning)
        r = _scipy_stats.ttest_ind(a, b, equal_var=False)
    return float(r.statistic), float(r.df), float(r.pvalue)


def _finite(values: Iterable[float | None]) -> list[float]:
    """The values that are numbers: None and NaN/inf (a failed metric) are left out."""
    return [float(x) for x in values if x is not None and math.isfinite(float(x))]
