"""The Protocol value (wsol_utils.scoring.protocol): its tau grid, validation, labels and import layer."""

from __future__ import annotations

import ast
import dataclasses
import inspect

import numpy as np
import pytest

from wsol_utils.scoring import protocol as protocol_module
from wsol_utils.scoring import scorer as scorer_module
from wsol_utils.scoring.protocol import (
    PAPERS,
    TAU_GRID,
    TAU_GRID_STEP,
    WSOLEVAL,
    WSOLEVAL_METRICS,
    Protocol,
    check_erase_with,
    check_tau,
)


def test_the_tau_grid_runs_from_001_to_095_in_steps_of_001_with_02_on_it_exactly() -> None:
    assert TAU_GRID[0] == 0.01 and TAU_GRID[-1] == 0.95 and len(TAU_GRID) == 95
    np.testing.assert_allclose(np.diff(TAU_GRID), TAU_GRID_STEP, atol=1e-12)
    assert 0.2 in TAU_GRID and TAU_GRID.index(0.2) == 19
    assert PAPERS.tau_grid == TAU_GRID == WSOLEVAL.tau_grid


def test_the_two_named_protocols() -> None:
    assert (PAPERS.tau, PAPERS.iou_threshold, PAPERS.erase_with, PAPERS.upsample) == (0.2, 0.5, "pred", "bicubic")
    assert not PAPERS.gt_erased and not WSOLEVAL.gt_erased  # label-free by default
    assert WSOLEVAL.reports == tuple(WSOLEVAL_METRICS) and "gt_known_loc_acc" in PAPERS.reports
    with pytest.raises(dataclasses.FrozenInstanceError):
        PAPERS.tau = 0.3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("changes", "word"),
    [
        ({"tau": 0.0}, "tau"),
        ({"tau": 1.5}, "tau"),
        ({"tau": float("nan")}, "tau"),
        ({"tau": True}, "tau"),
        ({"iou_threshold": 0.0}, "iou_threshold"),
        ({"erase_with": "top5"}, "erase_with"),
        ({"upsample": "nearest"}, "upsample"),
        ({"wsoleval": "all"}, "wsoleval"),
        ({"tau_grid": (0.5, 0.2)}, "tau_grid"),
        ({"tau_grid": ()}, "tau_grid"),
        ({"tau_grid": (0.0, 0.5)}, "tau"),
        ({"reports": ("accuracy",)}, "accuracy"),
    ],
)
def test_a_protocol_is_validated_on_construction(changes, word) -> None:
    with pytest.raises(ValueError, match=word):
        PAPERS.replace(**changes)


def test_checks_name_the_caller_and_return_the_value() -> None:
    assert check_tau(1, "x") == 1.0 and isinstance(check_tau(np.float32(0.5)), float)
    with pytest.raises(ValueError, match=r"^explorer: tau="):
        check_tau("0.2", "explorer")
    assert check_erase_with("gt") == "gt"
    with pytest.raises(ValueError, match=r"^evaluate: erase_with="):
        check_erase_with("label", "evaluate")


def test_labels_name_the_protocol_tau_and_gt_erasing() -> None:
    assert PAPERS.label("gt_known_loc_acc") == "GT-known loc acc @0.2 (papers)"
    assert PAPERS.label("loc_err_top1") == "top-1 loc err @0.2 (papers)"
    assert PAPERS.label("cls_err_top1") == "cls err top-1 (papers)"  # no tau: classification does not box
    assert WSOLEVAL.label("maxboxacc_v2") == "MaxBoxAccV2 (wsoleval)"
    official = PAPERS.replace(erase_with="gt")
    assert official.label("gt_known_loc_acc") == "GT-known loc acc @0.2 (papers, GT-erased)"
    assert official.replace(name="wsoleval").label("pxap") == "PxAP (wsoleval, GT-erased)"
    assert PAPERS.replace(tau=0.35).label("gt_known_loc_err") == "GT-known loc err @0.35 (papers)"
    assert list(WSOLEVAL.columns().values()) == ["MaxBoxAcc (wsoleval)", "MaxBoxAccV2 (wsoleval)", "PxAP (wsoleval)"]
    assert "label-informed" in official.describe() and "predicted class" in PAPERS.describe()
    with pytest.raises(KeyError, match="unknown metric"):
        PAPERS.label("accuracy")


def test_a_box_localizes_at_iou_threshold_inclusive() -> None:
    ious = np.array([0.0, 0.4999, 0.5, 0.9])
    np.testing.assert_array_equal(PAPERS.localized(ious), [False, False, True, True])
    np.testing.assert_array_equal(PAPERS.replace(iou_threshold=0.3).localized(ious), [False, True, True, True])


@pytest.mark.parametrize("module", [protocol_module, scorer_module])
def test_the_scoring_modules_import_no_higher_layer(module) -> None:
    tree = ast.parse(inspect.getsource(module))
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    ours = {name for name in imported if name.startswith("wsol_utils")}
    higher = (
        "wsol_utils.engine",
        "wsol_utils.ui.suite",
        "wsol_utils.studies.tables",
        "wsol_utils.ui.widgets",
        "wsol_utils.data",
    )
    assert not [name for name in ours if name.startswith(higher)], ours
    if module is protocol_module:
        assert ours == {"wsol_utils.nets.maps"}
    assert Protocol is protocol_module.Protocol
