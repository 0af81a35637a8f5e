"""train(): run directory, cache, exact resume, Ctrl-C, corrupt checkpoint, foreign run dir, NaN loss."""

from __future__ import annotations

import csv
import importlib
import json
import os
from typing import Any

import pytest
import torch
from tiny_data import tiny_run_config, train_stopped

from wsol_utils.engine import (
    CheckpointError,
    RunConfig,
    RunDirMismatchError,
    TrainingDivergedError,
    build_model,
    load_run,
    read_history,
    train,
)
from wsol_utils.engine.checkpoint import load_checkpoint
from wsol_utils.nets.models import WSOLModel

train_module = importlib.import_module("wsol_utils.engine.train")  # the package's `train` is the function


def _history(run_dir) -> list[dict[str, str]]:
    with (run_dir / "history.csv").open() as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize("method", ["cam", "acol", "hclnet"])
def test_train_writes_the_run_directory(tmp_path, method: str) -> None:
    config = tiny_run_config(tmp_path, method=method, epochs=2)
    run_dir = train(config, runs_dir=tmp_path / "runs", progress=False)
    assert run_dir == tmp_path / "runs" / f"{method}-{config.key()}"
    assert {"config.json", "history.csv", "checkpoint.pt", "done.json"} <= {p.name for p in run_dir.iterdir()}
    assert RunConfig.from_json(run_dir / "config.json") == config
    rows = _history(run_dir)
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    for row in rows:
        assert 0.0 <= float(row["train_acc"]) <= 1.0 and 0.0 <= float(row["val_acc"]) <= 1.0
        total = float(row["train_loss_a"]) + float(row["train_loss_b"])
        assert float(row["train_loss"]) == pytest.approx(total, rel=1e-6)
        assert (float(row["train_loss_b"]) == 0.0) == (method == "cam")
    state = load_checkpoint(run_dir / "checkpoint.pt")
    assert state["epoch"] == 2
    loaded_config, model = load_run(run_dir)
    assert loaded_config == config and not model.training
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, state["model"][name])


def test_finished_run_is_not_retrained_and_test_time_fields_share_it(tmp_path) -> None:
    config = tiny_run_config(tmp_path, method="acol")
    run_dir = train(config, runs_dir=tmp_path, progress=False)
    stamp = os.stat(run_dir / "checkpoint.pt").st_mtime_ns
    again = train(config.replace(fusion="add", num_workers=0), runs_dir=tmp_path, progress=False)
    assert again == run_dir and os.stat(run_dir / "checkpoint.pt").st_mtime_ns == stamp
    train(config, runs_dir=tmp_path, progress=False, restart=True)
    assert os.stat(run_dir / "checkpoint.pt").st_mtime_ns != stamp


def test_validation_does_not_change_the_trained_weights(tmp_path) -> None:
    # val_split is a test-time field (outside the run key): with or without per-epoch validation, the same weights
    config = tiny_run_config(tmp_path, method="acol", epochs=2)
    validated = train(config, run_dir=tmp_path / "validated", progress=False)
    silent = train(config.replace(val_split=None), run_dir=tmp_path / "silent", progress=False)
    assert all(row["val_acc"] != "" for row in _history(validated))
    expected = load_checkpoint(validated / "checkpoint.pt")["model"]
    weights = load_checkpoint(silent / "checkpoint.pt")["model"]
    for name, tensor in expected.items():
        assert torch.equal(weights[name], tensor), name


def test_ctrl_c_keeps_the_last_epoch_and_resume_matches_an_uninterrupted_run(tmp_path, capsys) -> None:
    config = tiny_run_config(tmp_path, method="hclnet", epochs=3)
    reference = train(config, run_dir=tmp_path / "reference", progress=False)
    train_stopped(config, tmp_path / "resumed")
    assert "Run the same command again to resume" in capsys.readouterr().err
    assert load_checkpoint(tmp_path / "resumed" / "checkpoint.pt")["epoch"] == 1
    assert not (tmp_path / "resumed" / "done.json").exists()
    train(config, run_dir=tmp_path / "resumed", progress=False)
    assert [r["epoch"] for r in _history(tmp_path / "resumed")] == ["1", "2", "3"]
    expected = load_checkpoint(reference / "checkpoint.pt")["model"]
    resumed = load_checkpoint(tmp_path / "resumed" / "checkpoint.pt")["model"]
    for name, tensor in expected.items():
        assert torch.equal(resumed[name], tensor), name  # bit-identical: same RNG streams, same order of sums


def test_corrupt_checkpoint_names_the_file_and_the_fix(tmp_path) -> None:
    config = tiny_run_config(tmp_path)
    run_dir = tmp_path / "run"
    train(config, run_dir=run_dir, progress=False)
    (run_dir / "done.json").unlink()
    (run_dir / "checkpoint.pt").write_bytes(b"\x80not a checkpoint")
    with pytest.raises(CheckpointError, match=r"checkpoint\.pt.*(delete|restart)"):
        train(config, run_dir=run_dir, progress=False)
    with pytest.raises(CheckpointError, match=r"checkpoint.pt"):
        load_run(run_dir)
    train(config, run_dir=run_dir, progress=False, restart=True)
    assert load_checkpoint(run_dir / "checkpoint.pt")["epoch"] == 1


def test_run_directory_of_another_config_is_refused(tmp_path) -> None:
    run_dir = train(tiny_run_config(tmp_path), run_dir=tmp_path / "run", progress=False)
    with pytest.raises(RunDirMismatchError, match="lr"):
        train(tiny_run_config(tmp_path, lr=0.5), run_dir=run_dir, progress=False)


def test_nan_loss_stops_with_epoch_batch_and_a_hint(tmp_path, monkeypatch) -> None:
    def nan_losses(output, labels):
        return output.logits_a.sum() * float("nan"), None

    monkeypatch.setattr(train_module, "branch_losses", nan_losses)
    with pytest.raises(TrainingDivergedError, match=r"epoch 1, batch 1.*lower the learning rate"):
        train(tiny_run_config(tmp_path), run_dir=tmp_path / "run", progress=False)
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_a_non_finite_parameter_after_the_last_step_stops_before_anything_is_saved(tmp_path, monkeypatch) -> None:
    # the per-batch loss check runs before each step, so only the parameter check sees the epoch's last step
    real_step = torch.optim.SGD.step
    steps = []

    def poison_the_last_step(self, *args, **kwargs):
        result = real_step(self, *args, **kwargs)
        steps.append(1)
        if len(steps) == 2:  # 64 images in batches of 32: the second step is the last of the epoch
            with torch.no_grad():
                self.param_groups[0]["params"][0].fill_(float("nan"))
        return result

    monkeypatch.setattr(torch.optim.SGD, "step", poison_the_last_step)
    run_dir = tmp_path / "run"
    with pytest.raises(TrainingDivergedError, match=r"NaN or infinite after epoch 1 .*lower the learning rate"):
        train(tiny_run_config(tmp_path), run_dir=run_dir, progress=False)
    assert len(steps) == 2
    assert not (run_dir / "checkpoint.pt").exists() and not (run_dir / "done.json").exists()


def test_a_crash_between_the_checkpoint_and_the_history_write_loses_no_row(tmp_path, monkeypatch) -> None:
    config = tiny_run_config(tmp_path, method="acol", epochs=3)
    reference = train(config, run_dir=tmp_path / "reference", progress=False)
    real_write = train_module.write_history
    calls = []

    def crash_in_epoch_2(run_dir, rows):
        calls.append(len(rows))
        if len(rows) == 2:  # epoch 2's checkpoint is saved, its history row not yet
            raise OSError("disk full")
        real_write(run_dir, rows)

    monkeypatch.setattr(train_module, "write_history", crash_in_epoch_2)
    run_dir = tmp_path / "run"
    with pytest.raises(OSError, match="disk full"):
        train(config, run_dir=run_dir, progress=False)
    assert load_checkpoint(run_dir / "checkpoint.pt")["epoch"] == 2 and len(_history(run_dir)) == 1
    monkeypatch.setattr(train_module, "write_history", real_write)
    train(config, run_dir=run_dir, progress=False)
    timing = ("seconds", "images_per_s")
    rows = [{k: v for k, v in row.items() if k not in timing} for row in _history(run_dir)]
    assert rows == [{k: v for k, v in row.items() if k not in timing} for row in _history(reference)]
    for name, tensor in load_checkpoint(reference / "checkpoint.pt")["model"].items():
        assert torch.equal(load_checkpoint(run_dir / "checkpoint.pt")["model"][name], tensor), name


@pytest.mark.parametrize(
    "text, problem",
    [
        (b"epoch,train_loss\n1,0.5\n", "columns"),
        (b"\xff\xfe\x00garbage", "UnicodeDecodeError"),
        (None, "fewer fields|is not a number"),  # cut short: the last row lacks fields (or ends in an empty one)
    ],
)
def test_a_corrupt_history_names_the_file_and_train_rewrites_it_from_the_checkpoint(
    tmp_path, capsys, text, problem
) -> None:
    config = tiny_run_config(tmp_path, epochs=2)
    run_dir = train(config, run_dir=tmp_path / "run", progress=False)
    good = (run_dir / "history.csv").read_bytes()
    (run_dir / "history.csv").write_bytes(good[: len(good) - 40] if text is None else text)
    with pytest.raises(ValueError, match=rf"history\.csv is corrupt \(.*({problem}).*\); .*train.* rewrites it"):
        read_history(run_dir)
    train(config, run_dir=run_dir, progress=False)
    assert (run_dir / "history.csv").read_bytes() == good
    assert "rewrote" in capsys.readouterr().err


def test_missing_data_root_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="nowhere"):
        train(RunConfig(dataset="cub", data_root=str(tmp_path / "nowhere")), runs_dir=tmp_path)


def test_training_does_not_change_the_callers_rng_or_threads(tmp_path) -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    threads = torch.get_num_threads()
    train(tiny_run_config(tmp_path), run_dir=tmp_path / "run", progress=False)
    assert torch.equal(torch.rand(3), expected) and torch.get_num_threads() == threads


def test_done_json_records_the_final_accuracy(tmp_path) -> None:
    run_dir = train(tiny_run_config(tmp_path), run_dir=tmp_path / "run", progress=False)
    done = json.loads((run_dir / "done.json").read_text())
    assert done["epochs"] == 1 and float(done["val_acc"]) == float(_history(run_dir)[-1]["val_acc"])


# -- CPU micro-batches ---------------------------------------------------------------------------------
def _model(method: str, **model_kwargs: Any) -> WSOLModel:
    torch.manual_seed(0)
    return build_model(RunConfig(method=method, model_kwargs=model_kwargs), num_classes=10)


def test_micro_batches_keep_65536_feature_cells_per_chunk_on_the_cpu() -> None:
    cpu = train_module.ddp.DistContext(device=torch.device("cpu"))
    full_resolution = _model("hclnet", downsamples=0, depth=2)  # 64 px -> 64 x 64 = 4096 cells: 16 images
    assert train_module.micro_batches(full_resolution, cpu, torch.zeros(40, 3, 64, 64)) == [
        slice(0, 16),
        slice(16, 32),
        slice(32, 40),
    ]
    # 128 px -> 16,384 cells per image: 4 images per chunk; 32 px -> 1,024 cells: the batch of 64 in one chunk
    assert train_module.micro_batches(full_resolution, cpu, torch.zeros(8, 3, 128, 128)) == [slice(0, 4), slice(4, 8)]
    assert train_module.micro_batches(full_resolution, cpu, torch.zeros(64, 3, 32, 32)) == [slice(0, 64)]
    strided = _model("cam", downsamples=2, depth=3)  # stride 4: 16 x 16 = 256 cells
    assert train_module.micro_batches(strided, cpu, torch.zeros(64, 3, 64, 64)) == [slice(0, 64)]


def test_micro_batches_keep_the_whole_batch_on_cuda_under_ddp_and_with_batch_norm() -> None:
    model = _model("cam", downsamples=0, depth=2)
    images = torch.zeros(64, 3, 64, 64)
    cuda = train_module.ddp.DistContext(device=torch.device("cuda"))
    ddp = train_module.ddp.DistContext(rank=0, world_size=2, device=torch.device("cpu"))
    cpu = train_module.ddp.DistContext(device=torch.device("cpu"))
    assert train_module.micro_batches(model, cuda, images) == [slice(0, 64)]
    assert train_module.micro_batches(model, ddp, images) == [slice(0, 64)]
    model.branch_a.body = torch.nn.Sequential(torch.nn.BatchNorm2d(8), *model.branch_a.body)
    assert train_module.micro_batches(model, cpu, images) == [slice(0, 64)]


@pytest.mark.parametrize("method", ["cam", "acol", "hclnet"])
def test_backward_batch_in_chunks_gives_the_whole_batch_gradient_and_sums(method: str) -> None:
    torch.manual_seed(1)
    images, labels = torch.randn(20, 3, 32, 32), torch.randint(0, 10, (20,))
    results = []
    for chunks in ([slice(0, 20)], [slice(0, 8), slice(8, 16), slice(16, 20)]):
        model = _model(method, downsamples=0, depth=2)
        stats = train_module.backward_batch(model, images, labels, chunks)
        results.append((stats, {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}))
    (whole, whole_grads), (chunked, chunk_grads) = results
    assert whole_grads.keys() == chunk_grads.keys() and whole_grads
    for name, grad in whole_grads.items():  # float sums in another order: equal to 1e-4 of the largest entry
        scale = float(grad.abs().max())
        torch.testing.assert_close(chunk_grads[name], grad, rtol=0, atol=1e-4 * scale, msg=name)
    assert chunked.count == whole.count == 20 and chunked.correct == whole.correct
    assert chunked.loss == pytest.approx(whole.loss, rel=1e-5)
    assert chunked.loss == pytest.approx(chunked.loss_a + chunked.loss_b, rel=1e-6)
