"""Statistics for honest readings: intervals over seeds and over images, and sentences that never claim an effect
within them.

* :func:`seed_interval`, :func:`paired_seed_difference`, :func:`aggregate_seeds`: Student-t intervals over training
  seeds (how much a number moves when only the seed changes).
* :func:`bootstrap_interval`: a per-image percentile bootstrap of one accuracy (how much it moves with the images).
* :func:`format_interval`, :func:`describe_difference`: ``"52.3 ± 4.1"`` and one sentence that names the protocol
  (docs/methods.md §2.1 or §2.2), the kind of interval and its ``n``.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

__all__ = [
    "Interval",
    "seed_interval",
    "clip_interval",
    "interval_columns",
    "INTERVAL_SUFFIXES",
    "paired_t_pvalue",
    "holm_adjust",
    "PERCENT",
    "PERCENT_DIFFERENCE",
    "bootstrap_interval",
    "paired_seed_difference",
    "aggregate_seeds",
    "format_interval",
    "describe_difference",
    "t_quantile",
]


#: The range of a percentage (accuracies, errors, PxAP) and of the difference of two.
PERCENT: tuple[float, float] = (0.0, 100.0)
PERCENT_DIFFERENCE: tuple[float, float] = (-100.0, 100.0)


# -- intervals over seeds and over images -----------------------------------------------------------------------
@dataclass(frozen=True)
class Interval:
    """A confidence interval of a mean, in the unit of the values (percentage points for accuracies).

    Attributes:
        mean: the point estimate (mean over seeds; for a bootstrap, the accuracy on all images).
        half_width: half the interval's width (NaN when it cannot be computed, e.g. from one seed).
        n: number of seeds (``kind="t"``) or of images (``kind="bootstrap"``).
        kind: ``"t"`` (Student-t over seeds) or ``"bootstrap"`` (percentile bootstrap over images).
        confidence: the interval's level, e.g. 0.95.
        bounds: ``(low, high)`` when the interval is not symmetric about ``mean`` (the bootstrap's percentiles);
            ``None`` means ``mean ∓ half_width``.
    """

    mean: float
    half_width: float
    n: int
    kind: str
    confidence: float = 0.95
    bounds: tuple[float, float] | None = None

    @property
    def low(self) -> float:
        """Lower end of the interval (NaN when the half width is NaN)."""
        return self.bounds[0] if self.bounds is not None else self.mean - self.half_width

    @property
    def high(self) -> float:
        """Upper end of the interval."""
        return self.bounds[1] if self.bounds is not None else self.mean + self.half_width

    def excludes_zero(self) -> bool:
        """Whether the whole interval lies strictly on one side of 0 (False when it is NaN)."""
        return bool(self.low > 0 or self.high < 0)


def _check_confidence(confidence: float, where: str) -> float:
    if not 0.0 < float(confidence) < 1.0:
        raise ValueError(f"{where}: confidence={confidence!r} must lie strictly between 0 and 1 (e.g. 0.95)")
    return float(confidence)


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the regularized incomplete beta function (modified Lentz's method)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 1000):
        m2 = 2 * m
        for aa in (m * (b - m) * x / ((qam + m2) * (a + m2)), -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1.0 + aa * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + aa / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta ``I_x(a, b)``."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def _t_cdf(t: float, df: float) -> float:
    tail = 0.5 * _betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t > 0 else tail


def _t_quantile_fallback(p: float, df: float) -> float:
    """Student-t quantile without scipy: bisection on the CDF (relative precision about 1e-12)."""
    if p == 0.5:
        return 0.0
    if p < 0.5:
        return -_t_quantile_fallback(1.0 - p, df)
    low, high = 0.0, 1.0
    while _t_cdf(high, df) < p:
        low, high = high, 2.0 * high
    for _ in range(200):
        middle = 0.5 * (low + high)
        if _t_cdf(middle, df) < p:
            low = middle
        else:
            high = middle
        if high - low <= 1e-13 * high:
            break
    return 0.5 * (low + high)


def t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile of Student's t with ``df`` degrees of freedom: ``scipy.stats.t.ppf`` when scipy is
    installed (it comes with scikit-image, the notebooks' extra), else an exact bisection on the CDF (the
    regularized incomplete beta function); the two agree to about 1e-10. E.g. ``t_quantile(0.975, 2) = 4.302653``."""
    if not 0.0 < p < 1.0 or not df > 0:
        raise ValueError(f"t_quantile: need 0 < p < 1 and df > 0; got p={p!r}, df={df!r}")
    try:
        scipy_stats = importlib.import_module("scipy.stats")
    except ImportError:  # pragma: no cover - scipy is installed wherever scikit-image is
        return _t_quantile_fallback(float(p), float(df))
    return float(scipy_stats.t.ppf(p, df))


def _as_floats(values: Iterable[float], where: str) -> list[float]:
    out = [float(v) for v in values]
    if not out:
        raise ValueError(f"{where}: no values; pass one value per seed")
    return out


def seed_interval(
    values: Sequence[float], confidence: float = 0.95, *, bounds: tuple[float, float] | None = None
) -> Interval:
    """Student-t interval of the mean over training seeds: ``mean ± t_{(1+c)/2, n-1} · sd / sqrt(n)``, ``sd`` with
    ``ddof=1``, intersected with ``bounds`` (the metric's range) when given. Values 1, 2, 3 give
    ``2 ± 4.302653 / sqrt(3) = 2 ± 2.4842``, i.e. ``[-0.4842, 4.4842]``; with ``bounds=(0, 3)`` it is ``[0, 3]``. Only
    ends outside the range move, so an interval inside the range is the plain t interval.

    Args:
        values: one number per seed (e.g. GT-known loc accuracy of each seed's run).
        confidence: the level, e.g. 0.95.
        bounds: ``(low, high)`` the metric can take, e.g. :data:`PERCENT` for an accuracy, :data:`PERCENT_DIFFERENCE`
            for a difference of two; ``None``: unbounded.

    Returns:
        :class:`Interval` of kind ``"t"`` (``half_width`` is always the t half width; ``bounds`` holds the ends
        when the range clipped them); one seed gives a NaN half width, a NaN value a NaN interval.
    """
    confidence = _check_confidence(confidence, "seed_interval")
    data = _as_floats(values, "seed_interval")
    n = len(data)
    if any(math.isnan(v) for v in data):
        return Interval(math.nan, math.nan, n, "t", confidence)
    mean = math.fsum(data) / n
    if n == 1:
        return Interval(mean, math.nan, n, "t", confidence)
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in data) / (n - 1))
    half_width = t_quantile(0.5 + confidence / 2.0, n - 1) * sd / math.sqrt(n)
    return clip_interval(Interval(mean, half_width, n, "t", confidence), bounds)


def clip_interval(iv: Interval, bounds: tuple[float, float] | None) -> Interval:
    """``iv`` intersected with the metric's range ``bounds = (low, high)``: its ends are set in ``bounds`` only when
    the range cuts them (so ``[-5, 40]`` in ``(0, 100)`` becomes ``[0, 40]``); ``None`` or a NaN interval: as is."""
    if bounds is None or math.isnan(iv.half_width):
        return iv
    low, high = float(bounds[0]), float(bounds[1])
    if not low < high:
        raise ValueError(f"clip_interval: bounds={bounds!r} must be (low, high) with low < high")
    if iv.low >= low and iv.high <= high:
        return iv
    return replace(iv, bounds=(max(iv.low, low), min(iv.high, high)))


#: Suffixes of the columns :func:`interval_columns` writes beside a mean: the t half width and the interval's ends.
INTERVAL_SUFFIXES: tuple[str, ...] = (" ±", " low", " high")


def interval_columns(label: str, iv: Interval) -> dict[str, float]:
    """The table columns of one interval: ``label`` (mean), ``"<label> ±"`` (t half width), ``"<label> low"`` and
    ``"<label> high"`` (the interval's ends, within the metric's range when it was given one)."""
    return {label: iv.mean, f"{label} ±": iv.half_width, f"{label} low": iv.low, f"{label} high": iv.high}


def paired_t_pvalue(differences: Sequence[float]) -> float:
    """Two-sided p value of the paired t test that the mean of ``differences`` (one per seed) is 0:
    ``2 · P(T_{n-1} > |mean| / (sd / sqrt(n)))``. NaN for fewer than 2 values or a NaN value; 1.0 when all are 0;
    0.0 when all are equal and not 0 (zero spread)."""
    data = _as_floats(differences, "paired_t_pvalue")
    n = len(data)
    if n < 2 or any(math.isnan(v) for v in data):
        return math.nan
    mean = math.fsum(data) / n
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in data) / (n - 1))
    if sd == 0.0:
        return 1.0 if mean == 0.0 else 0.0
    t = abs(mean) / (sd / math.sqrt(n))
    return min(1.0, 2.0 * (1.0 - _t_cdf(t, n - 1)))


def holm_adjust(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p values (family-wise error control over the whole family), in the input order:
    sorted ascending ``p_(1) <= ... <= p_(m)``, ``adj_(i) = max_{j <= i} min(1, (m - j + 1) · p_(j))``. A comparison
    is declared at level alpha when its adjusted p is below alpha. NaN p values stay NaN and do not count in ``m``.
    E.g. ``[0.01, 0.04, 0.03]`` -> ``[0.03, 0.06, 0.06]``."""
    values = [float(p) for p in pvalues]
    if any(not math.isnan(p) and not 0.0 <= p <= 1.0 for p in values):
        raise ValueError(f"holm_adjust: p values must lie in [0, 1]; got {values}")
    order = sorted((i for i, p in enumerate(values) if not math.isnan(p)), key=lambda i: values[i])
    out = [math.nan] * len(values)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(order) - rank) * values[index]))
        out[index] = running
    return out


def paired_seed_difference(
    a: Sequence[float],
    b: Sequence[float],
    confidence: float = 0.95,
    *,
    bounds: tuple[float, float] | None = None,
) -> Interval:
    """The t interval (:func:`seed_interval`) of the per-seed differences ``a_i - b_i``: method A minus method B
    trained with the same seeds (e.g. "HCLNet minus CAM"), within ``bounds`` (e.g. :data:`PERCENT_DIFFERENCE`).
    Pairing removes what a seed does to both methods."""
    if len(a) != len(b):
        raise ValueError(
            f"paired_seed_difference: {len(a)} values for A but {len(b)} for B; pass one value per "
            "seed for both methods, the same seeds in the same order"
        )
    return seed_interval([float(x) - float(y) for x, y in zip(a, b)], confidence, bounds=bounds)


#: Elements of the resampled index matrix drawn at once by :func:`bootstrap_interval` (memory bound).
_BOOTSTRAP_CHUNK_ELEMENTS = 4_000_000


def bootstrap_interval(correct: np.ndarray, confidence: float = 0.95, resamples: int = 2000, seed: int = 0) -> Interval:
    """Per-image percentile bootstrap of an accuracy in percent.

    ``resamples`` times, ``n`` images are drawn with replacement (``numpy.random.default_rng(seed)``, an index
    matrix drawn in chunks of rows, no loop over single resamples) and the accuracy recomputed; the interval runs
    from the ``(1 - c) / 2`` to the ``(1 + c) / 2`` percentile of those accuracies (numpy's linear
    interpolation). Deterministic given ``seed``.

    Args:
        correct: ``(n,)`` 0/1 or bool: whether each image counts as correct (e.g. IoU >= 0.5).
        confidence: the level, e.g. 0.95.
        resamples: number of bootstrap samples, ``>= 1``.
        seed: seed of the numpy Generator.

    Returns:
        :class:`Interval` of kind ``"bootstrap"``: ``mean`` the accuracy on all images, ``bounds`` the
        percentiles, ``half_width`` half their distance, ``n`` the number of images.
    """
    confidence = _check_confidence(confidence, "bootstrap_interval")
    values = np.asarray(correct)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"bootstrap_interval: correct must be a non-empty 1-D 0/1 vector; got shape {values.shape}")
    if not np.isin(values, (0, 1)).all():
        raise ValueError("bootstrap_interval: correct must hold only 0/1 (or bools), one per image")
    if not isinstance(resamples, int) or resamples < 1:
        raise ValueError(f"bootstrap_interval: resamples={resamples!r} must be a positive int")
    hits = values.astype(np.float64)
    n = hits.size
    rng = np.random.default_rng(seed)
    rows = max(1, _BOOTSTRAP_CHUNK_ELEMENTS // n)
    accuracies = np.empty(resamples, dtype=np.float64)
    for start in range(0, resamples, rows):
        count = min(rows, resamples - start)
        accuracies[start : start + count] = hits[rng.integers(0, n, size=(count, n))].mean(axis=1) * 100.0
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = (float(v) for v in np.percentile(accuracies, [tail, 100.0 - tail]))
    return Interval(float(hits.mean() * 100.0), (high - low) / 2.0, n, "bootstrap", confidence, (low, high))


def aggregate_seeds(
    summaries: Sequence[Mapping[str, float]], keys: Iterable[str], confidence: float = 0.95
) -> dict[str, Interval]:
    """``{key: seed_interval([s[key] for s in summaries])}``: the t interval over seeds of each metric of
    evaluation summaries (one :func:`wsol_utils.engine.evaluate` summary per seed)."""
    if not summaries:
        raise ValueError("aggregate_seeds: no summaries; pass one evaluation summary per seed")
    out = {}
    for key in keys:
        missing = [i for i, s in enumerate(summaries) if key not in s]
        if missing:
            raise ValueError(f"aggregate_seeds: key {key!r} is missing from summaries {missing}")
        out[key] = seed_interval([float(s[key]) for s in summaries], confidence)
    return out


def format_interval(iv: Interval, digits: int = 1) -> str:
    """``"52.3 ± 4.1"`` (mean ± half width), ``"52.3 [48.0, 100.0]"`` when the metric's range clipped a t
    interval; ``"52.3"`` when the half width is NaN; ``"n/a"`` for a NaN mean."""
    if math.isnan(iv.mean):
        return "n/a"
    if math.isnan(iv.half_width):
        return f"{iv.mean:.{digits}f}"
    if _clipped(iv):
        return f"{iv.mean:.{digits}f} [{iv.low:.{digits}f}, {iv.high:.{digits}f}]"
    return f"{iv.mean:.{digits}f} ± {iv.half_width:.{digits}f}"


def _clipped(iv: Interval) -> bool:
    """Whether a t interval's ends were cut by the metric's range (shown as ``[low, high]``, not ``± half width``)."""
    return iv.kind == "t" and iv.bounds is not None


def _interval_kind(iv: Interval) -> str:
    level = f"{100.0 * iv.confidence:g}%"
    if iv.kind == "t":
        return f"{level} t-interval over {iv.n} seed{'s' if iv.n != 1 else ''}"
    if iv.kind == "bootstrap":
        return f"{level} bootstrap interval over {iv.n} image{'s' if iv.n != 1 else ''}"
    return f"{level} {iv.kind} interval, n = {iv.n}"


def describe_difference(name_a: str, name_b: str, iv: Interval, metric: str, protocol: str, *, digits: int = 1) -> str:
    """One sentence on the difference ``A - B`` of a metric (percentage points) given its interval ``iv``
    (:func:`paired_seed_difference`); a difference is stated only when the interval excludes 0. E.g.
    ``"HCLNet's GT-known loc accuracy is 9.2 points above CAM's under the papers' protocol (+9.2 ± 4.3; 95%
    t-interval over 3 seeds, which excludes 0)."``

    Args:
        name_a, name_b: the two methods; metric: e.g. ``"GT-known loc accuracy"``;
        protocol: e.g. ``"the papers' protocol (tau 0.2)"`` or ``"wsoleval's protocol"`` (docs/methods.md §2.1,
            §2.2).
    """
    if math.isnan(iv.mean):
        return f"{name_a}'s {metric} cannot be compared with {name_b}'s under {protocol}: no value."
    diff = f"{iv.mean:+.{digits}f}"
    if math.isnan(iv.half_width):
        return (
            f"{name_a}'s {metric} is not shown to differ from {name_b}'s under {protocol} ({diff} from "
            f"{iv.n} {'seed' if iv.kind == 't' else 'sample'}; an interval needs at least 2)."
        )
    spread = f"[{iv.low:+.{digits}f}, {iv.high:+.{digits}f}]" if _clipped(iv) else f"± {iv.half_width:.{digits}f}"
    detail = f"{diff} {spread}; {_interval_kind(iv)}"
    if iv.excludes_zero():
        where = "above" if iv.mean > 0 else "below"
        return (
            f"{name_a}'s {metric} is {abs(iv.mean):.{digits}f} points {where} {name_b}'s under {protocol} "
            f"({detail}, which excludes 0)."
        )
    return f"{name_a}'s {metric} is not shown to differ from {name_b}'s under {protocol} ({detail}, which contains 0)."
