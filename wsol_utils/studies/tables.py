"""The papers' reference numbers (docs/methods.md §2.3) as data, and the suite's result tables.

Each builder takes *our* numbers (summary dicts as returned by :func:`wsol_utils.engine.evaluate`,
keys such as ``"loc_err_top1"`` or ``"maxboxacc_v2"``) and returns a :class:`pandas.DataFrame` whose
columns put our numbers first and the published numbers beside them. Every published column starts
with ``"paper"`` so that no reader can take a CUB/VGG16 number from a paper for one we measured.

:func:`write_table` writes a table as CSV and Markdown, each atomically.

Errors and accuracies are percentages; error = 100 - accuracy. A missing value is ``NaN`` in the
frame, empty in the CSV and ``–`` in the Markdown (the papers' ``-``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple, TypeAlias

import pandas as pd

from wsol_utils.base.atomic import write_text_atomic as atomic_write_text
from wsol_utils.engine.baselines import BASELINES
from wsol_utils.engine.run import read_config_json, run_pretrained_backbone
from wsol_utils.nets.fusion import FUSION_METHODS
from wsol_utils.nets.methods import get_method, list_methods
from wsol_utils.studies.stats import INTERVAL_SUFFIXES

NAN = float("nan")

# --------------------------------------------------------------------------------------------------
# Reference numbers (docs/methods.md §2.3). Keys use the summary names of wsol_utils.scoring.metrics / engine.
# --------------------------------------------------------------------------------------------------

#: ACoL Table 6: (top-1, top-5) localization error per erasing threshold delta.
ACOL_TABLE6: dict[str, dict[float, tuple[float, float]]] = {
    "CUB": {0.5: (58.34, 48.11), 0.6: (54.15, 42.79), 0.7: (54.08, 43.49), 0.8: (55.78, 45.17), 0.9: (55.22, 45.76)},
    "ILSVRC": {0.5: (62.62, 52.03), 0.6: (54.17, 40.57), 0.7: (54.55, 42.53), 0.8: (56.61, 45.45), 0.9: (55.72, 44.42)},
}

#: HCLNet Table 4 (CUB, VGG16): (erasing, fusion) -> errors; NaN where the paper prints "-".
HCLNET_TABLE4_CUB: dict[tuple[str, str], dict[str, float]] = {
    ("threshold", "max"): {"cls_err_top1": 28.1, "cls_err_top5": NAN, "loc_err_top1": 54.08, "loc_err_top5": 43.49},
    ("threshold", "add"): {"cls_err_top1": 28.1, "cls_err_top5": NAN, "loc_err_top1": 51.54, "loc_err_top5": 43.03},
    ("threshold", "l1"): {"cls_err_top1": 28.1, "cls_err_top5": NAN, "loc_err_top1": 51.55, "loc_err_top5": 43.03},
    ("C-CAM", "max"): {"cls_err_top1": 21.51, "cls_err_top5": 6.73, "loc_err_top1": 51.35, "loc_err_top5": 44.39},
    ("C-CAM", "add"): {"cls_err_top1": 22.11, "cls_err_top5": 6.44, "loc_err_top1": 49.57, "loc_err_top5": 41.23},
    ("C-CAM", "l1"): {"cls_err_top1": 22.11, "cls_err_top5": 6.44, "loc_err_top1": 49.50, "loc_err_top5": 41.20},
}

#: HCLNet Table 1 (CUB, VGG16): method -> errors (HCLNet with addition fusion).
HCLNET_TABLE1_CUB: dict[str, dict[str, float]] = {
    "cam": {"cls_err_top1": 23.4, "cls_err_top5": 7.5, "loc_err_top1": 55.85, "loc_err_top5": 47.84},
    "acol": {"cls_err_top1": 28.1, "cls_err_top5": NAN, "loc_err_top1": 54.08, "loc_err_top5": 43.49},
    "hclnet": {"cls_err_top1": 22.11, "cls_err_top5": 6.44, "loc_err_top1": 48.95, "loc_err_top5": 41.06},
}

#: wsoleval (Choe et al., CVPR 2020), MaxBoxAccV2 on the test split with VGG16.
WSOLEVAL_MAXBOXACCV2: dict[str, dict[str, float]] = {
    "CUB": {"cam": 63.7, "acol": 57.4},
    "ImageNet": {"cam": 60.0, "acol": 57.4},
}

#: Our summary keys -> column labels, in table order.
ERROR_COLUMNS: dict[str, str] = {
    "cls_err_top1": "cls err top-1",
    "cls_err_top5": "cls err top-5",
    "loc_err_top1": "loc err top-1",
    "loc_err_top5": "loc err top-5",
}
EXTRA_COLUMNS: dict[str, str] = {
    "gt_known_loc_err": "GT-known loc err",
    "maxboxacc": "MaxBoxAcc",
    "maxboxacc_v2": "MaxBoxAccV2",
}
DELTAS: tuple[float, ...] = (0.5, 0.6, 0.7, 0.8, 0.9)
ERASINGS: tuple[str, ...] = ("threshold", "C-CAM")
#: The fusions of HCLNet Table 4, in its order (that of :data:`wsol_utils.nets.fusion.FUSION_METHODS`).
FUSIONS: tuple[str, ...] = tuple(FUSION_METHODS)


def paper_column(label: str, source: str) -> str:
    """Column name for a published number: ``paper_column("loc err top-1", "CUB")`` ->
    ``"paper CUB: loc err top-1"``."""
    return f"paper {source}: {label}"


def _ours(summary: Mapping[str, float], columns: Mapping[str, str]) -> dict[str, float]:
    """Pick ``columns``' keys from a summary dict; a missing key becomes NaN. A summary aggregated over seeds
    (:func:`wsol_utils.studies.analysis.aggregate_summaries`) also gives each column its ``"<label> ±"`` half width and,
    for a percentage, its ``"<label> low"`` / ``"<label> high"`` ends."""
    out: dict[str, float] = {}
    for key, label in columns.items():
        out[label] = float(summary.get(key, NAN))
        for suffix in INTERVAL_SUFFIXES:
            if f"{key}{suffix}" in summary:
                out[f"{label}{suffix}"] = float(summary[f"{key}{suffix}"])
    return out


def _paper(numbers: Mapping[str, float], columns: Mapping[str, str], source: str) -> dict[str, float]:
    return {paper_column(label, source): float(numbers.get(key, NAN)) for key, label in columns.items()}


def _require(results: Mapping, keys: Sequence, argument: str) -> None:
    missing = [key for key in keys if key not in results]
    if missing:
        raise ValueError(
            f"{argument} lacks results for {missing}; pass one summary dict per row (expected keys {list(keys)})"
        )


def fusion_ablation_table(results: Mapping[tuple[str, str], Mapping[str, float]]) -> pd.DataFrame:
    """HCLNet Table 4 on our data: {threshold, C-CAM} x {max, add, l1}.

    ``results[(erasing, fusion)]`` is an evaluation summary, ``erasing`` in ``ERASINGS``, ``fusion`` in
    ``FUSIONS``. Columns: ``erasing``, ``fusion``, our cls/loc errors top-1/5, GT-known loc err,
    MaxBoxAccV2, then the paper's CUB numbers (``"paper CUB: ..."``). Six rows in the paper's order.
    """
    rows = [(erasing, fusion) for erasing in ERASINGS for fusion in FUSIONS]
    _require(results, rows, "fusion_ablation_table(results)")
    ours = {
        **ERROR_COLUMNS,
        "gt_known_loc_err": EXTRA_COLUMNS["gt_known_loc_err"],
        "maxboxacc_v2": EXTRA_COLUMNS["maxboxacc_v2"],
    }
    return pd.DataFrame(
        [
            {
                "erasing": erasing,
                "fusion": fusion,
                **_ours(results[(erasing, fusion)], ours),
                **_paper(HCLNET_TABLE4_CUB[(erasing, fusion)], ERROR_COLUMNS, "CUB"),
            }
            for erasing, fusion in rows
        ]
    )


def threshold_sweep_table(results: Mapping[float, Mapping[str, float]]) -> pd.DataFrame:
    """ACoL Table 6 on our data: one row per erasing threshold delta in ``DELTAS``.

    ``results[delta]`` is the evaluation summary of the ACoL run trained with that delta. Columns:
    ``delta``, our loc err top-1/5, GT-known loc err, MaxBoxAccV2, then the paper's CUB and ILSVRC
    top-1/5 loc errors.
    """
    _require(results, DELTAS, "threshold_sweep_table(results)")
    loc = {key: ERROR_COLUMNS[key] for key in ("loc_err_top1", "loc_err_top5")}
    ours = {**loc, "gt_known_loc_err": EXTRA_COLUMNS["gt_known_loc_err"], "maxboxacc_v2": EXTRA_COLUMNS["maxboxacc_v2"]}
    rows = []
    for delta in DELTAS:
        row: dict[str, float] = {"delta": delta, **_ours(results[delta], ours)}
        for source, table in ACOL_TABLE6.items():
            top1, top5 = table[delta]
            row.update(_paper({"loc_err_top1": top1, "loc_err_top5": top5}, loc, source))
        rows.append(row)
    return pd.DataFrame(rows)


def localization_table(results: Mapping[str, Mapping[str, float]]) -> pd.DataFrame:
    """The methods side by side (HCLNet Table 1 layout) plus the wsoleval view.

    ``results[method]`` is an evaluation summary (one run's, or aggregated over seeds with ``±`` half widths)
    for ``method`` a registered method (:func:`wsol_utils.nets.methods.list_methods`) or a calibration baseline
    ``"baseline:<name>"`` (any subset, in the order given; baselines and methods the papers did not report get NaN
    paper columns). Columns: ``method``, our cls/loc errors, GT-known loc err,
    MaxBoxAcc, MaxBoxAccV2, then HCLNet Table 1's CUB errors and wsoleval's CUB MaxBoxAccV2 (NaN for HCLNet).
    """
    unknown = [method for method in results if method not in list_methods() and _baseline(method) is None]
    if unknown:
        raise ValueError(
            f"localization_table(results): unknown methods {unknown}; use {list(list_methods())} or "
            f"'baseline:<name>' with a name of {list(BASELINES)}"
        )
    return pd.DataFrame(
        [
            {
                "method": _method_label(method),
                **_ours(summary, {**ERROR_COLUMNS, **EXTRA_COLUMNS}),
                **_paper(HCLNET_TABLE1_CUB.get(method, {}), ERROR_COLUMNS, "CUB"),
                paper_column("MaxBoxAccV2", "CUB (wsoleval)"): WSOLEVAL_MAXBOXACCV2["CUB"].get(method, NAN),
            }
            for method, summary in results.items()
        ]
    )


def _baseline(method: str) -> str | None:
    """The baseline name of ``"baseline:<name>"`` when it is one of :data:`wsol_utils.engine.baselines.BASELINES`."""
    name = method.removeprefix("baseline:")
    return name if method.startswith("baseline:") and name in BASELINES else None


def _method_label(method: str) -> str:
    baseline = _baseline(method)
    return f"baseline: {BASELINES[baseline].label}" if baseline is not None else get_method(method).label


# --------------------------------------------------------------------------------------------------
# Whether each row's backbone was pretrained (docs/methods.md §1.2: a random VGG16 / ResNet50 is no reproduction)
# --------------------------------------------------------------------------------------------------

#: Title prefix of a table with a run whose backbone is meant to be pretrained but started from random weights.
RANDOM_INIT_TITLE = "RANDOM-INIT BACKBONE — NOT COMPARABLE WITH THE PAPERS: "
#: The column :func:`write_table` adds to a one-row-per-method table of runs with a pretrainable backbone.
PRETRAINED_COLUMN = "pretrained backbone"


class RunBackbone(NamedTuple):
    """One run's backbone as training recorded it: ``pretrained`` is ``None`` when the run folder does not say."""

    run: str
    method: str | None
    backbone: str | None
    pretrained: bool | None

    @property
    def random_init(self) -> bool:
        """A backbone meant to be pretrained (vgg16, resnet50) that did not start from its ImageNet weights (or a
        run that does not record it)."""
        from wsol_utils.nets.backbones import has_pretrained_weights, list_backbones

        meant = self.backbone in list_backbones() and has_pretrained_weights(str(self.backbone))
        return meant and self.pretrained is not True


#: What names a run for :func:`run_backbones`: a run folder, a provenance entry, or a :class:`RunBackbone`.
RunLike: TypeAlias = str | Path | Mapping[str, Any] | RunBackbone


def run_backbones(runs: Iterable[RunLike]) -> list[RunBackbone]:
    """:class:`RunBackbone` of each run: a run folder (its ``config.json`` and ``done.json`` / checkpoint), an entry
    of :meth:`wsol_utils.ui.suite.Suite.provenance`'s ``"runs"`` (``{"run", "config", "pretrained_backbone"}``), or a
    :class:`RunBackbone` (kept as is)."""
    out = []
    for run in runs:
        if isinstance(run, RunBackbone):
            out.append(run)
            continue
        if isinstance(run, Mapping):
            config = run.get("config") or {}
            name, pretrained = str(run.get("run", "")), run.get("pretrained_backbone")
        else:
            config = read_config_json(run, f"{run} is not a run folder (pass suite.train's run dirs)")
            name, pretrained = Path(run).name, run_pretrained_backbone(run)
        flag = None if pretrained is None else bool(pretrained)
        out.append(RunBackbone(name, config.get("method"), config.get("backbone"), flag))
    return out


def random_init_title(title: str, runs: Iterable[RunLike]) -> tuple[str, bool]:
    """``(title, flag)``: ``flag`` is whether any of ``runs`` (:func:`run_backbones`) has a backbone meant to be
    pretrained that started from random weights (``--allow-random-init``); then the title starts with
    :data:`RANDOM_INIT_TITLE`, so that no one takes the table for a reproduction of the papers."""
    flag = any(record.random_init for record in run_backbones(runs))
    if flag and not title.startswith(RANDOM_INIT_TITLE):
        title = RANDOM_INIT_TITLE + title
    return title, flag


def with_pretrained_column(table: pd.DataFrame, records: Sequence[RunBackbone]) -> pd.DataFrame:
    """``table`` with a :data:`PRETRAINED_COLUMN` after ``method`` when it has one row per method (labels such as
    ``"ACoL"``) and some run's backbone is meant to be pretrained: ``"yes"`` when every run of the row's method
    started from ImageNet weights, ``"NO (random init)"`` otherwise, empty for rows without runs (baselines).
    Any other table is returned unchanged."""
    from wsol_utils.nets.backbones import has_pretrained_weights, list_backbones

    pretrainable = [r for r in records if r.backbone in list_backbones() and has_pretrained_weights(str(r.backbone))]
    if "method" not in table.columns or not pretrainable or table["method"].duplicated().any():
        return table
    by_label: dict[str, list[RunBackbone]] = {}
    for record in records:
        if record.method is not None:
            by_label.setdefault(get_method(record.method).label, []).append(record)

    def cell(label: object) -> str | None:
        rows = by_label.get(str(label))
        if not rows:
            return None
        return "NO (random init)" if any(r.random_init for r in rows) else "yes"

    out = table.copy()
    out.insert(list(out.columns).index("method") + 1, PRETRAINED_COLUMN, [cell(label) for label in out["method"]])
    return out


# --------------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------------


def format_cell(value: object, digits: int = 2) -> str:
    """Markdown text of one cell: floats with ``digits`` decimals, NaN/None as ``–``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def with_interval_cells(table: pd.DataFrame, digits: int = 2) -> pd.DataFrame:
    """The reader's view of ``table``: each mean ``x`` that has ``"x low"`` and ``"x high"`` columns becomes the
    text ``"mean [low, high]"`` (``–`` for NaN ends) and its ``"x ±"``, ``"x low"``, ``"x high"`` columns go."""
    out = table.copy()
    for column in map(str, table.columns):
        low, high = f"{column} low", f"{column} high"
        if low not in table.columns or high not in table.columns:
            continue
        out[column] = [
            format_cell(mean, digits)
            if isinstance(lo, float) and math.isnan(lo)
            else f"{format_cell(mean, digits)} [{format_cell(lo, digits)}, {format_cell(hi, digits)}]"
            for mean, lo, hi in zip(table[column], table[low], table[high])
        ]
        out = out.drop(columns=[c for c in (f"{column} ±", low, high) if c in out.columns])
    return out


def to_markdown(table: pd.DataFrame, digits: int = 2) -> str:
    """A GitHub-flavoured Markdown table (no third-party formatter): text left, numbers right; a mean with its
    interval's ends is one cell ``"mean [low, high]"`` (:func:`with_interval_cells`), right-aligned."""
    if table.columns.empty:
        raise ValueError("to_markdown(table): the table has no columns")
    merged = {str(c) for c in table.columns if f"{c} low" in table.columns and f"{c} high" in table.columns}
    table = with_interval_cells(table, digits)
    numeric = [pd.api.types.is_numeric_dtype(table[column]) or str(column) in merged for column in table.columns]
    header = "| " + " | ".join(str(column) for column in table.columns) + " |"
    rule = "|" + "|".join("---:" if is_num else ":---" for is_num in numeric) + "|"
    body = [
        "| " + " | ".join(format_cell(value, digits) for value in row) + " |"
        for row in table.itertuples(index=False, name=None)
    ]
    return "\n".join([header, rule, *body]) + "\n"


class TablePaths(NamedTuple):
    csv: Path
    markdown: Path


PAPER_NOTE = (
    "Columns starting with 'paper' are the published numbers (CUB-200-2011 / ILSVRC, VGG16), "
    "copied for comparison; every other column was measured by this suite."
)


def write_table(
    table: pd.DataFrame,
    directory: str | Path,
    name: str,
    *,
    title: str,
    note: str = PAPER_NOTE,
    digits: int = 2,
    provenance: Mapping[str, Any] | None = None,
    runs: Iterable[str | Path] | None = None,
) -> TablePaths:
    """Write ``table`` as ``directory/name.csv`` and ``directory/name.md`` (title, note, table, and a last line
    naming the library's source hash), and record both in ``directory/PROVENANCE.json``.

    Both files and the manifest are written atomically; the folder is created when missing. ``name`` is a bare
    file stem such as ``"table_localization"``. ``provenance`` (the notebook, runs with their configs, seeds:
    :meth:`wsol_utils.ui.suite.Suite.provenance`) goes into the manifest entry with the source hash and the date
    (:func:`wsol_utils.studies.provenance.stamp`); the Markdown carries no date, so a rerun writes the same bytes.

    Pretrained backbones (docs/methods.md §1.2): the table's runs are ``runs`` (run folders) or else
    ``provenance["runs"]``. When any of them has a backbone meant to be pretrained that started from random weights,
    the title gets the :data:`RANDOM_INIT_TITLE` prefix (:func:`random_init_title`) and the manifest entry
    ``"random_init_backbone": true``; a one-row-per-method table of pretrainable backbones gets the
    :data:`PRETRAINED_COLUMN` (:func:`with_pretrained_column`).
    """
    from wsol_utils.studies import provenance as provenance_

    if not name or Path(name).name != name or Path(name).suffix:
        raise ValueError(f"write_table(name={name!r}): give a bare file stem such as 'table_localization'")
    directory = Path(directory)
    records = run_backbones(runs if runs is not None else (provenance or {}).get("runs") or [])
    title, random_init = random_init_title(title, records)
    table = with_pretrained_column(table, records)
    extra = {"random_init_backbone": True} if random_init else {}
    entry = provenance_.stamp(**{**(provenance or {}), **extra})
    csv = atomic_write_text(directory / f"{name}.csv", table.to_csv(index=False))
    markdown_text = f"# {title}\n\n{note}\n\n{to_markdown(table, digits)}\n{provenance_.markdown_line(entry)}\n"
    markdown = atomic_write_text(directory / f"{name}.md", markdown_text)
    provenance_.record([csv, markdown], entry)
    return TablePaths(csv, markdown)
