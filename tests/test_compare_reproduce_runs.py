"""Tests for benchmarks/compare_reproduce_runs.py: matching runs by configuration and their concurrency, by hand."""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import ModuleType

import pytest


@pytest.fixture
def script(load_benchmark) -> ModuleType:
    return load_benchmark("compare_reproduce_runs")


def _run(root: Path, name: str, config: dict, start: float, end: float) -> None:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "done.json").write_text(json.dumps({"seconds_this_session": end - start}))
    os.utime(folder / "done.json", (end, end))


def test_runs_match_without_precision_and_data_seed(script, tmp_path):
    base = {"method": "cam", "seed": 0, "dataset_kwargs": {"num_train": 1000}}
    _run(tmp_path / "a", "r1", base, 1000.0, 1100.0)
    _run(tmp_path / "b", "r1", {**base, "precision": "fp32", "dataset_kwargs": {"num_train": 1000, "seed": 0}}, 0, 50)
    _run(tmp_path / "b", "r2", {**base, "dataset_kwargs": {"num_train": 5000}}, 0, 50)  # another data size
    before, after = (
        script.by_config(script.read_runs(tmp_path / "a")),
        script.by_config(script.read_runs(tmp_path / "b")),
    )
    assert len(set(before) & set(after)) == 1


def test_two_runs_of_one_configuration_cannot_be_matched(script, tmp_path):
    config = {"method": "cam", "seed": 0, "dataset_kwargs": {"seed": 0}}
    _run(tmp_path, "r1", config, 0, 50)
    _run(tmp_path, "r2", {**config, "dataset_kwargs": {"seed": 1}}, 0, 50)  # differs only in the data seed
    runs = script.read_runs(tmp_path)
    assert len(runs) == 2 and script.images_trained([]) == 0
    with pytest.raises(ValueError, match="cannot be matched"):
        script.by_config(runs)


def test_concurrency_is_the_time_averaged_number_of_runs(script, tmp_path):
    # r1 trains 0-100 s; r2 50-150 s overlaps its second half; r3 200-300 s overlaps nothing
    for name, (start, end) in {"r1": (1000, 1100), "r2": (1050, 1150), "r3": (1200, 1300)}.items():
        _run(tmp_path, name, {"method": "cam", "seed": int(name[1])}, start, end)
    every = script.read_runs(tmp_path)
    runs = {run.config["seed"]: run for run in every}
    assert script.concurrency(runs[1], every) == pytest.approx(1.5)  # (100 s itself + 50 s of r2) / 100 s
    assert script.concurrency(runs[3], every) == pytest.approx(1.0)


def test_mean_concurrency_and_images_by_hand(script, tmp_path):
    # 0-100 s one run, 100-150 s two, 150-200 s one, 200-300 s none (not counted), 300-400 s one
    spans = {"r1": (1000, 1150), "r2": (1100, 1200), "r3": (1300, 1400)}
    for index, (name, (start, end)) in enumerate(spans.items()):
        kwargs = {"num_train": 1000} if index == 0 else {}
        _run(tmp_path, name, {"method": "cam", "seed": index, "epochs": 6, "dataset_kwargs": kwargs}, start, end)
    runs = script.read_runs(tmp_path)
    assert script.mean_concurrency(runs) == pytest.approx((100 + 2 * 50 + 50 + 100) / 300)
    assert script.images_trained(runs) == 1000 * 6 + 2 * 5000 * 6
