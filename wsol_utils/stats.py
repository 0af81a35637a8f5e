"""Statistics for honest readings: the noise level of a difference of two accuracies and sentences that never
claim an effect within it."""

from __future__ import annotations

import math

__all__ = ["compare", "difference_noise"]

def difference_noise(p_a: float, p_b: float, n: int) -> float:
    """Half-width (percentage points) of a 95% interval for the difference of two accuracies ``p_a``,
    ``p_b`` (percent), each measured on ``n`` images.

    Agresti–Caffo interval: one success and one failure are added to each sample
    (``p~ = (x + 1) / (n + 2)``), which keeps the interval honest at 0% and 100%, where the plain
    binomial approximation claims zero noise.
    """
    if n < 1:
        raise ValueError(f"difference_noise: n={n!r} must be a positive number of images")
    adjusted = [(p / 100 * n + 1) / (n + 2) for p in (p_a, p_b)]
    variance = sum(p * (1 - p) for p in adjusted) / (n + 2)
    return 196.0 * math.sqrt(variance)


def compare(name_a: str, value_a: float, name_b: str, value_b: float, *, metric: str, n: int,
            higher_is_better: bool = True) -> str:
    """One sentence comparing two percentages measured on ``n`` images, never claiming an effect that
    lies within sampling noise. E.g. ``"ACoL's GT-known loc accuracy is 4.1 points above CAM's (52.3% vs
    48.2%, 1000 test images; noise level ±4.4 points): within noise."``"""
    if any(math.isnan(v) for v in (value_a, value_b)):
        return f"{metric}: not available for {name_a if math.isnan(value_a) else name_b}."
    diff = value_a - value_b
    noise = difference_noise(value_a, value_b, n)
    where = "above" if diff > 0 else "below"
    head = (f"{name_a}'s {metric} equals {name_b}'s" if diff == 0 else
            f"{name_a}'s {metric} is {abs(diff):.1f} points {where} {name_b}'s")
    detail = f"({value_a:.1f}% vs {value_b:.1f}%, {n} images; 95% noise level ±{noise:.1f} points)"
    if abs(diff) <= noise:
        verdict = "within sampling noise, so no difference is shown"
    else:
        better = (diff > 0) == higher_is_better
        verdict = f"{name_a} is {'better' if better else 'worse'} beyond sampling noise"
    return f"{head} {detail}: {verdict}."
