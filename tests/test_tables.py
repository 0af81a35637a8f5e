"""Tests for wsol_utils.studies.tables: reference numbers, table shapes, Markdown and atomic writing."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from wsol_utils.studies import tables


def _summary(base: float) -> dict[str, float]:
    return {
        "cls_err_top1": base,
        "cls_err_top5": base + 1,
        "loc_err_top1": base + 2,
        "loc_err_top5": base + 3,
        "gt_known_loc_err": base + 4,
        "maxboxacc": base + 5,
        "maxboxacc_v2": base + 6,
    }


def test_reference_numbers_match_spec():
    # docs/methods.md §2.3, typed in by hand from the papers.
    assert tables.ACOL_TABLE6["CUB"][0.6] == (54.15, 42.79)
    assert tables.ACOL_TABLE6["ILSVRC"][0.5] == (62.62, 52.03)
    assert tables.HCLNET_TABLE4_CUB[("C-CAM", "l1")]["loc_err_top1"] == 49.50
    assert math.isnan(tables.HCLNET_TABLE4_CUB[("threshold", "add")]["cls_err_top5"])
    assert tables.HCLNET_TABLE1_CUB["hclnet"]["loc_err_top5"] == 41.06
    assert tables.WSOLEVAL_MAXBOXACCV2["CUB"] == {"cam": 63.7, "acol": 57.4}


def test_fusion_ablation_table_rows_columns_and_values():
    results = {
        (e, f): _summary(10.0 * i) for i, (e, f) in enumerate((e, f) for e in tables.ERASINGS for f in tables.FUSIONS)
    }
    table = tables.fusion_ablation_table(results)
    assert list(zip(table["erasing"], table["fusion"])) == [
        ("threshold", "max"),
        ("threshold", "add"),
        ("threshold", "l1"),
        ("C-CAM", "max"),
        ("C-CAM", "add"),
        ("C-CAM", "l1"),
    ]
    assert list(table.columns) == [
        "erasing",
        "fusion",
        "cls err top-1",
        "cls err top-5",
        "loc err top-1",
        "loc err top-5",
        "GT-known loc err",
        "MaxBoxAccV2",
        "paper CUB: cls err top-1",
        "paper CUB: cls err top-5",
        "paper CUB: loc err top-1",
        "paper CUB: loc err top-5",
    ]
    last = table.iloc[5]
    assert last["loc err top-1"] == 52.0 and last["MaxBoxAccV2"] == 56.0
    assert last["paper CUB: loc err top-1"] == 49.50 and last["paper CUB: loc err top-5"] == 41.20
    assert math.isnan(table.iloc[0]["paper CUB: cls err top-5"])


def test_fusion_ablation_table_missing_row_is_a_clear_error():
    with pytest.raises(ValueError, match=r"lacks results for \[\('C-CAM', 'l1'\)\]"):
        tables.fusion_ablation_table(
            {(e, f): {} for e in tables.ERASINGS for f in tables.FUSIONS if (e, f) != ("C-CAM", "l1")}
        )


def test_threshold_sweep_table_has_paper_columns_beside_ours():
    table = tables.threshold_sweep_table({d: {"loc_err_top1": 100 * d} for d in tables.DELTAS})
    assert table["delta"].tolist() == [0.5, 0.6, 0.7, 0.8, 0.9]
    assert table["loc err top-1"].tolist() == pytest.approx([50, 60, 70, 80, 90])
    assert table["loc err top-5"].isna().all()  # missing in the summaries -> NaN, not 0
    row = table.set_index("delta").loc[0.8]
    assert row["paper CUB: loc err top-1"] == 55.78 and row["paper CUB: loc err top-5"] == 45.17
    assert row["paper ILSVRC: loc err top-1"] == 56.61 and row["paper ILSVRC: loc err top-5"] == 45.45
    with pytest.raises(ValueError, match=r"0.9"):
        tables.threshold_sweep_table({d: {} for d in tables.DELTAS[:-1]})


def test_localization_table_keeps_method_order_and_labels_paper_columns():
    table = tables.localization_table({"hclnet": _summary(1.0), "cam": _summary(2.0)})
    assert table["method"].tolist() == ["HCLNet", "CAM"]
    assert table.iloc[1]["MaxBoxAcc"] == 7.0
    wsoleval = tables.paper_column("MaxBoxAccV2", "CUB (wsoleval)")
    assert math.isnan(table.iloc[0][wsoleval]) and table.iloc[1][wsoleval] == 63.7
    assert table.iloc[0]["paper CUB: loc err top-1"] == 48.95
    ours = [c for c in table.columns if c != "method" and not c.startswith("paper")]
    assert len(ours) == 7
    with pytest.raises(ValueError, match="unknown methods"):
        tables.localization_table({"gradcam": {}})


def test_to_markdown_exact_text():
    frame = pd.DataFrame({"name": ["a", "b"], "x": [1.0, float("nan")], "n": [3, 4]})
    assert tables.to_markdown(frame, digits=1) == (
        "| name | x | n |\n|:---|---:|---:|\n| a | 1.0 | 3 |\n| b | – | 4 |\n"
    )


def test_write_table_round_trips_and_leaves_no_temp_files(tmp_path):
    frame = pd.DataFrame({"delta": [0.5, 0.6], "loc err top-1": [12.345, float("nan")]})
    paths = tables.write_table(frame, tmp_path / "figs", "table_x", title="Sweep")
    assert paths.csv == tmp_path / "figs" / "table_x.csv"
    back = pd.read_csv(paths.csv)
    assert back.columns.tolist() == ["delta", "loc err top-1"]
    assert back["loc err top-1"].iloc[0] == 12.345 and math.isnan(back["loc err top-1"].iloc[1])
    text = paths.markdown.read_text(encoding="utf-8")
    assert text.startswith("# Sweep\n\n") and "| 0.50 | 12.35 |" in text and "| 0.60 | – |" in text
    assert sorted(p.name for p in (tmp_path / "figs").iterdir()) == ["PROVENANCE.json", "table_x.csv", "table_x.md"]


@pytest.mark.parametrize("name", ["", "a/b", "table.csv"])
def test_write_table_rejects_paths_as_names(tmp_path, name):
    with pytest.raises(ValueError, match="bare file stem"):
        tables.write_table(pd.DataFrame({"a": [1]}), tmp_path, name, title="t")


def test_atomic_write_keeps_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "t.md"
    target.write_text("old", encoding="utf-8")
    with pytest.raises(TypeError):
        tables.atomic_write_text(target, 123)  # type: ignore[arg-type]
    assert target.read_text(encoding="utf-8") == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["t.md"]


def test_localization_table_carries_seed_intervals_and_baseline_rows():
    summary = {"cls_err_top1": 5.0, "cls_err_top1 ±": 1.5, "maxboxacc_v2": 40.0, "maxboxacc_v2 ±": 2.0}
    table = tables.localization_table({"cam": summary, "baseline:whole_image": {"maxboxacc_v2": 1.4}})
    assert table["cls err top-1"].tolist()[0] == 5.0 and table["cls err top-1 ±"].tolist()[0] == 1.5
    assert table["MaxBoxAccV2 ±"].tolist()[0] == 2.0 and math.isnan(table["MaxBoxAccV2 ±"].tolist()[1])
    assert table["method"].tolist()[1].startswith("baseline: ")
    assert math.isnan(table.iloc[1]["paper CUB: loc err top-1"]) and table.iloc[0]["paper CUB: loc err top-1"] == 55.85
    with pytest.raises(ValueError, match="baseline:<name>"):
        tables.localization_table({"baseline:nope": {}})


def test_markdown_shows_a_mean_with_its_bounded_ends_as_one_cell():
    table = pd.DataFrame(
        {
            "method": ["CAM", "ACoL"],
            "acc": [98.0, 50.0],
            "acc ±": [5.0, 1.0],
            "acc low": [93.0, 49.0],
            "acc high": [100.0, 51.0],
            "n": [3, 3],
        }
    )
    lines = tables.to_markdown(table, digits=1).splitlines()
    assert lines[0] == "| method | acc | n |"
    assert lines[1] == "|:---|---:|---:|"
    assert lines[2] == "| CAM | 98.0 [93.0, 100.0] | 3 |"
    assert list(table.columns) == ["method", "acc", "acc ±", "acc low", "acc high", "n"]  # the CSV keeps them all
