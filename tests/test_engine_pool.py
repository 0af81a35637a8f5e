"""train_many(): runs trained side by side in worker processes equal the same runs trained one by one."""

from __future__ import annotations

import os

import pytest
import torch
from tiny_data import tiny_run_config

from wsol_utils.engine import evaluate_cached, train, train_many
from wsol_utils.engine.checkpoint import load_checkpoint
from wsol_utils.engine.evaluate import is_cached
from wsol_utils.engine.pool import default_jobs


def test_workers_train_the_same_runs_as_one_by_one(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the workers' thread count, so both ways compute alike
    configs = [tiny_run_config(tmp_path, method="hclnet", seed=0), tiny_run_config(tmp_path, method="acol", seed=1)]
    pooled = train_many(configs + configs[:1], runs_dir=tmp_path / "pool", jobs=2)
    assert pooled[0] == pooled[2] and [p.parent for p in pooled] == [tmp_path / "pool"] * 3
    for config, run in zip(configs, pooled):
        alone = train(config, runs_dir=tmp_path / "alone", progress=False)
        assert run.name == alone.name == config.run_name()
        pooled_state = load_checkpoint(run / "checkpoint.pt")["model"]
        for name, tensor in load_checkpoint(alone / "checkpoint.pt")["model"].items():
            assert torch.equal(pooled_state[name], tensor), name


def test_finished_runs_start_no_worker_and_failures_name_the_run(tmp_path) -> None:
    done = train(tiny_run_config(tmp_path), runs_dir=tmp_path, progress=False)
    stamp = os.stat(done / "checkpoint.pt").st_mtime_ns
    assert train_many([tiny_run_config(tmp_path)], runs_dir=tmp_path, jobs=2) == [done]
    assert os.stat(done / "checkpoint.pt").st_mtime_ns == stamp
    (tmp_path / "empty").mkdir()
    broken = tiny_run_config(tmp_path, dataset="cub", data_root=str(tmp_path / "empty"), seed=3)  # no CUB files in it
    with pytest.raises(RuntimeError, match=f"training .*{broken.run_name()} failed in a worker"):
        train_many([tiny_run_config(tmp_path, seed=4), broken], runs_dir=tmp_path, jobs=2)


def test_jobs_must_be_positive(tmp_path, monkeypatch) -> None:
    with pytest.raises(ValueError, match="jobs must be >= 1"):
        train_many([tiny_run_config(tmp_path)], runs_dir=tmp_path, jobs=0)
    monkeypatch.setenv("WSOL_TRAIN_JOBS", "3")
    assert default_jobs() == 3
    monkeypatch.setenv("WSOL_TRAIN_JOBS", "two")
    with pytest.raises(ValueError, match="WSOL_TRAIN_JOBS='two'"):
        default_jobs()


def test_workers_cache_the_evaluations_that_the_caller_then_reads(tmp_path) -> None:
    config = tiny_run_config(tmp_path, method="acol")
    options = [{"split": "test", "fusion": "max", "wsoleval": "main"}, {"split": "val", "fusion": "add"}]
    (run,) = train_many([config], runs_dir=tmp_path / "pool", jobs=2, evaluations=[options])
    assert all(is_cached(run, **o) for o in options) and not is_cached(run, split="test", fusion="add")
    expected = evaluate_cached(train(config, runs_dir=tmp_path / "alone", progress=False), **options[0]).summary
    got = evaluate_cached(run, **options[0]).summary  # read from the worker's cache entry
    assert got["maxboxacc_v2"] == expected["maxboxacc_v2"] and got["gt_known_loc_acc"] == expected["gt_known_loc_acc"]
    # a finished run that owes an evaluation gets it, without retraining
    stamp = (run / "checkpoint.pt").stat().st_mtime_ns
    train_many([config], runs_dir=tmp_path / "pool", jobs=1, evaluations=[[{"split": "test", "fusion": "add"}]])
    assert is_cached(run, split="test", fusion="add") and (run / "checkpoint.pt").stat().st_mtime_ns == stamp
    with pytest.raises(ValueError, match="1 evaluations for 2 configs"):
        train_many([config, config], runs_dir=tmp_path, evaluations=[[]])
