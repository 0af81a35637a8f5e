"""evaluate() / tau_curve() and the two CLIs on tiny trained runs (wsol_utils.engine.evaluate, cli, cli_eval)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from tiny_data import tiny_run_config

from wsol_utils.__main__ import main as wsol_main
from wsol_utils.engine import RunConfig, evaluate, load_run, tau_curve, train

N_TEST = 24


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    """One tiny trained run per method (1 epoch, 64 images of 32 px)."""
    root = tmp_path_factory.mktemp("engine-eval")
    kwargs = {"num_train": 64, "num_val": 16, "num_test": N_TEST}
    out = {}
    for method in ("cam", "acol", "hclnet"):
        config = tiny_run_config(root, method=method, dataset_kwargs=kwargs)
        out[method] = train(config, runs_dir=root / "runs", progress=False)
    return out


def test_records_and_summary_agree(runs) -> None:
    result = evaluate(runs["acol"], progress=False)
    rec = result.records
    assert len(rec) == N_TEST and rec["image_id"].is_unique
    for branch in ("a", "b", "fused"):
        iou = rec[f"{branch}_iou"].to_numpy()
        assert ((iou >= 0) & (iou <= 1)).all()
        assert (rec[f"{branch}_x1"] >= rec[f"{branch}_x0"]).all()
        gt_known = 100.0 * (iou >= 0.5).mean()
        assert result.summary["branches"][branch]["gt_known_loc_acc"] == pytest.approx(gt_known)
        top1 = 100.0 * ((iou >= 0.5) & rec["correct_top1"].to_numpy()).mean()
        assert result.summary["branches"][branch]["loc_acc_top1"] == pytest.approx(top1)
        assert 0.0 <= result.summary["branches"][branch]["maxboxacc_v2"] <= 100.0
        assert 0.0 <= result.summary["branches"][branch]["pxap"] <= 100.0
        # map mass: object + background = 1 (no ignore pixels in the synthetic set); head within object
        np.testing.assert_allclose(rec[f"{branch}_mass_object"] + rec[f"{branch}_mass_background"], 1.0, atol=1e-5)
        assert (rec[f"{branch}_mass_head"] <= rec[f"{branch}_mass_object"] + 1e-6).all()
    assert result.summary["gt_known_loc_err"] == result.summary["branches"]["fused"]["gt_known_loc_err"]
    assert result.summary["cls_err_top1"] == pytest.approx(100.0 - 100.0 * rec["correct_top1"].mean())
    assert set(result.table().index) == {"a", "b", "fused"}


@pytest.mark.parametrize("method, main", [("acol", "fused"), ("cam", "a")])
def test_wsoleval_main_scores_only_the_main_map_with_the_same_numbers(runs, method, main) -> None:
    full = evaluate(runs[method], progress=False, cache_maps=False).summary
    only_main = evaluate(runs[method], progress=False, cache_maps=False, wsoleval="main").summary
    wsoleval_keys = {"maxboxacc", "maxboxacc_v2", "pxap"}
    for branch, summary in only_main["branches"].items():
        expected = full["branches"][branch]
        if branch != main:  # the papers' metrics stay, the wsoleval ones are not computed
            expected = {k: v for k, v in expected.items() if k not in wsoleval_keys}
        assert summary == expected, branch
    assert only_main["maxboxacc_v2"] == full["maxboxacc_v2"]
    with pytest.raises(ValueError, match="wsoleval"):
        evaluate(runs[method], progress=False, wsoleval="fused")


def test_cam_has_branch_a_only(runs) -> None:
    result = evaluate(runs["cam"], progress=False, wsoleval=False)
    assert list(result.summary["branches"]) == ["a"]
    assert not any(c.startswith(("b_", "fused_")) for c in result.records.columns)


def test_test_time_fusion_changes_only_the_fused_map_and_delta_only_branch_b(runs) -> None:
    base = evaluate(runs["hclnet"], fusion="add", wsoleval=False, progress=False).records
    l1 = evaluate(runs["hclnet"], fusion="l1", wsoleval=False, progress=False).records
    pd.testing.assert_frame_equal(base.filter(regex="^(a|b)_"), l1.filter(regex="^(a|b)_"))
    acol = evaluate(runs["acol"], wsoleval=False, progress=False)
    other_delta = evaluate(runs["acol"], delta=0.3, wsoleval=False, progress=False)
    assert other_delta.summary["delta"] == 0.3 and acol.summary["delta"] == 0.6
    pd.testing.assert_frame_equal(acol.records.filter(regex="^a_"), other_delta.records.filter(regex="^a_"))


def _branch_a_top1(run) -> tuple[np.ndarray, np.ndarray]:
    """``(labels, branch A's top-1)`` of the run's test images, in the evaluation's order."""
    config, model = load_run(run)
    dataset = config.dataset_for("test")
    items = [dataset[index] for index in range(len(dataset))]
    with torch.no_grad():
        logits_a = model(torch.stack([item[0] for item in items])).logits_a
    return np.array([item[1] for item in items]), logits_a.argmax(1).numpy()


def test_erasing_with_the_prediction_changes_only_images_where_branch_a_is_wrong(runs) -> None:
    gt = evaluate(runs["acol"], wsoleval=False, progress=False, erase_with="gt")
    pred = evaluate(runs["acol"], wsoleval=False, progress=False, erase_with="pred")
    labels, top1_a = _branch_a_top1(runs["acol"])
    np.testing.assert_array_equal(gt.records["label"], labels)
    np.testing.assert_array_equal(gt.records["a_iou"], pred.records["a_iou"])  # branch A never sees the erasing
    same = top1_a == labels  # both erase with the GT class here
    assert 0 < same.sum() < len(same)
    np.testing.assert_array_equal(gt.records.loc[same, "fused_iou"], pred.records.loc[same, "fused_iou"])


def test_tau_curve_from_cached_maps_matches_evaluate(runs) -> None:
    curve = tau_curve(runs["acol"], taus=[0.2, 0.5], progress=False)
    assert set(curve["branch"]) == {"a", "b", "fused"}
    for tau in (0.2, 0.5):
        summary = evaluate(runs["acol"], tau=tau, wsoleval=False, progress=False).summary
        for branch, metrics in summary["branches"].items():
            value = curve[(curve["tau"] == tau) & (curve["branch"] == branch)]["gt_known_loc_acc"].item()
            assert value == pytest.approx(metrics["gt_known_loc_acc"])


def test_limit_and_bad_arguments(runs, tmp_path) -> None:
    assert len(evaluate(runs["cam"], limit=5, wsoleval=False, progress=False).records) == 5
    cases: list[tuple[dict[str, Any], str]] = [
        ({"fusion": "mean"}, "fusion"),
        ({"delta": 1.2}, "delta"),
        ({"tau": 0.0}, "tau"),
        ({"erase_with": "top5"}, "erase_with"),
        ({"limit": 0}, "limit"),
    ]
    for kwargs, word in cases:
        with pytest.raises(ValueError, match=word):
            evaluate(runs["acol"], progress=False, **kwargs)
    with pytest.raises(FileNotFoundError, match="not a run directory"):
        evaluate(tmp_path, progress=False)


def test_cli_eval_prints_the_summary_table(runs, capsys) -> None:
    assert wsol_main(["eval", str(runs["hclnet"]), "--fusion", "l1", "--quiet", "--limit", "8"]) == 0
    out = capsys.readouterr().out
    assert "fusion=l1" in out and "maxboxacc_v2" in out and "fused" in out
    assert wsol_main(["eval", str(runs["hclnet"]), "--delta", "1.5", "--quiet"]) == 2
    assert "delta" in capsys.readouterr().err


def test_cli_train_flags_and_config_file_reach_the_same_run(runs, capsys) -> None:
    run_dir = runs["acol"]
    config = RunConfig.from_json(run_dir / "config.json")
    argv = [
        "train",
        "--runs-dir",
        str(run_dir.parent),
        "--quiet",
        "--method",
        "acol",
        "--delta",
        "0.6",
        "--epochs",
        "1",
        "--batch-size",
        "32",
        "--image-size",
        "32",
        "--lr",
        "0.01",
        "--device",
        "cpu",
        "--dataset-kwargs",
        json_of(config.dataset_kwargs),
    ]
    assert wsol_main(argv) == 0
    assert capsys.readouterr().out.strip() == str(run_dir)  # cached: same key, not retrained
    assert (
        wsol_main(["train", "--config", str(run_dir / "config.json"), "--runs-dir", str(run_dir.parent), "--quiet"])
        == 0
    )
    assert capsys.readouterr().out.strip() == str(run_dir)
    assert wsol_main(["train", "--method", "gradcam", "--quiet"]) == 2
    assert "gradcam" in capsys.readouterr().err
    assert wsol_main(["train", "--delta", "0", "--quiet"]) == 2


def json_of(value) -> str:
    import json

    return json.dumps(value)
