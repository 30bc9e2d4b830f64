"""A/B of assistant scenarios: does one scenario turn more dialogs into leads, or is it chance?

Two-proportion z-test (two-sided) and a Wald interval for the difference; the sample size needed is the
classic formula for 80 % power at the 5 % level, so "not enough data" comes with a number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

ALPHA = 0.05
POWER = 0.80
_NORMAL = NormalDist()


@dataclass(frozen=True, slots=True)
class ScenarioSample:
    scenario: str
    dialogs: int
    leads: int

    @property
    def conversion(self) -> float | None:
        return self.leads / self.dialogs if self.dialogs else None


@dataclass(frozen=True, slots=True)
class Comparison:
    """``better`` against ``worse`` by conversion; ``significant`` when p < ALPHA."""

    better: ScenarioSample
    worse: ScenarioSample
    difference: float
    ci_low: float
    ci_high: float
    p_value: float
    significant: bool
    dialogs_needed_per_scenario: int | None


def two_proportion_p_value(a: ScenarioSample, b: ScenarioSample) -> float:
    """Two-sided p-value of H0: both scenarios convert equally (pooled standard error)."""
    if not a.dialogs or not b.dialogs:
        return 1.0
    pooled = (a.leads + b.leads) / (a.dialogs + b.dialogs)
    error = math.sqrt(pooled * (1 - pooled) * (1 / a.dialogs + 1 / b.dialogs))
    if error == 0:
        return 1.0
    z = abs(a.leads / a.dialogs - b.leads / b.dialogs) / error
    return 2 * (1 - _NORMAL.cdf(z))


def dialogs_needed(p1: float, p2: float) -> int | None:
    """Dialogs per scenario to detect this difference with 80 % power at the 5 % level."""
    difference = abs(p1 - p2)
    if difference == 0:
        return None
    z_alpha, z_power = _NORMAL.inv_cdf(1 - ALPHA / 2), _NORMAL.inv_cdf(POWER)
    variance = p1 * (1 - p1) + p2 * (1 - p2)
    return math.ceil((z_alpha + z_power) ** 2 * variance / difference**2)


def compare(a: ScenarioSample, b: ScenarioSample) -> Comparison | None:
    """None when either scenario has no dialogs yet."""
    if not a.dialogs or not b.dialogs:
        return None
    better, worse = (a, b) if (a.leads / a.dialogs) >= (b.leads / b.dialogs) else (b, a)
    p_better, p_worse = better.leads / better.dialogs, worse.leads / worse.dialogs
    difference = p_better - p_worse
    error = math.sqrt(p_better * (1 - p_better) / better.dialogs + p_worse * (1 - p_worse) / worse.dialogs)
    margin = _NORMAL.inv_cdf(1 - ALPHA / 2) * error
    p_value = two_proportion_p_value(better, worse)
    return Comparison(
        better=better,
        worse=worse,
        difference=difference,
        ci_low=difference - margin,
        ci_high=difference + margin,
        p_value=p_value,
        significant=p_value < ALPHA,
        dialogs_needed_per_scenario=dialogs_needed(p_better, p_worse),
    )
