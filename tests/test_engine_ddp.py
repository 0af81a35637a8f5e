"""The same train() under torchrun: 2 CPU processes (gloo) on a tiny synthetic set."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from tiny_data import tiny_run_config

from wsol_utils.engine import load_run, train
from wsol_utils.engine.checkpoint import load_checkpoint


@pytest.mark.slow  # 2 x (import torch + train) in subprocesses: ~65-170 s on the shared 2-core machine
def test_two_process_gloo_run_matches_single_process_shapes_and_loads(tmp_path) -> None:
    config = tiny_run_config(tmp_path, method="acol", batch_size=16)
    single = train(config, run_dir=tmp_path / "single", progress=False)
    (tmp_path / "config.json").write_text(config.to_json())
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
    env.pop("WORLD_SIZE", None)
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nnodes",
        "1",
        "--nproc_per_node",
        "2",
        "-m",
        "wsol_utils",
        "train",
        "--config",
        str(tmp_path / "config.json"),
        "--run-dir",
        str(tmp_path / "ddp"),
        "--quiet",
    ]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    done = json.loads((tmp_path / "ddp" / "done.json").read_text())
    assert done["world_size"] == 2
    ddp_state = load_checkpoint(tmp_path / "ddp" / "checkpoint.pt")
    single_state = load_checkpoint(single / "checkpoint.pt")
    assert ddp_state["epoch"] == 1
    assert not any(k.startswith("module.") for k in ddp_state["model"])  # unwrapped before saving
    assert {k: v.shape for k, v in ddp_state["model"].items()} == {k: v.shape for k, v in single_state["model"].items()}
    loaded_config, model = load_run(tmp_path / "ddp")
    assert loaded_config == config and model.method == "acol"
    # both ranks trained on disjoint halves (32 images each); rank 0 logged the all-reduced count
    assert (tmp_path / "ddp" / "history.csv").read_text().count("\n") == 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__]))
