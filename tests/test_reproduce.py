"""Tests for wsol_utils.ui.reproduce: selection, paths, metadata stripping, and the runner end to end
on tiny stand-in notebooks (the real suite runs under nbval and in the slow smoke test)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from wsol_utils.ui import reproduce

PARAMETERS = """DATASET = "synthetic"
DATA_ROOT = None
EPOCHS = None
DEVICE = "auto"
SMOKE = False
RUNS_DIR = "../runs"
FIGURES_DIR = "../figures"
PROGRESS = False"""

WRITE_PARAMETERS = """import json, os
from pathlib import Path
Path(FIGURES_DIR).mkdir(parents=True, exist_ok=True)
Path(FIGURES_DIR, NAME + ".json").write_text(json.dumps(
    {"dataset": DATASET, "smoke": SMOKE, "epochs": EPOCHS, "runs": RUNS_DIR, "cwd": os.getcwd()}))
print("wrote", NAME)"""


def _write_notebook(folder: Path, name: str, body: list[str]) -> Path:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    parameters = nbformat.v4.new_code_cell(PARAMETERS)
    parameters.metadata["tags"] = ["parameters"]
    notebook.cells = [
        parameters,
        nbformat.v4.new_code_cell(f"NAME = {name!r}"),
        *(nbformat.v4.new_code_cell(source) for source in body),
    ]
    path = folder / f"{name}.ipynb"
    nbformat.write(notebook, path)
    return path


@pytest.fixture()
def checkout(tmp_path: Path) -> Path:
    """A stand-in checkout: notebooks/01 and 02 write their parameters; 03 fails in its 4th cell."""
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    _write_notebook(notebooks, "01_cam_equivalence", [WRITE_PARAMETERS])
    _write_notebook(notebooks, "02_acol_training", [WRITE_PARAMETERS])
    _write_notebook(
        notebooks, "03_hclnet_complementary_maps", ["x = 1", "raise RuntimeError('the map is empty')", WRITE_PARAMETERS]
    )
    return tmp_path


def test_select_notebooks_by_number_or_name_in_suite_order():
    assert reproduce.select_notebooks(None) == list(reproduce.SUITE)
    assert reproduce.select_notebooks(["04", "02_acol_training"]) == ["02_acol_training", "04_fusion_ablation"]
    with pytest.raises(ValueError, match="--only 09: no such notebook"):
        reproduce.select_notebooks(["09"])


def test_suite_paths_smoke_never_points_at_figures(tmp_path):
    (tmp_path / "notebooks").mkdir()
    full = reproduce.SuitePaths.resolve(smoke=False, notebooks_dir=tmp_path / "notebooks")
    smoke = reproduce.SuitePaths.resolve(smoke=True, notebooks_dir=tmp_path / "notebooks")
    assert (full.outputs, full.figures, full.runs) == (tmp_path / "outputs", tmp_path / "figures", tmp_path / "runs")
    assert (smoke.outputs, smoke.figures) == (
        tmp_path / "outputs" / "smoke",
        tmp_path / "outputs" / "smoke" / "figures",
    )


def test_strip_volatile_metadata_keeps_outputs_and_tags():
    notebook = nbformat.v4.new_notebook()
    notebook.metadata.update({"papermill": {"duration": 3.2}, "widgets": {"state": {}}, "kernelspec": {}})
    cell = nbformat.v4.new_code_cell("print(1)", outputs=[nbformat.v4.new_output("stream", text="1\n")])
    cell.metadata.update(
        {"papermill": {"status": "completed"}, "execution": {"iopub.status.busy": "t"}, "tags": ["parameters"]}
    )
    notebook.cells = [cell]
    reproduce.strip_volatile_metadata(notebook)
    assert dict(notebook.metadata) == {"kernelspec": {}}
    assert dict(cell.metadata) == {"tags": ["parameters"]}
    assert cell.outputs[0]["text"] == "1\n"


def test_runner_executes_in_order_passes_parameters_and_reports(checkout, capsys):
    code = reproduce.main(
        ["--notebooks-dir", str(checkout / "notebooks"), "--only", "01", "02", "--smoke", "--epochs", "2"]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    lines = out.splitlines()
    assert lines[1].startswith("[1/2] 01_cam_equivalence ... ok (")
    assert lines[2].startswith("[2/2] 02_acol_training ... ok (")
    smoke = checkout / "outputs" / "smoke"
    written = json.loads((smoke / "figures" / "02_acol_training.json").read_text())
    assert written == {
        "dataset": "synthetic",
        "smoke": True,
        "epochs": 2,
        "runs": str(checkout / "runs"),
        "cwd": str(checkout / "notebooks"),
    }
    assert not (checkout / "figures").exists()  # smoke never writes the committed figures
    executed = nbformat.read(smoke / "02_acol_training.ipynb", as_version=4)
    assert "papermill" not in executed.metadata
    assert all("papermill" not in c.metadata and "execution" not in c.metadata for c in executed.cells)
    assert any(o.get("text") == "wrote 02_acol_training\n" for c in executed.cells for o in c.get("outputs", []))
    # The summary names every artifact and executed copy.
    assert "01_cam_equivalence.json" in out and "02_acol_training.json" in out
    assert str(smoke / "01_cam_equivalence.ipynb") in out or "01_cam_equivalence.ipynb" in out


def test_runner_fails_loudly_with_the_cell_and_stops(checkout, capsys):
    code = reproduce.main(
        [
            "--notebooks-dir",
            str(checkout / "notebooks"),
            "--only",
            "03",
            "01",
            "--output-dir",
            str(checkout / "out"),
            "--figures-dir",
            str(checkout / "f"),
        ]
    )
    out = capsys.readouterr().out
    assert code == 1
    assert "[1/2] 01_cam_equivalence ... ok" in out
    assert "[2/2] 03_hclnet_complementary_maps ... FAILED" in out
    assert "RuntimeError: the map is empty" in out
    assert "cell 4 " in out  # parameters, injected parameters, NAME, x = 1, raise -> index 4
    assert str(checkout / "out" / "03_hclnet_complementary_maps.ipynb") in out
    executed = nbformat.read(checkout / "out" / "03_hclnet_complementary_maps.ipynb", as_version=4)
    errors = [o for c in executed.cells for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert errors and errors[0]["ename"] == "RuntimeError"


def test_runner_rejects_bad_arguments(checkout, capsys):
    with pytest.raises(SystemExit) as exit_info:
        reproduce.main(["--only", "09"])
    assert exit_info.value.code == 2
    assert "no such notebook" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        reproduce.main(["--epochs", "0"])
    missing = reproduce.SuitePaths.resolve(smoke=True, notebooks_dir=checkout / "nowhere")
    with pytest.raises(FileNotFoundError, match="--notebooks-dir"):
        reproduce.run_notebook("01_cam_equivalence", missing, {})


@pytest.mark.slow
def test_smoke_run_of_the_real_notebook_writes_the_localization_table(tmp_path, capsys):
    """The real 02 notebook in smoke mode: the table has one row per method and our columns beside the
    paper's. Uses the checkout's run cache (runs/, git-ignored), shared with the nbval run of the notebooks,
    so the three tiny runs are trained at most once per machine."""
    pytest.importorskip("wsol_utils.nets.models")
    code = reproduce.main(
        ["--smoke", "--only", "02", "--output-dir", str(tmp_path / "out"), "--figures-dir", str(tmp_path / "figs")]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    table = pd.read_csv(tmp_path / "figs" / "table_localization.csv")
    assert table["method"].tolist()[:3] == ["CAM", "ACoL", "HCLNet"]  # then the calibration baselines
    assert all(m.startswith("baseline: ") for m in table["method"].tolist()[3:]) and len(table) == 6
    gt_known, v2 = "GT-known loc err @0.2 (papers)", "MaxBoxAccV2 (wsoleval)"
    assert {
        "cls err top-1",
        "cls err top-1 ±",
        "top-1 loc err @0.2 (papers)",
        gt_known,
        f"{gt_known} ±",
        v2,
        "paper CUB: top-1 loc err (papers)",
        "paper CUB (wsoleval): MaxBoxAccV2 (wsoleval)",
    } <= set(table.columns)
    assert table[gt_known].between(0, 100).all() and table[v2].between(0, 100).all()
    assert sorted(p.name for p in (tmp_path / "figs").glob("*.png")) == [
        "acol_maps.png",
        "box_from_map.png",
        "loss_curves.png",
        "main_per_seed.png",
        "training_curves.png",
    ]
    primary = pd.read_csv(tmp_path / "figs" / "table_primary_comparisons.csv")
    assert len(primary) == 6 and set(primary["verdict"]) <= {"higher", "lower", "not shown"}
    assert (primary["p (Holm)"] >= primary["p"]).all()  # the correction never lowers a p value
    per_seed = pd.read_csv(tmp_path / "figs" / "table_main_comparison_per_seed.csv")
    assert set(per_seed["variant"]) >= {"cam", "acol", "acol_val", "hclnet"} and set(per_seed["seed"]) == {0, 1}


def test_split_lanes_keeps_notebooks_that_share_runs_together():
    from wsol_utils.ui.reproduce import SUITE, split_lanes

    assert split_lanes(SUITE, 1) == [list(SUITE)]
    assert split_lanes(SUITE, 2) == [list(SUITE[:5]), ["06_when_erasing_helps", "07_posthoc_cams"]]
    assert split_lanes(["02_acol_training", "04_fusion_ablation"], 2) == [["02_acol_training", "04_fusion_ablation"]]


def test_lane_arguments_drop_only_and_jobs():
    from wsol_utils.ui.reproduce import _without_option

    argv = ["--smoke", "--jobs", "2", "--only", "02", "04", "--dataset=cub", "--jobs=3"]
    once = _without_option(argv, "--only", takes_values=True)
    assert once == ["--smoke", "--jobs", "2", "--dataset=cub", "--jobs=3"]
    assert _without_option(once, "--jobs", takes_values=False) == ["--smoke", "--dataset=cub"]


# ------------------------------------------------------------------ interrupts: SIGINT / SIGTERM end everything

LOOP_WRITING_FIGURES = """import time
from pathlib import Path
Path(FIGURES_DIR).mkdir(parents=True, exist_ok=True)
Path(FIGURES_DIR, NAME + ".started").write_text("1")
while True:  # a long training that keeps writing its figure
    Path(FIGURES_DIR, NAME + ".tick").write_text(str(time.time()))
    time.sleep(0.05)"""


def _wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


@pytest.fixture()
def leftovers():
    """A list for processes a test starts; those still alive at its end are killed (a failing test leaves none)."""
    psutil = pytest.importorskip("psutil")
    processes: list = []
    yield processes
    for process in processes:
        with contextlib.suppress(psutil.Error):
            process.kill()


def _interrupt_reproduce(tmp_path: Path, names: list[str], extra: list[str], signum: int, leftovers: list):
    """Start ``python -m wsol_utils reproduce`` on notebooks that loop writing figures, send ``signum`` once every
    one of them runs; return ``(exit code, stderr, the processes it had started, the figures folder, outputs)``."""
    psutil = pytest.importorskip("psutil")
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    for name in names:
        _write_notebook(notebooks, name, [LOOP_WRITING_FIGURES])
    figures, outputs = tmp_path / "figs", tmp_path / "out"
    command = [sys.executable, "-m", "wsol_utils", "reproduce", "--notebooks-dir", str(notebooks)]
    command += ["--output-dir", str(outputs), "--figures-dir", str(figures), *extra]
    env = {**os.environ, "PYTHONPATH": str(Path(reproduce.__file__).parents[1])}
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) as process:
        try:
            _wait_for(lambda: all((figures / f"{n}.started").exists() for n in names), 120, "the notebooks to start")
            started = psutil.Process(process.pid).children(recursive=True)
            leftovers += started
            process.send_signal(signum)
            _, err = process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
    return process.returncode, err, started, figures, outputs


def _check_clean_end(err: str, started, figures: Path, outputs: Path, names: list[str], signal_name: str) -> None:
    psutil = pytest.importorskip("psutil")
    assert len(err.splitlines()) == 1 and f"reproduce: interrupted by {signal_name}: stopped" in err, err
    assert "Traceback" not in err
    _, alive = psutil.wait_procs(started, timeout=2)  # every lane and kernel ended with it (2 s: reaping)
    assert not alive, [p.cmdline() for p in alive]
    ticks = {name: (figures / f"{name}.tick").read_text() for name in names}
    time.sleep(0.3)  # nothing goes on writing figures
    assert ticks == {name: (figures / f"{name}.tick").read_text() for name in names}
    for name in names:
        assert not (outputs / f"{name}.ipynb").exists()
        partial = nbformat.read(outputs / f"{name}.interrupted.ipynb", as_version=4)
        assert partial.cells[-1].source == LOOP_WRITING_FIGURES


def test_sigint_ends_the_kernel_marks_the_partial_copy_and_exits_130(tmp_path: Path, leftovers: list) -> None:
    names = ["01_cam_equivalence"]
    code, err, started, figures, outputs = _interrupt_reproduce(
        tmp_path, names, ["--only", "01"], signal.SIGINT, leftovers
    )
    assert code == 130, err
    assert len(started) >= 1  # the kernel
    _check_clean_end(err, started, figures, outputs, names, "SIGINT")
    assert "stopped 01_cam_equivalence and its kernel; its partial copy is" in err


def test_sigterm_to_parallel_lanes_ends_every_lane_and_kernel_and_exits_143(tmp_path: Path, leftovers: list) -> None:
    names = ["01_cam_equivalence", "06_when_erasing_helps"]
    extra = ["--only", "01", "06", "--jobs", "2"]
    code, err, started, figures, outputs = _interrupt_reproduce(tmp_path, names, extra, signal.SIGTERM, leftovers)
    assert code == 143, err
    assert len(started) >= 4  # two lanes, two kernels
    _check_clean_end(err, started, figures, outputs, names, "SIGTERM")
    assert "stopped 2 lane(s) and their kernels; partial copies:" in err


def test_a_lane_that_ignores_the_signal_is_killed_with_its_kernel_after_the_grace(monkeypatch, leftovers: list) -> None:
    """A lane deaf to SIGTERM (stuck), with a child in its own session (as a kernel): both end END_GRACE_S later."""
    psutil = pytest.importorskip("psutil")
    stuck = (
        "import signal, subprocess, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'], start_new_session=True)\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    lane = subprocess.Popen([sys.executable, "-c", stuck], stdout=subprocess.PIPE, text=True, start_new_session=True)
    assert lane.stdout is not None and lane.stdout.readline() == "ready\n"
    kernel = psutil.Process(lane.pid).children()
    leftovers += [psutil.Process(lane.pid), *kernel]
    monkeypatch.setattr(reproduce, "END_GRACE_S", 0.3)
    monkeypatch.setattr(reproduce.INTERRUPT, "signum", signal.SIGTERM)
    reproduce._signal_lanes([lane], signal.SIGTERM)  # what the handler does: ignored by this lane
    start = time.monotonic()
    assert reproduce._wait_for_lanes([lane]) == [-signal.SIGKILL]
    assert time.monotonic() - start < 5
    _, alive = psutil.wait_procs(kernel, timeout=2)
    assert len(kernel) == 1 and not alive


@pytest.mark.parametrize(
    ("cores", "lanes", "preset", "expected"),
    [(2, 2, None, "1"), (4, 2, None, "2"), (8, 3, None, "2"), (2, 3, None, "1"), (2, 2, "4", "4")],
)
def test_lanes_share_the_cores_among_their_training_workers(monkeypatch, cores, lanes, preset, expected):
    """Issue 19: ``--jobs 2`` ran 2 lanes x 2 one-thread workers on 2 cores; each lane now gets cores // lanes
    workers (WSOL_TRAIN_JOBS, at least 1), unless the caller set WSOL_TRAIN_JOBS."""
    import subprocess

    seen: list[dict[str, str]] = []

    class FakeLane:
        def __init__(self, _command: list[str], **kwargs: object) -> None:
            seen.append(dict(kwargs["env"]))  # type: ignore[call-overload]
            self.stdout: list[str] = []
            self.returncode = 0

        def wait(self) -> int:
            return 0

        def poll(self) -> int:
            return 0

    monkeypatch.setattr(subprocess, "Popen", FakeLane)
    monkeypatch.setattr(reproduce.os, "sched_getaffinity", lambda _pid: set(range(cores)), raising=False)
    if preset is None:
        monkeypatch.delenv("WSOL_TRAIN_JOBS", raising=False)
    else:
        monkeypatch.setenv("WSOL_TRAIN_JOBS", preset)
    assert reproduce.run_lanes([[f"0{i}"] for i in range(lanes)], ["--smoke"], lanes) == 0
    assert [env["WSOL_TRAIN_JOBS"] for env in seen] == [expected] * lanes
    assert all(env["OMP_NUM_THREADS"] == "1" for env in seen)
