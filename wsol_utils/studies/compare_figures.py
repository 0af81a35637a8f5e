"""``python -m wsol_utils compare-figures A B``: did a fresh run (``B``) reproduce the committed figures (``A``)?

What "reproduced" means (README, "What 'reproduced' means"; issue 20 item 6):

(a) **Same machine** -- both folders' ``PROVENANCE.json`` record one and the same CPU model and torch CPU capability
    (the ``machine`` of their entries, :func:`wsol_utils.studies.provenance.machine`): every table CSV
    (``table_*.csv``) must be byte-identical, since the engine is deterministic on one machine.
(b) **Another or an unknown machine** (also when ``A`` records no machine, as figures made before the record did):
    the floating-point path differs, so numbers may move, but conclusions must not. For every table in both folders,
    rows matched by their key columns (:func:`key_columns`): each mean ``x`` with a half-width column ``"x ±"``
    must have an interval ``[x - hw, x + hw]`` that overlaps its twin's (:func:`overlaps`), and every verdict --
    an ``"x excludes 0"`` column, or for a difference column without one ``|x| > hw`` (:func:`derived_verdict`) --
    must be unchanged.

In both cases a table or a row found in one folder only is not reproduced; so is a column found in one folder's
table only (a renamed mean: its numbers cannot be matched), except the interval columns of a mean both tables have
(``"x ±"`` in one, ``"x low"`` / ``"x high"`` in the other: the mean is judged with whichever each has). A mean that
is no number (NaN or empty) on both sides is listed as undefined on both, not as an interval that does not
overlap. Every changed cell is listed, also
those whose interval overlaps (reported, not hidden), and cells without an interval (choices, counts, the papers'
constants) are listed when they changed but not judged. Exit status 0 when reproduced, 1 when not, 2 on bad
input. Standard library only.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from wsol_utils.studies.provenance import read_manifest

#: Tables compared, in each folder.
TABLE_GLOB = "table_*.csv"
#: ``"x ±"`` is the half-width of the interval around the mean in column ``"x"`` (wsol_utils.studies.tables).
HALF_WIDTH_SUFFIX = " ±"
#: ``"x low"`` / ``"x high"``: the ends of the (range-bounded) interval of the mean in column ``"x"``.
LOW_SUFFIX = " low"
HIGH_SUFFIX = " high"
INTERVAL_SUFFIXES: tuple[str, ...] = (HALF_WIDTH_SUFFIX, LOW_SUFFIX, HIGH_SUFFIX)
#: ``"x excludes 0"`` says whether the interval of the paired difference ``"x"`` excludes 0 (``True``/``False``).
VERDICT_SUFFIX = " excludes 0"
#: A column whose name holds one of these (lower case) is a difference; so is every column of a table whose file
#: name holds ``"difference"``. Without a verdict column of its own, its verdict is derived (:func:`derived_verdict`).
DIFFERENCE_MARKERS = ("difference", " - ", "δ", "gain")
#: A leading column whose name holds this is a result (a value chosen on val), not a key.
CHOICE_MARKER = "chosen"

Row = dict[str, str]


@dataclasses.dataclass(frozen=True)
class Table:
    """A table CSV as text: its column names in order and its rows (``{column: cell}``), cells as written."""

    columns: list[str]
    rows: list[Row]


@dataclasses.dataclass(frozen=True)
class Cell:
    """One cell that differs between the folders: ``table`` (file name), ``row`` (its key, ``"col=value; ..."``),
    ``column``, and its text in ``A`` and ``B`` (a mean cell as ``"mean ± hw"``)."""

    table: str
    row: str
    column: str
    committed: str
    fresh: str


@dataclasses.dataclass
class Comparison:
    """The outcome of :func:`compare`. ``mode`` is ``"identical"`` (case a) or ``"intervals"`` (case b)."""

    committed: str
    fresh: str
    mode: str
    machine_note: str
    tables_compared: list[str] = dataclasses.field(default_factory=list)
    tables_only_in_committed: list[str] = dataclasses.field(default_factory=list)
    tables_only_in_fresh: list[str] = dataclasses.field(default_factory=list)
    tables_not_byte_identical: list[str] = dataclasses.field(default_factory=list)
    rows_only_in_committed: list[str] = dataclasses.field(default_factory=list)
    rows_only_in_fresh: list[str] = dataclasses.field(default_factory=list)
    changed_but_overlapping: list[Cell] = dataclasses.field(default_factory=list)
    not_overlapping: list[Cell] = dataclasses.field(default_factory=list)
    changed_verdicts: list[Cell] = dataclasses.field(default_factory=list)
    changed_without_interval: list[Cell] = dataclasses.field(default_factory=list)
    columns_only_in_committed: list[str] = dataclasses.field(default_factory=list)
    columns_only_in_fresh: list[str] = dataclasses.field(default_factory=list)
    undefined_on_both_sides: list[Cell] = dataclasses.field(default_factory=list)

    @property
    def reproduced(self) -> bool:
        """Case a: every table in both folders and byte-identical. Case b: every table, row and column in both
        folders, every interval overlapping its twin, no verdict changed (a mean undefined on both sides is
        reported, not failed)."""
        if self.tables_only_in_committed or self.tables_only_in_fresh:
            return False
        if self.mode == "identical":
            return not self.tables_not_byte_identical
        return not (
            self.rows_only_in_committed
            or self.rows_only_in_fresh
            or self.columns_only_in_committed
            or self.columns_only_in_fresh
            or self.not_overlapping
            or self.changed_verdicts
        )


# --------------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------------


def read_table(path: Path) -> Table:
    """The CSV at ``path`` as text; raises ``ValueError`` naming the file when a row's length differs from the
    header's."""
    with path.open(encoding="utf-8", newline="") as handle:
        lines = list(csv.reader(handle))
    if not lines:
        return Table(columns=[], rows=[])
    columns, body = lines[0], lines[1:]
    for number, cells in enumerate(body, start=2):
        if len(cells) != len(columns):
            raise ValueError(f"{path}: line {number} has {len(cells)} cells, the header {len(columns)}; not a table")
    return Table(columns=columns, rows=[dict(zip(columns, cells)) for cells in body])


def machine_identity(folder: Path) -> tuple[str, str, str] | None:
    """``(cpu_model, cpu_capability, compute dtypes)`` recorded by the entries of ``folder``'s ``PROVENANCE.json``,
    the dtypes as the sorted set of the entries' ``compute_dtype`` joined by ``" | "`` (a folder trained in bf16
    also holds float32 entries: tables made without training); ``None`` when no entry records a machine, when a
    model or capability is unknown, or when entries disagree on them (a mixed folder). Two folders can be
    byte-identical only when all three agree: fp32 and bf16 training on one CPU are two floating-point paths."""
    found, dtypes = set(), set()
    for entry in read_manifest(folder).values():
        made_on = entry.get("machine")
        if isinstance(made_on, dict):
            found.add((made_on.get("cpu_model"), made_on.get("cpu_capability")))
            dtypes.add(str(made_on.get("compute_dtype")))
    if len(found) != 1:
        return None
    model, capability = found.pop()
    if not isinstance(model, str) or not isinstance(capability, str):
        return None
    return model, capability, " | ".join(sorted(dtypes))


def table_names(folder: Path) -> set[str]:
    """The file names of ``folder``'s table CSVs (:data:`TABLE_GLOB`)."""
    return {path.name for path in folder.glob(TABLE_GLOB) if path.is_file()}


# --------------------------------------------------------------------------------------------------
# Column roles
# --------------------------------------------------------------------------------------------------


def measured_columns(columns: Sequence[str]) -> list[str]:
    """The columns ``x`` that have a half-width column ``"x ±"``, or both ends ``"x low"`` / ``"x high"``, beside
    them (a mean with its interval)."""
    present = set(columns)
    return [
        name
        for name in columns
        if name + HALF_WIDTH_SUFFIX in present or {name + LOW_SUFFIX, name + HIGH_SUFFIX} <= present
    ]


def verdict_columns(columns: Sequence[str]) -> list[str]:
    """The explicit verdict columns (``"x excludes 0"``)."""
    return [name for name in columns if name.endswith(VERDICT_SUFFIX)]


def key_columns(columns: Sequence[str]) -> list[str]:
    """The columns that name a row: the leading columns before the first mean (method, branch, delta, head...),
    less half-widths, verdicts and values chosen on val (:data:`CHOICE_MARKER`), which are results."""
    measured = set(measured_columns(columns))
    keys = []
    for name in columns:
        if name in measured:
            break
        if not name.endswith((*INTERVAL_SUFFIXES, VERDICT_SUFFIX)) and CHOICE_MARKER not in name.lower():
            keys.append(name)
    return keys


def is_difference(table: str, column: str) -> bool:
    """Whether ``column`` of the table file ``table`` is a paired difference (:data:`DIFFERENCE_MARKERS`)."""
    return "difference" in table.lower() or any(marker in column.lower() for marker in DIFFERENCE_MARKERS)


# --------------------------------------------------------------------------------------------------
# Cells
# --------------------------------------------------------------------------------------------------


def parse_number(text: str) -> float | None:
    """The cell as a float; ``None`` when empty or not a number."""
    try:
        return float(text)
    except ValueError:
        return None


def is_undefined(text: str | None) -> bool:
    """Whether a mean cell holds no number: missing, empty, not a number, or NaN."""
    value = parse_number(text or "")
    return value is None or math.isnan(value)


def interval(row: Row, column: str) -> tuple[float, float] | None:
    """``(low, high)`` of the mean in ``column``: its ``"x low"`` / ``"x high"`` columns when the table has them (a
    range-bounded interval), else ``mean ∓ "x ±"`` (a missing half width counts as 0); ``None`` without a mean."""
    mean = parse_number(row.get(column, ""))
    if mean is None:
        return None
    low, high = parse_number(row.get(column + LOW_SUFFIX, "")), parse_number(row.get(column + HIGH_SUFFIX, ""))
    if low is not None and high is not None and math.isfinite(low) and math.isfinite(high):
        return min(low, mean), max(high, mean)
    half_width = parse_number(row.get(column + HALF_WIDTH_SUFFIX, ""))
    reach = abs(half_width) if half_width is not None and math.isfinite(half_width) else 0.0
    return mean - reach, mean + reach


def overlaps(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """Whether the intervals ``a = (low, high)`` and ``b`` share a point (with a relative slack of 1e-12 for
    rounding)."""
    slack = 1e-12 * max(1.0, *(abs(v) for v in (*a, *b)))
    return a[0] <= b[1] + slack and b[0] <= a[1] + slack


def derived_verdict(row: Row, column: str) -> str:
    """``"True"`` when the interval of the difference in ``column`` excludes 0, ``"False"`` when it does not,
    ``""`` without a mean."""
    found = interval(row, column)
    return "" if found is None else str(found[0] > 0 or found[1] < 0)


def shown(row: Row, column: str) -> str:
    """A mean cell as ``"mean [low, high]"`` when the row has the interval's ends, else ``"mean ± hw"`` (``"mean"``
    without a half-width column), as in the CSV's text."""
    low, high = row.get(column + LOW_SUFFIX), row.get(column + HIGH_SUFFIX)
    if low is not None and high is not None:
        return f"{row.get(column, '')} [{low}, {high}]"
    half_width = row.get(column + HALF_WIDTH_SUFFIX)
    return row.get(column, "") if half_width is None else f"{row.get(column, '')} ± {half_width}"


def row_keys(table: Table) -> dict[str, Row]:
    """``{"col=value; ...": row}`` by :func:`key_columns`; a repeated key gets ``" (#2)"``, ``" (#3)"``..."""
    keys = key_columns(table.columns)
    named: dict[str, Row] = {}
    for row in table.rows:
        name = "; ".join(f"{key}={row[key]}" for key in keys) or "(row)"
        unique, count = name, 1
        while unique in named:
            count += 1
            unique = f"{name} (#{count})"
        named[unique] = row
    return named


# --------------------------------------------------------------------------------------------------
# Comparing
# --------------------------------------------------------------------------------------------------


def compare_rows(name: str, key: str, a: Row, b: Row, columns: Sequence[str], result: Comparison) -> None:
    """Add the differences between the twin rows ``a`` (committed) and ``b`` (fresh) of table ``name`` to
    ``result``: means (overlapping or not, or undefined on both sides), verdicts (explicit or derived), and other
    changed cells. A column one row lacks (its table's) is left to :func:`compare_tables`."""
    measured = [column for column in measured_columns(columns) if column in a and column in b]
    verdicts = [column for column in verdict_columns(columns) if column in a and column in b]
    for column in measured:
        if all(a.get(column + suffix) == b.get(column + suffix) for suffix in ("", *INTERVAL_SUFFIXES)):
            continue
        cell = Cell(name, key, column, shown(a, column), shown(b, column))
        if is_undefined(a[column]) and is_undefined(b[column]):
            result.undefined_on_both_sides.append(cell)
            continue
        found_a, found_b = interval(a, column), interval(b, column)
        fits = found_a is not None and found_b is not None and overlaps(found_a, found_b)
        (result.changed_but_overlapping if fits else result.not_overlapping).append(cell)
    for column in verdicts:
        if a.get(column, "").strip().lower() != b.get(column, "").strip().lower():
            result.changed_verdicts.append(Cell(name, key, column, a.get(column, ""), b.get(column, "")))
    for column in measured:
        if column + VERDICT_SUFFIX in columns or not is_difference(name, column):
            continue
        before, after = derived_verdict(a, column), derived_verdict(b, column)
        if before != after:
            result.changed_verdicts.append(Cell(name, key, f"{column}{VERDICT_SUFFIX} (|x| > ±)", before, after))
    judged = set(measured) | {c + suffix for c in measured for suffix in INTERVAL_SUFFIXES}
    judged |= set(verdicts) | set(key_columns(columns))
    for column in columns:
        if column not in judged and column in a and column in b and a[column] != b[column]:
            result.changed_without_interval.append(Cell(name, key, column, a.get(column, ""), b.get(column, "")))


def compare_tables(name: str, a: Table, b: Table, result: Comparison) -> None:
    """Match the rows of table ``name`` by key and compare twins (:func:`compare_rows`). A column in one table only
    is listed once (``"<table>: <column>"``), unless it is an interval column of a mean both tables have."""
    shared = set(a.columns) & set(b.columns)
    means = set(measured_columns([*a.columns, *b.columns])) & shared
    forms = {mean + suffix for mean in means for suffix in INTERVAL_SUFFIXES}
    result.columns_only_in_committed += [f"{name}: {c}" for c in a.columns if c not in shared and c not in forms]
    result.columns_only_in_fresh += [f"{name}: {c}" for c in b.columns if c not in shared and c not in forms]
    rows_a, rows_b = row_keys(a), row_keys(b)
    result.rows_only_in_committed += [f"{name}: {key}" for key in rows_a if key not in rows_b]
    result.rows_only_in_fresh += [f"{name}: {key}" for key in rows_b if key not in rows_a]
    columns = list(dict.fromkeys([*a.columns, *b.columns]))
    for key, row in rows_a.items():
        if key in rows_b:
            compare_rows(name, key, row, rows_b[key], columns, result)


def compare(committed: str | Path, fresh: str | Path) -> Comparison:
    """Compare the table CSVs of the folders ``committed`` (A) and ``fresh`` (B); see the module's docstring.

    Raises ``FileNotFoundError`` naming a folder that is missing or holds no table CSV.
    """
    a, b = Path(committed), Path(fresh)
    for folder in (a, b):
        if not folder.is_dir():
            raise FileNotFoundError(f"compare-figures: {folder} is not a folder; give two figures folders")
    names_a, names_b = table_names(a), table_names(b)
    if not names_a:
        raise FileNotFoundError(f"compare-figures: {a} holds no {TABLE_GLOB}; give the committed figures folder")
    mode, note = _mode(a, b)
    result = Comparison(str(a), str(b), mode, note)
    result.tables_only_in_committed = sorted(names_a - names_b)
    result.tables_only_in_fresh = sorted(names_b - names_a)
    result.tables_compared = sorted(names_a & names_b)
    for name in result.tables_compared:
        if (a / name).read_bytes() != (b / name).read_bytes():
            result.tables_not_byte_identical.append(name)
            compare_tables(name, read_table(a / name), read_table(b / name), result)
    return result


def _mode(a: Path, b: Path) -> tuple[str, str]:
    """``("identical", why)`` when both folders record the same CPU model, capability and compute dtypes
    (:func:`machine_identity`), else ``("intervals", why)``."""
    machine_a, machine_b = machine_identity(a), machine_identity(b)
    if machine_a is None:
        return "intervals", f"{a} records no single machine (CPU model and capability): intervals and verdicts judged"
    if machine_b is None:
        return "intervals", f"{b} records no single machine (CPU model and capability): intervals and verdicts judged"
    if machine_a == machine_b:
        return "identical", f"same machine ({', '.join(machine_a)}): tables must be byte-identical"
    return "intervals", (
        f"other machine ({', '.join(machine_a)} vs {', '.join(machine_b)}): intervals must overlap, verdicts stay"
    )


# --------------------------------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------------------------------


def _cells(title: str, cells: Sequence[Cell]) -> list[str]:
    lines = [f"{title}: {len(cells)}"]
    lines += [f"  {c.table} [{c.row}] {c.column}: {c.committed} -> {c.fresh}" for c in cells]
    return lines


def _names(title: str, names: Sequence[str]) -> list[str]:
    return [f"{title}: {len(names)}", *(f"  {name}" for name in names)]


def summary(result: Comparison) -> str:
    """A short human report: the mode and why, REPRODUCED or NOT REPRODUCED, then each list with its count."""
    verdict = "REPRODUCED" if result.reproduced else "NOT REPRODUCED"
    lines = [
        f"compare-figures {result.committed} (committed) vs {result.fresh} (fresh): {verdict}",
        f"mode: {result.mode} -- {result.machine_note}",
        f"tables compared: {len(result.tables_compared)}",
    ]
    lines += _names("tables only in the committed folder", result.tables_only_in_committed)
    lines += _names("tables only in the fresh folder", result.tables_only_in_fresh)
    lines += _names("tables not byte-identical", result.tables_not_byte_identical)
    lines += _names("rows only in the committed folder", result.rows_only_in_committed)
    lines += _names("rows only in the fresh folder", result.rows_only_in_fresh)
    lines += _names("columns only in the committed folder", result.columns_only_in_committed)
    lines += _names("columns only in the fresh folder", result.columns_only_in_fresh)
    lines += _cells("cells whose interval does not overlap", result.not_overlapping)
    lines += _cells("verdicts changed", result.changed_verdicts)
    lines += _cells("cells changed, interval overlaps (reported, not failed)", result.changed_but_overlapping)
    lines += _cells("cells without an interval changed (reported, not judged)", result.changed_without_interval)
    lines += _cells("means undefined on both sides (reported, not judged)", result.undefined_on_both_sides)
    return "\n".join(lines)


def as_json(result: Comparison) -> dict[str, Any]:
    """The comparison as a JSON-able dict, with ``"reproduced"``."""
    return {**dataclasses.asdict(result), "reproduced": result.reproduced}


def main(argv: list[str] | None = None) -> int:
    """``python -m wsol_utils compare-figures A B [--json]``: 0 when B reproduces A, 1 when not, 2 on bad input."""
    parser = argparse.ArgumentParser(
        prog="python -m wsol_utils compare-figures",
        description="Does a fresh figures folder (B) reproduce the committed one (A)? Same CPU model and "
        "capability: every table_*.csv byte-identical; otherwise every mean's interval overlaps its twin's and "
        "every verdict is unchanged. Exit 0 when reproduced, 1 when not.",
    )
    parser.add_argument("committed", help="the committed figures folder (A), e.g. figures")
    parser.add_argument("fresh", help="the freshly made figures folder (B)")
    parser.add_argument("--json", action="store_true", help="print the comparison as JSON")
    args = parser.parse_args(argv)
    try:
        result = compare(args.committed, args.fresh)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(as_json(result), indent=1, ensure_ascii=False) if args.json else summary(result))
    return 0 if result.reproduced else 1
