"""``python -m wsol_utils train`` (wsol_utils.ui.train_cli): bad input ends with one line naming the field or file and
the fix, exit 2, and nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest
from tiny_data import tiny_run_config

from wsol_utils.__main__ import main as wsol_main
from wsol_utils.engine import train

TINY = ["--quiet", "--epochs", "1", "--batch-size", "32", "--image-size", "32", "--device", "cpu"]


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize(
    "flag, value, field",
    [
        ("--weight-decay", "nan", "weight_decay"),
        ("--weight-decay", "-1e-4", "weight_decay"),
        ("--momentum", "1.0", "momentum"),
        ("--lr", "inf", "lr"),
        ("--seed", "-1", "seed"),
    ],
)
def test_a_bad_hyperparameter_exits_2_with_one_line_and_writes_nothing(tmp_path, capsys, flag, value, field) -> None:
    runs = tmp_path / "runs"
    assert wsol_main(["train", "--runs-dir", str(runs), *TINY, f"{flag}={value}"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert f"RunConfig.{field}=" in line and flag in line
    assert not runs.exists()  # validated before the run directory (and its config.json) is made


def test_a_run_dir_that_is_a_file_exits_2_naming_it(tmp_path, capsys) -> None:
    path = tmp_path / "not-a-folder"
    path.write_text("x")
    assert wsol_main(["train", "--run-dir", str(path), *TINY]) == 2
    assert f"run directory error: run directory {path} is a file" in _one_line(capsys.readouterr().err)
    assert wsol_main(["train", "--runs-dir", str(path), *TINY]) == 2
    assert f"cannot create run directory {path}/" in _one_line(capsys.readouterr().err)
    assert path.read_text() == "x"


def test_train_on_a_finished_run_with_a_corrupt_history_repairs_it(tmp_path, capsys) -> None:
    config = tiny_run_config(tmp_path)
    run_dir = train(config, run_dir=tmp_path / "run", progress=False)
    good = (run_dir / "history.csv").read_text()
    (run_dir / "history.csv").write_text("epoch,train_loss\n1,")
    assert wsol_main(["train", "--config", str(run_dir / "config.json"), "--run-dir", str(run_dir), "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == str(run_dir)
    assert f"{Path(run_dir) / 'history.csv'} is corrupt" in captured.err
    assert (run_dir / "history.csv").read_text() == good
