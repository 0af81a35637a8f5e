"""evaluate() / tau_curve() and the two CLIs on tiny trained runs (engine.evaluate, ui.train_cli, ui.eval_cli)."""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from tiny_data import tiny_run_config, train_stopped

from wsol_utils.__main__ import main as wsol_main
from wsol_utils.base.atomic import file_sha256
from wsol_utils.engine import RunConfig, evaluate, evaluate_cached, load_run, tau_curve, train
from wsol_utils.engine.evaluate import is_cached, load_map_cache, summary_json
from wsol_utils.nets.models import WSOLModel

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


@pytest.fixture(scope="module")
def stopped(tmp_path_factory) -> tuple[RunConfig, Path]:
    """``(config, run dir)`` of an ACoL run of 2 epochs stopped (Ctrl-C) after its first: a checkpoint of epoch 1,
    no ``done.json``. Tests work on copies (:func:`_copy_run`) so that they can finish or damage it."""
    root = tmp_path_factory.mktemp("engine-eval-stopped")
    config = tiny_run_config(
        root, method="acol", epochs=2, dataset_kwargs={"num_train": 64, "num_val": 16, "num_test": N_TEST}
    )
    run = train_stopped(config, root / "runs" / config.run_name())
    assert not (run / "done.json").exists() and (run / "checkpoint.pt").is_file()
    return config, run


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


def test_the_default_is_label_free_no_label_reaches_branch_b(runs, monkeypatch) -> None:
    seen: list[torch.Tensor | None] = []
    forward = WSOLModel.forward

    def recording(self, images, labels=None, **options):
        seen.append(labels)
        return forward(self, images, labels, **options)

    monkeypatch.setattr(WSOLModel, "forward", recording)
    default = evaluate(runs["acol"], wsoleval=False, progress=False, cache_maps=False)
    assert default.summary["erase_with"] == "pred" and seen and all(labels is None for labels in seen)
    pred = evaluate(runs["acol"], wsoleval=False, progress=False, cache_maps=False, erase_with="pred")
    pd.testing.assert_frame_equal(default.records, pred.records)
    seen.clear()
    evaluate(runs["acol"], wsoleval=False, progress=False, cache_maps=False, erase_with="gt")
    assert seen and all(labels is not None for labels in seen)  # the official variant: the label reaches B
    seen.clear()
    curve = tau_curve(runs["acol"], taus=[0.2], progress=False)
    assert seen == [] or all(labels is None for labels in seen)
    assert curve["tau"].tolist() == [0.2, 0.2, 0.2]


def test_an_evaluation_cache_entry_is_keyed_by_its_erasing_class(runs) -> None:
    result = evaluate_cached(runs["cam"], wsoleval=False, progress=False)
    assert is_cached(runs["cam"], wsoleval=False, erase_with="pred")  # the default, filled into the key
    assert not is_cached(runs["cam"], wsoleval=False, erase_with="gt")
    assert result.summary["erase_with"] == "pred"


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


# -- derived caches: checked against the checkpoint's digest, whole, and never losing results (issue 17) ---------
def _copy_run(run: Path, parent: Path) -> Path:
    """A copy of ``run`` (files and mtimes, without the caches other tests wrote) under ``parent``, so that a test
    may train on, damage or cache into it."""
    return Path(shutil.copytree(run, parent / run.name, ignore=shutil.ignore_patterns("maps", "suite_eval")))


def _fail_renames(monkeypatch, code: int) -> None:
    """Every ``os.replace`` (the last step of an atomic write) fails with ``OSError(code)``: a full disk
    (ENOSPC) or a read-only folder (EROFS; chmod does not stop root, which runs the tests)."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "replace", refuse)


def test_tau_curve_recomputes_the_maps_of_an_older_checkpoint(stopped, tmp_path) -> None:
    """Issue 17's row: eval after epoch 1, finish the run, then tau_curve used the epoch-1 maps."""
    config, original = stopped
    run = _copy_run(original, tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the unfinished run's warning: tested below
        tau_curve(run, taus=[0.2], progress=False)
    (cache,) = (run / "maps").glob("*.npz")
    epoch1 = load_map_cache(cache).maps
    train(config, run_dir=run, progress=False)  # finish the run: epoch 2
    curve = tau_curve(run, taus=[0.2], progress=False)
    expected = evaluate(run, tau=0.2, wsoleval=False, cache_maps=False, progress=False).summary["branches"]
    for branch, metrics in expected.items():
        value = curve[curve["branch"] == branch]["gt_known_loc_acc"].item()
        assert value == metrics["gt_known_loc_acc"], branch
    fresh = load_map_cache(cache)
    assert not np.array_equal(fresh.maps["fused"], epoch1["fused"])  # recomputed from the finished checkpoint
    assert fresh.checkpoint_sha256 == file_sha256(run / "checkpoint.pt")


def test_suite_eval_entry_of_another_checkpoint_is_recomputed(stopped, tmp_path) -> None:
    """A checkpoint restored from a backup (``cp -p``: older than the cache entry) gets its own numbers, not the
    entry's; the stale entry is overwritten in place."""
    config, original = stopped
    run = _copy_run(original, tmp_path)
    backup = Path(shutil.copy2(run / "checkpoint.pt", tmp_path / "epoch1.pt"))
    train(config, run_dir=run, progress=False)
    options: dict[str, Any] = {"split": "test", "wsoleval": "main"}
    epoch2 = evaluate_cached(run, **options)
    (entry,) = (run / "suite_eval").glob("*.json")
    shutil.copy2(backup, run / "checkpoint.pt")  # back to epoch 1, with its older mtime
    (run / "done.json").unlink()
    assert entry.stat().st_mtime >= (run / "checkpoint.pt").stat().st_mtime
    assert not is_cached(run, **options)
    with pytest.warns(UserWarning, match="unfinished"):  # evaluated again, not read from the entry
        restored = evaluate_cached(run, **options)
    with pytest.warns(UserWarning, match="unfinished"):
        expected = evaluate(run, cache_maps=False, progress=False, **options)
    assert not restored.records.equals(epoch2.records)
    pd.testing.assert_frame_equal(restored.records, expected.records)
    assert restored.summary == expected.summary
    assert list((run / "suite_eval").glob("*.json")) == [entry]  # same key, new content
    assert json.loads(entry.read_text())["cache"]["checkpoint_sha256"] == file_sha256(backup)
    assert is_cached(run, **options)


def test_truncated_suite_eval_csv_is_recomputed_not_returned(runs, tmp_path) -> None:
    """A suite_eval CSV cut in half returned half the records while the summary said all (issue 17)."""
    run = _copy_run(runs["cam"], tmp_path)
    options: dict[str, Any] = {"split": "test", "wsoleval": False}
    first = evaluate_cached(run, **options)
    (records,) = (run / "suite_eval").glob("*.csv")
    lines = records.read_text().splitlines(keepends=True)
    records.write_text("".join(lines[: 1 + N_TEST // 2]))
    assert not is_cached(run, **options)
    again = evaluate_cached(run, **options)
    assert len(again.records) == again.summary["num_images"] == N_TEST
    pd.testing.assert_frame_equal(again.records, first.records)
    assert len(pd.read_csv(records)) == N_TEST and is_cached(run, **options)


def test_truncated_map_cache_is_recomputed(runs, tmp_path) -> None:
    run = _copy_run(runs["cam"], tmp_path)
    curve = tau_curve(run, taus=[0.2, 0.5], progress=False)
    (cache,) = (run / "maps").glob("*.npz")
    data = cache.read_bytes()
    cache.write_bytes(data[: len(data) // 2])
    pd.testing.assert_frame_equal(tau_curve(run, taus=[0.2, 0.5], progress=False), curve)
    assert load_map_cache(cache).checkpoint_sha256 == file_sha256(run / "checkpoint.pt")  # rewritten whole


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS])
def test_a_cache_that_cannot_be_written_warns_and_the_results_are_returned(runs, tmp_path, monkeypatch, code) -> None:
    """Full disk / read-only run folder: everything was computed, then OSError and the results were lost."""
    run = _copy_run(runs["acol"], tmp_path)
    expected = evaluate(run, wsoleval=False, cache_maps=False, progress=False)
    _fail_renames(monkeypatch, code)
    with pytest.warns(UserWarning, match=re.escape(str(run / "maps"))):
        result = evaluate(run, wsoleval=False, progress=False)
    assert result.summary == expected.summary
    with pytest.warns(UserWarning) as record:
        cached = evaluate_cached(run, split="test", wsoleval=False)
    messages = " ".join(str(w.message) for w in record)
    assert str(run / "maps") in messages and str(run / "suite_eval") in messages
    assert cached.summary == expected.summary
    with pytest.warns(UserWarning, match=re.escape(str(run / "maps"))):
        curve = tau_curve(run, taus=[0.2], progress=False)  # from the maps in memory
    for branch, metrics in expected.summary["branches"].items():
        assert curve[curve["branch"] == branch]["gt_known_loc_acc"].item() == metrics["gt_known_loc_acc"]
    assert not any((run / "maps").glob("*.npz")) and not any((run / "suite_eval").glob("*"))


def test_cli_eval_prints_the_results_when_the_cache_cannot_be_written(runs, tmp_path, monkeypatch, capsys) -> None:
    run = _copy_run(runs["hclnet"], tmp_path)
    _fail_renames(monkeypatch, errno.ENOSPC)
    assert wsol_main(["eval", str(run), "--quiet", "--limit", "8"]) == 0
    captured = capsys.readouterr()
    assert "maxboxacc_v2" in captured.out
    assert "warning: could not write the cache file" in captured.err and str(run / "maps") in captured.err


def test_eval_on_an_unfinished_run_says_so(stopped, runs, tmp_path, capsys) -> None:
    _config, original = stopped
    run = _copy_run(original, tmp_path)
    message = rf"{re.escape(str(run))} is an unfinished run: its checkpoint holds epoch 1 of the config's 2 epochs"
    with pytest.warns(UserWarning, match=message):
        evaluate(run, wsoleval=False, cache_maps=False, limit=4, progress=False)
    assert wsol_main(["eval", str(run), "--quiet", "--limit", "4", "--no-wsoleval"]) == 0
    err = capsys.readouterr().err
    assert re.search(message, err) and err.startswith("warning: ")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        evaluate(runs["cam"], wsoleval=False, cache_maps=False, limit=4, progress=False)
    assert not [w for w in caught if "unfinished" in str(w.message)]  # a finished run: no warning


def test_eval_json_keeps_nan_in_strings_and_nulls_nan_numbers(runs, tmp_path, capsys) -> None:
    """``eval --json`` on a path containing ``NaN`` printed the path with ``null`` in place of ``NaN``."""
    run = _copy_run(runs["cam"], tmp_path / "NaN-runs").rename(tmp_path / "NaN-runs" / "cam-NaN")
    assert wsol_main(["eval", str(run), "--json", "--quiet", "--limit", "4", "--no-wsoleval"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["run"] == str(run)
    summary = {"run": "a/NaN/b", "x": float("nan"), "y": np.float32("nan"), "z": [np.nan, 1.5], "n": {"v": np.nan}}
    assert json.loads(summary_json(summary)) == {
        "run": "a/NaN/b",
        "x": None,
        "y": None,
        "z": [None, 1.5],
        "n": {"v": None},
    }


def test_cli_eval_prints_the_summary_before_a_records_file_it_cannot_write(runs, tmp_path, capsys) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    target = blocker / "records.csv"
    assert wsol_main(["eval", str(runs["cam"]), "--quiet", "--limit", "4", "--records", str(target)]) == 1
    captured = capsys.readouterr()
    assert "gt_known_loc_err" in captured.out  # the results are not lost
    assert f"error: could not write the records to {target}" in captured.err
