"""How maps are turned into numbers: one frozen :class:`Protocol` value, its validation and its metric labels.

A protocol fixes everything between a model's class maps and a metric (docs/methods.md §2):

* ``tau``: the papers' box threshold, a fraction of the map's max in ``(0, 1]`` (CAM / ACoL / HCLNet: 0.2,
  docs/methods.md §2.1);
* ``iou_threshold``: the IoU a box needs to count as a correct localization (0.5);
* ``erase_with``: the class whose branch-A map drives branch B's test-time erasing: ``"pred"`` (branch A's top-1,
  label-free, the suite's default) or ``"gt"`` (the ground-truth class, the official code's choice: it leaks the
  label into branch B's input and into a two-branch method's classification, so its labels say ``GT-erased``);
* ``upsample``: how feature-resolution maps reach the image (:data:`wsol_utils.nets.maps.UPSAMPLE_MODES`);
* ``wsoleval``: which branches also get wsoleval's threshold-free metrics (MaxBoxAcc / V2, PxAP, docs/methods.md
  §2.2): ``True`` every branch, ``"main"`` the method's main map only, ``False`` none;
* ``tau_grid``: the thresholds every tau curve and every val choice of tau runs over (:data:`TAU_GRID`).

The two protocols the suite reports are :data:`PAPERS` and :data:`WSOLEVAL`; one evaluation computes both
families of metrics, and :meth:`Protocol.label` names the family (and ``tau``, and GT erasing) in every column.
This module imports only NumPy and :mod:`wsol_utils.nets.maps`, so every layer may use it.
"""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from wsol_utils.nets.maps import UPSAMPLE_MODES

__all__ = [
    "ERASE_WITH",
    "METRIC_NAMES",
    "PAPERS",
    "PAPERS_METRICS",
    "TAU_GRID",
    "TAU_GRID_STEP",
    "WSOLEVAL",
    "WSOLEVAL_METRICS",
    "Protocol",
    "check_erase_with",
    "check_tau",
    "check_upsample",
    "check_wsoleval",
]

#: Classes that can drive test-time erasing: branch A's top-1 (label-free) or the ground truth (label-informed).
ERASE_WITH: tuple[str, ...] = ("pred", "gt")
#: Step of :data:`TAU_GRID`.
TAU_GRID_STEP = 0.01
#: The tau grid of every curve and val choice: 0.01, 0.02, ..., 0.95 (95 values, step :data:`TAU_GRID_STEP`;
#: the papers' 0.2 is on it exactly). It starts near 0 so that a val-chosen tau is not stopped by the grid's edge.
TAU_GRID: tuple[float, ...] = tuple(round(i * TAU_GRID_STEP, 2) for i in range(1, 96))

#: The papers' metric keys (docs/methods.md §2.1) -> display name; ``loc``/``gt_known`` ones depend on ``tau``.
PAPERS_METRICS: dict[str, str] = {
    "cls_err_top1": "cls err top-1",
    "cls_err_top5": "cls err top-5",
    "loc_err_top1": "top-1 loc err",
    "loc_err_top5": "top-5 loc err",
    "gt_known_loc_err": "GT-known loc err",
    "cls_acc_top1": "cls acc top-1",
    "cls_acc_top5": "cls acc top-5",
    "loc_acc_top1": "top-1 loc acc",
    "loc_acc_top5": "top-5 loc acc",
    "gt_known_loc_acc": "GT-known loc acc",
}
#: wsoleval's metric keys (docs/methods.md §2.2) -> display name; they sweep every threshold (no ``tau``).
WSOLEVAL_METRICS: dict[str, str] = {"maxboxacc": "MaxBoxAcc", "maxboxacc_v2": "MaxBoxAccV2", "pxap": "PxAP"}
#: Every metric key a summary holds -> display name.
METRIC_NAMES: dict[str, str] = {**PAPERS_METRICS, **WSOLEVAL_METRICS}


def check_tau(tau: object, where: str = "tau") -> float:
    """``tau`` as a float if it is a real number in ``(0, 1]`` (a fraction of the map's max, docs/methods.md §2.1),
    else a ValueError naming ``where``."""
    if isinstance(tau, bool) or not isinstance(tau, numbers.Real) or not 0.0 < float(tau) <= 1.0:
        raise ValueError(f"{where}: tau={tau!r} must lie in (0, 1] (a fraction of the map's max; papers use 0.2)")
    return float(tau)


def check_erase_with(erase_with: object, where: str = "erase_with") -> str:
    """``erase_with`` if it is one of :data:`ERASE_WITH`, else a ValueError naming ``where``."""
    if erase_with not in ERASE_WITH:
        raise ValueError(
            f"{where}: erase_with={erase_with!r}; choose 'pred' (branch A's top-1, label-free) or 'gt' "
            "(the ground-truth class, label-informed)"
        )
    return str(erase_with)


def check_upsample(upsample: object, where: str = "upsample") -> str:
    """``upsample`` if it is one of :data:`wsol_utils.nets.maps.UPSAMPLE_MODES`, else a ValueError naming ``where``."""
    if upsample not in UPSAMPLE_MODES:
        raise ValueError(f"{where}: upsample={upsample!r}; choose one of {', '.join(UPSAMPLE_MODES)}")
    return str(upsample)


def check_wsoleval(wsoleval: object, where: str = "wsoleval") -> bool | str:
    """``wsoleval`` if it is ``True``, ``False`` or ``"main"``, else a ValueError naming ``where``."""
    if isinstance(wsoleval, bool) or wsoleval == "main":
        return wsoleval
    raise ValueError(f"{where}: wsoleval={wsoleval!r}; choose True, False or 'main'")


def _check_grid(grid: object) -> tuple[float, ...]:
    values = tuple(check_tau(t, "Protocol.tau_grid") for t in grid) if isinstance(grid, (tuple, list)) else ()
    if not values or list(values) != sorted(set(values)):
        raise ValueError(f"Protocol: tau_grid={grid!r} must be a non-empty increasing tuple of taus in (0, 1]")
    return values


@dataclass(frozen=True)
class Protocol:
    """How maps become numbers (see the module docstring); validated on construction, so a Protocol is valid.

    Attributes:
        name: what the protocol is called (``"papers"``, ``"wsoleval"``).
        tau: box threshold in ``(0, 1]``; iou_threshold: IoU of a correct box, in ``(0, 1]``.
        erase_with: ``"pred"`` or ``"gt"``; upsample: a mode of :data:`wsol_utils.nets.maps.UPSAMPLE_MODES`.
        wsoleval: ``True`` / ``"main"`` / ``False``: branches that get MaxBoxAcc / V2 / PxAP.
        tau_grid: increasing taus of every curve and val choice (default :data:`TAU_GRID`).
        reports: the metric keys this protocol reports (:meth:`columns`).
    """

    name: str = "papers"
    tau: float = 0.2
    iou_threshold: float = 0.5
    erase_with: str = "pred"
    upsample: str = "bicubic"
    wsoleval: bool | str = True
    tau_grid: tuple[float, ...] = TAU_GRID
    reports: tuple[str, ...] = tuple(PAPERS_METRICS)

    def __post_init__(self) -> None:
        set_field = object.__setattr__  # frozen: normalize the validated values in place once
        set_field(self, "tau", check_tau(self.tau, f"Protocol {self.name!r}"))
        threshold = self.iou_threshold
        if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real) or not 0.0 < threshold <= 1.0:
            raise ValueError(f"Protocol {self.name!r}: iou_threshold={threshold!r} must lie in (0, 1] (papers: 0.5)")
        set_field(self, "iou_threshold", float(threshold))
        check_erase_with(self.erase_with, f"Protocol {self.name!r}")
        check_upsample(self.upsample, f"Protocol {self.name!r}")
        check_wsoleval(self.wsoleval, f"Protocol {self.name!r}")
        set_field(self, "tau_grid", _check_grid(self.tau_grid))
        unknown = [key for key in self.reports if key not in METRIC_NAMES]
        if unknown:
            raise ValueError(f"Protocol {self.name!r}: unknown metric keys {unknown}; known: {list(METRIC_NAMES)}")

    def replace(self, **changes: Any) -> Protocol:
        """A copy with ``changes`` (validated), e.g. ``PAPERS.replace(erase_with="gt")``."""
        return dataclasses.replace(self, **changes)

    @property
    def gt_erased(self) -> bool:
        """Whether branch B is erased with the ground-truth class (label-informed numbers)."""
        return self.erase_with == "gt"

    def localized(self, ious: np.ndarray) -> np.ndarray:
        """Bool ``(N,)``: which boxes localize their object, ``iou >= iou_threshold`` (docs/methods.md §2.1)."""
        return np.asarray(ious, dtype=np.float64) >= self.iou_threshold

    def label(self, key: str) -> str:
        """The column label of metric ``key``, naming its protocol family, ``tau`` where it matters and GT erasing:
        ``"GT-known loc acc @0.2 (papers)"``, ``"cls err top-1 (papers)"``, ``"MaxBoxAccV2 (wsoleval)"``,
        ``"top-1 loc err @0.2 (papers, GT-erased)"``."""
        if key not in METRIC_NAMES:
            raise KeyError(f"Protocol.label: unknown metric {key!r}; known: {list(METRIC_NAMES)}")
        erased = ", GT-erased" if self.gt_erased else ""
        if key in WSOLEVAL_METRICS:
            return f"{METRIC_NAMES[key]} (wsoleval{erased})"
        at = "" if key.startswith("cls_") else f" @{self.tau:g}"
        return f"{METRIC_NAMES[key]}{at} (papers{erased})"

    def columns(self) -> dict[str, str]:
        """``{metric key: label}`` of the metrics this protocol reports, in order."""
        return {key: self.label(key) for key in self.reports}

    def describe(self) -> str:
        """One line naming the protocol, e.g. ``"papers: tau 0.2, IoU >= 0.5, erase with pred, bicubic"``."""
        erase = "GT class (label-informed)" if self.gt_erased else "predicted class"
        return (
            f"{self.name}: tau {self.tau:g}, IoU >= {self.iou_threshold:g}, branch B erased with the {erase}, "
            f"{self.upsample} upsampling"
        )

    def as_dict(self) -> Mapping[str, Any]:
        """The fields as a plain dict (JSON-ready)."""
        return dataclasses.asdict(self)


#: The papers' protocol (CAM / ACoL / HCLNet tables; docs/methods.md §2.1): a box at tau 0.2 of the max, IoU 0.5,
#: label-free erasing.
PAPERS = Protocol()
#: wsoleval's protocol (docs/methods.md §2.2): MaxBoxAcc, MaxBoxAccV2 and PxAP over every threshold, label-free.
WSOLEVAL = Protocol(name="wsoleval", reports=tuple(WSOLEVAL_METRICS))
