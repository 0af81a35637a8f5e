"""compare-figures: what "reproduced" means, on hand-built figure folders (wsol_utils/studies/compare_figures.py)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from wsol_utils.__main__ import main as cli
from wsol_utils.studies import compare_figures

REPO = Path(__file__).resolve().parents[1]

MAIN = (
    "method,cls err,cls err ±,MaxBoxAccV2,MaxBoxAccV2 ±,paper CUB: cls err\n"
    "CAM,6.5,2.0,59.0,8.0,23.4\n"
    "ACoL,6.0,9.0,60.0,40.0,28.1\n"
)
DIFFERENCES = (
    "head (px),method,seeds,GT-known,GT-known ±,GT-known excludes 0\n"
    "7.04,acol,3,-11.8,26.0,False\n"
    "7.04,hclnet,3,9.7,4.9,True\n"
)
GAINS = "tau,HCLNet - CAM,HCLNet - CAM ±\n0.2,19.3,22.8\n"
MACHINE = {"cpu_model": "AMD EPYC 9B14", "cpu_capability": "AVX512", "compute_dtype": "float32 (cpu)"}


def folder(path: Path, tables: dict[str, str], machine: dict | None = None) -> Path:
    """A figures folder holding ``tables`` (file name -> CSV text), with a PROVENANCE.json recording ``machine``
    for each (none when ``machine`` is None)."""
    path.mkdir(parents=True)
    for name, text in tables.items():
        (path / name).write_text(text, encoding="utf-8")
    if machine is not None:
        manifest = {name: {"source_hash": "0" * 12, "machine": machine} for name in tables}
        (path / "PROVENANCE.json").write_text(json.dumps(manifest), encoding="utf-8")
    return path


def pair(tmp_path: Path, fresh_tables: dict[str, str], machine_a=None, machine_b=None) -> tuple[Path, Path]:
    committed = {"table_main.csv": MAIN, "table_x_differences.csv": DIFFERENCES, "table_gain.csv": GAINS}
    return folder(tmp_path / "a", committed, machine_a), folder(tmp_path / "b", fresh_tables, machine_b)


def fresh(**replaced: str) -> dict[str, str]:
    tables = {"table_main.csv": MAIN, "table_x_differences.csv": DIFFERENCES, "table_gain.csv": GAINS}
    return {**tables, **replaced}


def test_identical_folders_reproduce(tmp_path, capsys):
    a, b = pair(tmp_path, fresh())
    result = compare_figures.compare(a, b)
    assert result.reproduced and result.mode == "intervals"
    assert result.tables_compared == ["table_gain.csv", "table_main.csv", "table_x_differences.csv"]
    assert cli(["compare-figures", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert ": REPRODUCED" in out and "records no single machine" in out


def test_a_changed_cell_whose_interval_overlaps_is_reported_and_passes(tmp_path):
    # CAM's MaxBoxAccV2 59.0 ± 8.0 -> 50.0 ± 2.0: [51, 67] and [48, 52] overlap.
    a, b = pair(tmp_path, fresh(**{"table_main.csv": MAIN.replace("59.0,8.0", "50.0,2.0")}))
    result = compare_figures.compare(a, b)
    assert result.reproduced
    assert result.changed_but_overlapping == [
        compare_figures.Cell("table_main.csv", "method=CAM", "MaxBoxAccV2", "59.0 ± 8.0", "50.0 ± 2.0")
    ]
    assert result.tables_not_byte_identical == ["table_main.csv"] and not result.not_overlapping


def test_a_cell_whose_interval_does_not_overlap_fails(tmp_path, capsys):
    # [51, 67] and [47, 50.9]: a gap of 0.1.
    a, b = pair(tmp_path, fresh(**{"table_main.csv": MAIN.replace("59.0,8.0", "48.95,1.95")}))
    result = compare_figures.compare(a, b)
    assert not result.reproduced
    assert [(c.row, c.column) for c in result.not_overlapping] == [("method=CAM", "MaxBoxAccV2")]
    assert cli(["compare-figures", str(a), str(b)]) == 1
    assert "NOT REPRODUCED" in capsys.readouterr().out


def test_intervals_that_touch_overlap():
    # 59 ± 8 = [51, 67] and 49 ± 2 = [47, 51] touch; 48.9 ± 2 = [46.9, 50.9] does not reach 51
    assert compare_figures.overlaps((51.0, 67.0), (47.0, 51.0))
    assert not compare_figures.overlaps((51.0, 67.0), (46.9, 50.9))


def test_range_bounded_ends_are_used_instead_of_the_half_width():
    # 98 ± 5 is [93, 103] by the half width but [93, 100] within a percentage's range: 100.5 ± 0.2 is outside it
    row_a = {"acc": "98.0", "acc ±": "5.0", "acc low": "93.0", "acc high": "100.0"}
    row_b = {"acc": "100.5", "acc ±": "0.2"}
    bounded, plain = compare_figures.interval(row_a, "acc"), compare_figures.interval(row_b, "acc")
    assert bounded == (93.0, 100.0) and plain == pytest.approx((100.3, 100.7))
    assert bounded is not None and plain is not None and not compare_figures.overlaps(bounded, plain)
    assert compare_figures.key_columns(["method", "acc", "acc ±", "acc low", "acc high"]) == ["method"]
    assert compare_figures.derived_verdict({"d": "1.0", "d ±": "3.0", "d low": "0.5", "d high": "4.0"}, "d") == "True"


def test_a_flipped_explicit_verdict_fails(tmp_path):
    # hclnet 9.7 ± 4.9 (excludes 0) -> 5.0 ± 5.5 (does not): the intervals overlap, the verdict flips.
    changed = DIFFERENCES.replace("9.7,4.9,True", "5.0,5.5,False")
    a, b = pair(tmp_path, fresh(**{"table_x_differences.csv": changed}))
    result = compare_figures.compare(a, b)
    assert not result.reproduced and not result.not_overlapping
    assert result.changed_verdicts == [
        compare_figures.Cell(
            "table_x_differences.csv", "head (px)=7.04; method=hclnet; seeds=3", "GT-known excludes 0", "True", "False"
        )
    ]


def test_a_flipped_derived_verdict_fails(tmp_path):
    # HCLNet - CAM 19.3 ± 22.8 (does not exclude 0) -> 19.3 ± 18.0 (excludes 0), no verdict column.
    a, b = pair(tmp_path, fresh(**{"table_gain.csv": GAINS.replace("22.8", "18.0")}))
    result = compare_figures.compare(a, b)
    assert not result.reproduced
    assert [(c.column, c.committed, c.fresh) for c in result.changed_verdicts] == [
        ("HCLNet - CAM excludes 0 (|x| > ±)", "False", "True")
    ]
    # The same change in a column that is not a difference is no verdict.
    assert compare_figures.derived_verdict({"x": "-3", "x ±": "2"}, "x") == "True"
    assert not compare_figures.is_difference("table_main.csv", "MaxBoxAccV2")


def test_same_machine_demands_identical_bytes(tmp_path):
    # One byte changed, well inside the interval: fine on another machine, not on the same one.
    changed = fresh(**{"table_main.csv": MAIN.replace("59.0,8.0", "59.1,8.0")})
    a, b = pair(tmp_path / "same", changed, MACHINE, MACHINE)
    result = compare_figures.compare(a, b)
    assert result.mode == "identical" and not result.reproduced
    assert result.tables_not_byte_identical == ["table_main.csv"]
    assert "same machine (AMD EPYC 9B14, AVX512, float32 (cpu))" in compare_figures.summary(result)
    other = {**MACHINE, "cpu_capability": "AVX2"}
    a, b = pair(tmp_path / "other", changed, MACHINE, other)
    assert compare_figures.compare(a, b).mode == "intervals" and compare_figures.compare(a, b).reproduced
    a, b = pair(tmp_path / "unrecorded", changed, None, MACHINE)
    assert compare_figures.compare(a, b).mode == "intervals"
    bf16 = {**MACHINE, "compute_dtype": "float32 weights, training forward autocast bfloat16 (cpu)"}
    a, b = pair(tmp_path / "bf16", changed, MACHINE, bf16)  # the same CPU, another precision: another path
    result = compare_figures.compare(a, b)
    assert result.mode == "intervals" and result.reproduced and "bfloat16" in result.machine_note


def test_same_machine_identical_bytes_reproduce(tmp_path):
    a, b = pair(tmp_path, fresh(), MACHINE, MACHINE)
    result = compare_figures.compare(a, b)
    assert result.mode == "identical" and result.reproduced


def test_missing_tables_rows_and_changed_choices_are_reported(tmp_path, capsys):
    tables = fresh(**{"table_main.csv": MAIN.replace("ACoL,", "HCLNet,").replace("23.4", "23.5")})
    del tables["table_gain.csv"]
    tables["table_new.csv"] = GAINS
    a, b = pair(tmp_path, tables)
    result = compare_figures.compare(a, b)
    assert not result.reproduced
    assert (result.tables_only_in_committed, result.tables_only_in_fresh) == (["table_gain.csv"], ["table_new.csv"])
    assert result.rows_only_in_committed == ["table_main.csv: method=ACoL"]
    assert result.rows_only_in_fresh == ["table_main.csv: method=HCLNet"]
    assert [(c.column, c.committed, c.fresh) for c in result.changed_without_interval] == [
        ("paper CUB: cls err", "23.4", "23.5")
    ]
    assert cli(["compare-figures", str(a), str(b), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["reproduced"] is False and report["tables_only_in_committed"] == ["table_gain.csv"]


def test_key_columns_leave_out_results():
    columns = ["delta", "chosen", "acc", "acc ±", "x excludes 0"]
    assert compare_figures.key_columns(columns) == ["delta"]
    assert compare_figures.key_columns(["method", "tau chosen on val", "acc", "acc ±"]) == ["method"]
    assert compare_figures.measured_columns(columns) == ["acc"]


def test_bad_input_names_the_folder(tmp_path, capsys):
    assert cli(["compare-figures", str(tmp_path / "nowhere"), str(tmp_path)]) == 2
    assert "nowhere is not a folder" in capsys.readouterr().err
    assert cli(["compare-figures", str(tmp_path), str(tmp_path)]) == 2
    assert "holds no table_*.csv" in capsys.readouterr().err


def test_committed_figures_reproduce_themselves(tmp_path):
    """The command itself, on the committed figures/ against a copy of them: exit 0."""
    shutil.copytree(REPO / "figures", tmp_path / "copy")
    tables = compare_figures.table_names(REPO / "figures")
    assert len(tables) >= 1
    for name in sorted(tables):  # every committed table parses, with rows keyed uniquely
        table = compare_figures.read_table(REPO / "figures" / name)
        assert compare_figures.key_columns(table.columns), name
        assert len(compare_figures.row_keys(table)) == len(table.rows)
    done = subprocess.run(
        [sys.executable, "-m", "wsol_utils", "compare-figures", str(REPO / "figures"), str(tmp_path / "copy")],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "REPRODUCED" in done.stdout and "NOT" not in done.stdout


@pytest.mark.parametrize("name", ["table_when_erasing_helps_differences.csv"])
def test_committed_differences_have_explicit_verdicts(name):
    table = compare_figures.read_table(REPO / "figures" / name)
    assert compare_figures.verdict_columns(table.columns)


def test_a_mean_undefined_on_both_sides_is_reported_as_such_not_as_a_non_overlap(tmp_path, capsys):
    # CAM's mean is NaN in both; the interval went from "±" to "low"/"high" (a renamed interval, same mean column)
    committed = "method,x,x ±\nCAM,nan,nan\nACoL,5.0,1.0\n"
    renamed = "method,x,x low,x high\nCAM,nan,,\nACoL,5.5,4.0,6.0\n"
    a, b = folder(tmp_path / "a", {"table_t.csv": committed}), folder(tmp_path / "b", {"table_t.csv": renamed})
    result = compare_figures.compare(a, b)
    assert result.reproduced and not result.not_overlapping
    assert result.undefined_on_both_sides == [
        compare_figures.Cell("table_t.csv", "method=CAM", "x", "nan ± nan", "nan [, ]")
    ]
    assert [c.row for c in result.changed_but_overlapping] == ["method=ACoL"]  # 5.0 ± 1.0 and 5.5 in [4.0, 6.0]
    assert not (result.columns_only_in_committed or result.columns_only_in_fresh)
    assert cli(["compare-figures", str(a), str(b)]) == 0
    assert "means undefined on both sides (reported, not judged): 1" in capsys.readouterr().out


def test_a_renamed_mean_column_is_a_column_in_one_folder_not_a_non_overlap(tmp_path):
    committed = "method,x,x ±,y,y ±\nCAM,nan,nan,1.0,0.5\n"
    renamed = "method,x (papers),x (papers) ±,y,y ±\nCAM,nan,nan,1.0,0.5\n"
    a, b = folder(tmp_path / "a", {"table_t.csv": committed}), folder(tmp_path / "b", {"table_t.csv": renamed})
    result = compare_figures.compare(a, b)
    assert not result.not_overlapping and not result.changed_verdicts and not result.changed_without_interval
    assert result.columns_only_in_committed == ["table_t.csv: x", "table_t.csv: x ±"]
    assert result.columns_only_in_fresh == ["table_t.csv: x (papers)", "table_t.csv: x (papers) ±"]
    assert not result.reproduced  # its numbers cannot be matched, as a row in one folder only
