"""Test design: how large a holdout an activation needs to show a lift, and the reverse.

Two-sided test of two proportions with unequal groups (normal approximation, unpooled
variances): a segment of N people, a share h held out (control n_c = h N, treated
n_t = (1 - h) N, taken as real numbers), baseline conversion p0 (the control's), treated
conversion p1 = p0 + d for an absolute lift d. The test reaches power 1 - beta at level alpha
when

    d = (z_{1-alpha/2} + z_{1-beta}) * sqrt(p1 (1 - p1) / n_t + p0 (1 - p0) / n_c).

`detectable_lift` solves this for d (a quadratic in d, since p1 depends on d);
`holdout_share_needed` solves it for h: with Z = (z_{1-alpha/2} + z_{1-beta})^2,
a = p1 (1 - p1), b = p0 (1 - p0) and K = N d^2 / Z, the condition a / (1 - h) + b / h <= K is
K h^2 - (K - a + b) h + b <= 0, whose smaller root is the smallest holdout share that reaches
the power. Holdouts are at most activations.HOLDOUT_MAX (50%).
"""

from __future__ import annotations

import math

from scipy import stats

from ccrm_core.conductor.audience.activations import HOLDOUT_MAX

POWER_FORMULA = (
    r"d = \left(z_{1-\alpha/2} + z_{1-\beta}\right)"
    r"\sqrt{\frac{p_1(1-p_1)}{(1-h)\,N} + \frac{p_0(1-p_0)}{h\,N}},"
    r"\qquad p_1 = p_0 + d"
)


def _z_total(alpha: float, power: float) -> float:
    if not 0 < alpha < 1:
        raise ValueError(f"the significance level must be between 0 and 1 (got {alpha})")
    if not 0 < power < 1:
        raise ValueError(f"the power must be between 0 and 1 (got {power})")
    return float(stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power))


def _check_segment(segment_size: float, baseline_conversion: float) -> tuple[float, float]:
    n, p0 = float(segment_size), float(baseline_conversion)
    if not math.isfinite(n) or n < 4:
        raise ValueError(f"the segment needs at least 4 people (got {segment_size})")
    if not 0 < p0 < 1:
        raise ValueError(
            f"the baseline conversion must be between 0% and 100% (got {p0:.2%}); "
            "read it from the holdout of an earlier activation"
        )
    return n, p0


def detectable_lift(
    segment_size: float,
    baseline_conversion: float,
    holdout_share: float,
    alpha: float = 0.05,
    power: float = 0.8,
) -> float:
    """The smallest absolute lift in conversion (0.02 = 2 percentage points) that a test with
    this holdout share detects with `power` at two-sided level `alpha` (module docstring)."""
    n, p0 = _check_segment(segment_size, baseline_conversion)
    h = float(holdout_share)
    if not 0 < h <= HOLDOUT_MAX:
        raise ValueError(
            f"the holdout share must be above 0% and at most {HOLDOUT_MAX:.0%} (got {h:.1%})"
        )
    z2 = _z_total(alpha, power) ** 2
    n_t, n_c = (1 - h) * n, h * n
    q0 = p0 * (1 - p0)
    # d^2 (1 + Z/n_t) - d Z (1 - 2 p0) / n_t - Z p0 (1 - p0) (1/n_t + 1/n_c) = 0
    a = 1 + z2 / n_t
    b = -z2 * (1 - 2 * p0) / n_t
    c = -z2 * q0 * (1 / n_t + 1 / n_c)
    d = (-b + math.sqrt(b * b - 4 * a * c)) / (2 * a)
    if p0 + d >= 1:
        raise ValueError(
            f"a segment of {n:,.0f} people with {p0:.1%} baseline conversion is too small to "
            "detect any lift at this holdout"
        )
    return d


def holdout_share_needed(
    segment_size: float,
    baseline_conversion: float,
    min_detectable_lift: float,
    alpha: float = 0.05,
    power: float = 0.8,
) -> float:
    """The smallest holdout share (0..0.5) with which a segment of `segment_size` people and
    `baseline_conversion` detects an absolute lift of `min_detectable_lift` (0.02 = 2 points)
    with `power` at two-sided level `alpha` (module docstring). ValueError when even the
    largest holdout cannot, naming the smallest detectable lift at a 50% holdout."""
    n, p0 = _check_segment(segment_size, baseline_conversion)
    d = float(min_detectable_lift)
    if not math.isfinite(d) or d <= 0:
        raise ValueError(f"the minimum detectable lift must be above 0 (got {d:.2%})")
    if p0 + d >= 1:
        raise ValueError(
            f"a lift of {d * 100:.1f} points on {p0:.1%} baseline conversion goes past 100%"
        )
    z2 = _z_total(alpha, power) ** 2
    a, b = (p0 + d) * (1 - p0 - d), p0 * (1 - p0)
    k = n * d * d / z2
    disc = (k - a + b) ** 2 - 4 * k * b
    h = (k - a + b - math.sqrt(disc)) / (2 * k) if disc >= 0 else math.inf
    if not 0 < h <= HOLDOUT_MAX:
        smallest = detectable_lift(n, p0, HOLDOUT_MAX, alpha, power)
        raise ValueError(
            f"a segment of {n:,.0f} people cannot show a lift of {d * 100:.2f} points with "
            f"{power:.0%} power: the smallest detectable lift at a {HOLDOUT_MAX:.0%} holdout "
            f"is {smallest * 100:.2f} points"
        )
    return h
