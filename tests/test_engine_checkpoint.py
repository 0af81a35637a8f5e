"""Checkpoints and the run directory (wsol_utils.engine.checkpoint): no pickled code runs on load, checkpoints of the
previous format still load, one writer per run directory, and a ``done.json`` that vouches for the checkpoint."""

from __future__ import annotations

import importlib
import json
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from tiny_data import tiny_run_config, train_stopped

from wsol_utils.__main__ import main as wsol_main
from wsol_utils.base.atomic import file_sha256
from wsol_utils.engine import CheckpointError, load_run, train
from wsol_utils.engine import checkpoint as ckpt

train_module = importlib.import_module("wsol_utils.engine.train")  # the package's `train` is the function


class Payload:
    """Pickles as a call of ``open(marker, "w")``: unpickling it with code execution creates ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.marker), "w"))


def _record_digest(run_dir: Path) -> None:
    """What an attacker who rewrote the checkpoint would also do: make ``done.json`` vouch for it."""
    done = json.loads((run_dir / "done.json").read_text())
    done["checkpoint_sha256"] = file_sha256(run_dir / "checkpoint.pt")
    (run_dir / "done.json").write_text(json.dumps(done))


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return ckpt.load_checkpoint(run_dir / "checkpoint.pt")["model"]


def _assert_same_weights(run_dir: Path, reference: Path) -> None:
    expected, got = _weights(reference), _weights(run_dir)
    for name, tensor in expected.items():
        assert torch.equal(got[name], tensor), name


# -- no code runs on load ------------------------------------------------------------------------------
def test_a_pickled_payload_is_refused_unread_and_runs_nothing(tmp_path, capsys) -> None:
    config = tiny_run_config(tmp_path)
    run_dir = train(config, run_dir=tmp_path / "run", progress=False)
    path = run_dir / "checkpoint.pt"
    marker = tmp_path / "payload-ran"
    state = ckpt.load_checkpoint(path)
    state["epoch"] = Payload(marker)
    torch.save(state, path)
    _record_digest(run_dir)
    refused = r"checkpoint\.pt holds pickled Python objects .*none of its code ran.*--restart"
    with pytest.raises(CheckpointError, match=refused):
        ckpt.load_checkpoint(path)
    with pytest.raises(CheckpointError, match=refused):
        load_run(run_dir)
    assert wsol_main(["eval", str(run_dir), "--quiet", "--limit", "4", "--no-wsoleval"]) == 2
    assert "checkpoint.pt holds pickled Python objects" in capsys.readouterr().err
    (run_dir / "done.json").unlink()  # an unfinished run: train resumes from the checkpoint
    with pytest.raises(CheckpointError, match=refused):
        train(config, run_dir=run_dir, progress=False)
    assert not marker.exists()


def test_the_rng_state_round_trips_through_the_safe_loader(tmp_path) -> None:
    np.random.seed(7)  # noqa: NPY002 -- the legacy global RNG that the checkpoint saves
    np.random.standard_normal()  # noqa: NPY002 -- leaves a cached Gaussian in the state
    state = ckpt.rng_state()
    expected = np.random.random(5)  # noqa: NPY002
    torch.save(state, tmp_path / "rng.pt")
    ckpt.set_rng_state(torch.load(tmp_path / "rng.pt", weights_only=True))
    assert np.array_equal(np.random.random(5), expected)  # noqa: NPY002


def _as_previous_format(path: Path) -> None:
    """Rewrite ``path`` as the previous code wrote it: the NumPy RNG state as its tuple (an array key), no history."""
    state = ckpt.load_checkpoint(path)
    state["rng"]["numpy"] = ckpt.numpy_state_from_plain(state["rng"]["numpy"])
    del state["history"]
    torch.save(state, path)


def test_a_checkpoint_of_the_previous_format_loads_safely_and_resumes_to_the_same_weights(tmp_path):
    config = tiny_run_config(tmp_path, method="acol", epochs=2)
    reference = train(config, run_dir=tmp_path / "reference", progress=False)
    train_stopped(config, tmp_path / "old")
    path = tmp_path / "old" / "checkpoint.pt"
    _as_previous_format(path)
    with pytest.raises(Exception, match="Weights only load failed"):
        torch.load(path, weights_only=True)  # what the safe loader alone refuses
    state = ckpt.load_checkpoint(path)
    assert state["epoch"] == 1 and isinstance(state["rng"]["numpy"]["key"], torch.Tensor)
    train(config, run_dir=tmp_path / "old", progress=False)
    _assert_same_weights(tmp_path / "old", reference)
    assert [row["epoch"] for row in train_module.read_history(tmp_path / "old")] == ["1", "2"]


def test_a_finished_run_of_the_previous_format_is_verified_without_retraining(tmp_path) -> None:
    config = tiny_run_config(tmp_path)
    run_dir = train(config, run_dir=tmp_path / "run", progress=False)
    _as_previous_format(run_dir / "checkpoint.pt")
    done = json.loads((run_dir / "done.json").read_text())
    old_record = {k: v for k, v in done.items() if k not in ("checkpoint_epoch", "checkpoint_sha256", "format")}
    (run_dir / "done.json").write_text(json.dumps(old_record))
    assert not ckpt.is_done(run_dir)  # no digest: not verified
    assert load_run(run_dir)[0] == config  # but its model loads
    stamp = os.stat(run_dir / "checkpoint.pt").st_mtime_ns
    train(config, run_dir=run_dir, progress=False)
    record = ckpt.verify_done(run_dir)
    assert record is not None and record.checkpoint_sha256 == file_sha256(run_dir / "checkpoint.pt")
    assert os.stat(run_dir / "checkpoint.pt").st_mtime_ns == stamp  # not retrained
    assert record.info["val_acc"] == old_record["val_acc"]


# -- one writer per run directory ------------------------------------------------------------------------
def _start_train(config, run_dir: Path, **kwargs: Any) -> tuple[threading.Thread, list[Any]]:
    outcome: list[Any] = []

    def target() -> None:
        try:
            outcome.append(train(config, run_dir=run_dir, progress=False, **kwargs))
        except BaseException as err:  # handed to the test thread
            outcome.append(err)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, outcome


def _wait_for_message(capsys, thread: threading.Thread, seconds: float = 60.0) -> str:
    """stderr until the second writer says it waits (while the test holds the lock it cannot get past it)."""
    err, deadline = "", time.monotonic() + seconds
    while "waiting for" not in err:
        assert thread.is_alive() and time.monotonic() < deadline, err
        time.sleep(0.05)
        err += capsys.readouterr().err
    return err


def test_a_restart_waits_for_the_writer_who_holds_the_run(tmp_path, capsys) -> None:
    config = tiny_run_config(tmp_path)
    run_dir = train(config, run_dir=tmp_path / "run", progress=False)
    stamp = os.stat(run_dir / "checkpoint.pt").st_mtime_ns
    with ckpt.run_lock(run_dir):  # this test is the writer training the run
        thread, outcome = _start_train(config, run_dir, restart=True)
        err = _wait_for_message(capsys, thread)
        assert f"pid {os.getpid()}" in err and str(run_dir) in err
        time.sleep(0.3)
        assert thread.is_alive() and ckpt.is_done(run_dir)  # nothing deleted under the writer
        assert os.stat(run_dir / "checkpoint.pt").st_mtime_ns == stamp
    thread.join(120)
    assert outcome == [run_dir]
    assert os.stat(run_dir / "checkpoint.pt").st_mtime_ns != stamp and ckpt.is_done(run_dir)
    assert (err + capsys.readouterr().err).count("waiting for") == 1
    assert (run_dir / "train.lock").read_text() == ""  # released: no holder recorded


def test_a_waiting_train_finds_the_run_finished_by_the_lock_holder(tmp_path, capsys) -> None:
    config = tiny_run_config(tmp_path)
    finished = train(config, run_dir=tmp_path / "finished", progress=False)
    run_dir = tmp_path / "run"
    ckpt.prepare_run_dir(run_dir, config)
    with ckpt.run_lock(run_dir):
        thread, outcome = _start_train(config, run_dir)
        _wait_for_message(capsys, thread)
        for name in ("checkpoint.pt", "history.csv", "done.json"):  # the holder finishes the run
            shutil.copy2(finished / name, run_dir / name)
    thread.join(120)
    assert outcome == [run_dir]
    assert os.stat(run_dir / "checkpoint.pt").st_mtime_ns == os.stat(finished / "checkpoint.pt").st_mtime_ns


# -- done means verified -----------------------------------------------------------------------------------
def _flip_a_weight_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    tensor = max(ckpt.load_checkpoint(path)["model"].values(), key=lambda t: t.numel())
    offset = bytes(data).find(bytes(tensor.untyped_storage()))  # the tensor's bytes as stored (uncompressed zip)
    assert offset > 0
    data[offset + 5] ^= 0x01
    path.write_bytes(bytes(data))


def test_a_flipped_byte_in_a_finished_checkpoint_is_an_error_naming_it(tmp_path) -> None:
    config = tiny_run_config(tmp_path)
    run_dir = train(config, run_dir=tmp_path / "run", progress=False)
    _flip_a_weight_byte(run_dir / "checkpoint.pt")
    ckpt.load_checkpoint(run_dir / "checkpoint.pt")  # the file itself still loads: only the digest tells
    changed = r"checkpoint\.pt changed since the run finished.*--restart"
    with pytest.raises(CheckpointError, match=changed):
        load_run(run_dir)
    assert not ckpt.is_done(run_dir) and ckpt.verify_done(run_dir) is None
    with pytest.raises(CheckpointError, match=changed):  # not resumed on top of it (that would launder it)
        train(config, run_dir=run_dir, progress=False)
    train(config, run_dir=run_dir, progress=False, restart=True)
    assert ckpt.is_done(run_dir)


def test_a_corrupt_done_json_is_not_done_and_train_verifies_the_run_again(tmp_path, capsys) -> None:
    config = tiny_run_config(tmp_path)
    run_dir = train(config, run_dir=tmp_path / "run", progress=False)
    stamp = os.stat(run_dir / "checkpoint.pt").st_mtime_ns
    (run_dir / "done.json").write_text('{"epochs": 1, "checkpoint_')
    assert not ckpt.is_done(run_dir)
    with pytest.raises(CheckpointError, match=r"done\.json is corrupt.*train"):
        load_run(run_dir)
    train(config, run_dir=run_dir, progress=False)
    assert "done.json is corrupt" in capsys.readouterr().err
    assert ckpt.is_done(run_dir) and os.stat(run_dir / "checkpoint.pt").st_mtime_ns == stamp  # not retrained
    record = ckpt.verify_done(run_dir)
    assert record is not None and record.checkpoint_epoch == record.epochs == 1
    assert record.checkpoint_sha256 == file_sha256(run_dir / "checkpoint.pt")


def test_done_json_for_other_epochs_does_not_count(tmp_path) -> None:
    config = tiny_run_config(tmp_path, epochs=2)
    run_dir = train(config, run_dir=tmp_path / "run", progress=False)
    done = json.loads((run_dir / "done.json").read_text())
    (run_dir / "done.json").write_text(json.dumps({**done, "epochs": 3, "checkpoint_epoch": 3}))
    assert not ckpt.is_done(run_dir)
    with pytest.raises(CheckpointError, match=r"done\.json says 3 epochs .* trains 2"):
        load_run(run_dir)


def test_a_done_json_ahead_of_its_checkpoint_is_resumed_not_trusted(tmp_path) -> None:
    # what a restart under a running writer left: done.json (of the previous format) says 2 epochs, the checkpoint 1
    config = tiny_run_config(tmp_path, epochs=2)
    reference = train(config, run_dir=tmp_path / "reference", progress=False)
    train_stopped(config, tmp_path / "run")
    run_dir = tmp_path / "run"
    (run_dir / "done.json").write_text(json.dumps({"epochs": 2, "val_acc": 0.5}))
    assert not ckpt.is_done(run_dir)
    with pytest.raises(CheckpointError, match=r"checkpoint\.pt holds epoch 1 but .*done\.json marks the run done"):
        load_run(run_dir)
    train(config, run_dir=run_dir, progress=False)
    assert ckpt.is_done(run_dir)
    _assert_same_weights(run_dir, reference)


# -- the run directory ------------------------------------------------------------------------------------
def test_a_run_dir_that_is_a_file_is_a_clear_error(tmp_path) -> None:
    path = tmp_path / "a-file"
    path.write_text("x")
    with pytest.raises(ckpt.RunDirError, match=r"a-file is a file, not a folder.*--run-dir"):
        ckpt.prepare_run_dir(path, tiny_run_config(tmp_path))
    with pytest.raises(ckpt.RunDirError, match=r"cannot create run directory .*a-file/run"):
        ckpt.prepare_run_dir(path / "run", tiny_run_config(tmp_path))


def test_a_finished_run_is_returned_without_taking_the_lock(tmp_path, capsys) -> None:
    # readers of a finished run (train returning the cached run, eval) never wait, and need no write access
    config = tiny_run_config(tmp_path)
    run_dir = train(config, run_dir=tmp_path / "run", progress=False)
    with ckpt.run_lock(run_dir):
        thread, outcome = _start_train(config, run_dir)
        thread.join(60)
    assert outcome == [run_dir] and "waiting" not in capsys.readouterr().err
