"""Tests for wsol_utils.ui.boxeval_cli: ``python -m wsol_utils evaluate`` end to end and its errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from wsol_utils.data.metadata import write_wsoleval_metadata
from wsol_utils.data.scoremaps import evaluate_scoremaps
from wsol_utils.scoring.metrics import reference_box_metrics, reference_pxap
from wsol_utils.ui.boxeval_cli import main

IDS = ["val/001.Aa/a_1.jpg", "val/001.Aa/a_2.jpg", "val/002.Bb/b_3.jpg"]


def _folder(root: Path) -> tuple[Path, Path, list[np.ndarray]]:
    """Three 32x32 maps (a square, a ring, an empty map) with boxes in 64x48 original images."""
    maps = [np.zeros((32, 32)) for _ in IDS]
    maps[0][4:12, 8:20] = 1.0
    maps[1][10:30, 10:30] = 0.8
    maps[1][15:25, 15:25] = 0.0
    maps[1][0, 0] = 1.0
    sizes = dict.fromkeys(IDS, (64, 48))
    boxes = {IDS[0]: [[16, 6, 38, 16]], IDS[1]: [[20, 15, 58, 44], [0, 0, 3, 3]], IDS[2]: [[0, 0, 63, 47]]}
    write_wsoleval_metadata(root / "meta", IDS, dict.fromkeys(IDS, 1), sizes, boxes)
    for image_id, scoremap in zip(IDS, maps):
        (root / "maps" / image_id).parent.mkdir(parents=True, exist_ok=True)
        np.save(root / "maps" / f"{image_id}.npy", scoremap)
    return root / "meta", root / "maps", maps


def test_cli_prints_one_json_object_equal_to_the_reference(tmp_path: Path) -> None:
    meta, maps_dir, maps = _folder(tmp_path)
    command = [
        sys.executable,
        "-m",
        "wsol_utils",
        "evaluate",
        "--metadata-dir",
        str(meta),
        "--scoremap-dir",
        str(maps_dir),
        "--interval",
        "0.01",
        "--iou",
        "30",
        "50",
        "70",
        "--workers",
        "1",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("\n") == 1  # exactly one JSON line; progress goes to stderr
    printed = json.loads(done.stdout)
    # boxes rescaled 64x48 -> 32x32 with int(): x * 32 / 64, y * 32 / 48
    gts = [np.array([[8, 4, 19, 10]]), np.array([[10, 10, 29, 29], [0, 0, 1, 2]]), np.array([[0, 0, 31, 31]])]
    assert printed == reference_box_metrics(maps, gts, interval=0.01)
    assert printed == evaluate_scoremaps(meta, maps_dir, interval=0.01, workers=1, progress=False)
    assert set(printed) == {
        "num_images",
        "interval",
        "iou_levels",
        "maxboxacc",
        "maxboxacc_threshold",
        "maxboxacc_v2",
        "v2_per_iou",
    }


def test_cli_with_masks_reports_pxap(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    meta, maps_dir, maps = _folder(tmp_path)
    masks = [(scoremap > 0.5).astype(np.uint8) for scoremap in maps]
    masks[0][0, :] = 255  # an ignored row
    masks[2][5:9, 5:9] = 1
    for image_id, mask in zip(IDS, masks):
        (tmp_path / "masks" / image_id).parent.mkdir(parents=True, exist_ok=True)
        np.save(tmp_path / "masks" / f"{image_id}.npy", mask)
    code = main(
        [
            "--metadata-dir",
            str(meta),
            "--scoremap-dir",
            str(maps_dir),
            "--mask-dir",
            str(tmp_path / "masks"),
            "--interval",
            "0.05",
            "--iou",
            "50",
            "--workers",
            "1",
            "--no-progress",
        ]
    )
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["pxap"] == reference_pxap(maps, masks, interval=0.05)
    assert printed["iou_levels"] == [50] and set(printed["v2_per_iou"]) == {"50"}


def test_cli_missing_scoremaps_lists_count_and_first_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    meta, maps_dir, _ = _folder(tmp_path)
    (maps_dir / f"{IDS[1]}.npy").unlink()
    code = main(["--metadata-dir", str(meta), "--scoremap-dir", str(maps_dir), "--no-progress"])
    captured = capsys.readouterr()
    assert code == 1 and captured.out == ""
    assert "1 of 3 score maps are missing" in captured.err and "b_3" not in captured.err
    assert f"{IDS[1]}.npy" in captured.err


def _huge_header(path: Path) -> None:
    """A ``.npy`` header claiming a 100000 x 100000 float64 array (80 GB), and no data."""
    with path.open("wb") as handle:
        header = {"descr": "<f8", "fortran_order": False, "shape": (100000, 100000)}
        np.lib.format.write_array_header_1_0(handle, header)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (
            lambda meta, maps: (meta / "class_labels.txt").write_text(f"{IDS[0]},1\n{IDS[1]}\n{IDS[2]},0\n"),
            "class_labels.txt:2: expected '<image_id>,<label>'",
        ),
        (
            lambda meta, maps: (meta / "localization.txt").write_text(
                f"{IDS[0]},0,0,5,5\n{IDS[1]},0,0,5,5\n{IDS[2]},0,0,65,5\n"
            ),
            "localization.txt:3: box [0, 0, 65, 5] lies outside the image size 64x48",
        ),
        (lambda meta, maps: np.save(maps / f"{IDS[2]}.npy", np.full((32, 32), 2.0)), "b_3.jpg.npy: score map values"),
        (lambda meta, maps: np.save(maps / f"{IDS[2]}.npy", np.zeros(32)), "b_3.jpg.npy: a score map must be 2-D"),
        (
            lambda meta, maps: (meta / "image_ids.txt").write_bytes(b"val/001.Aa/a_1.jpg\nval/\xe9.jpg\n"),
            "image_ids.txt:2: not UTF-8 text (byte 0xe9 at column 5); the file must be UTF-8",
        ),
        (
            lambda meta, maps: _huge_header(maps / f"{IDS[2]}.npy"),
            "b_3.jpg.npy: header claims a 100000 x 100000 score map",
        ),
    ],
)
def test_cli_bad_input_exits_nonzero_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], damage, message: str
) -> None:
    meta, maps_dir, _ = _folder(tmp_path)
    damage(meta, maps_dir)
    code = main(["--metadata-dir", str(meta), "--scoremap-dir", str(maps_dir), "--no-progress", "--workers", "1"])
    err = capsys.readouterr().err
    assert code == 1 and message in err, err


def test_cli_rejects_bad_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    meta, maps_dir, _ = _folder(tmp_path)
    base = ["--metadata-dir", str(meta), "--scoremap-dir", str(maps_dir), "--no-progress"]
    assert main([*base, "--interval", "1.5"]) == 1
    assert "interval must be in (0, 1)" in capsys.readouterr().err
    assert main([*base, "--workers", "0"]) == 1
    assert "workers must be >= 1" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    assert "<scoremap-dir>/<image_id>.npy" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("bad_id", "message"),
    [
        ("../outside/x.jpg", "image_ids.txt:2: image id '../outside/x.jpg' climbs out of its folder"),
        ("/abs/path", "image_ids.txt:2: image id '/abs/path' is an absolute path"),
    ],
)
def test_cli_refuses_ids_that_leave_the_folders(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], bad_id: str, message: str
) -> None:
    meta, maps_dir, _ = _folder(tmp_path)
    for name in ("image_ids", "class_labels", "image_sizes", "localization"):
        path = meta / f"{name}.txt"
        path.write_text(path.read_text().replace(IDS[1], bad_id))
    (tmp_path / "outside").mkdir()
    np.save(tmp_path / "outside" / "x.jpg.npy", np.zeros((32, 32)))  # where '../outside/x.jpg' leads: valid
    code = main(["--metadata-dir", str(meta), "--scoremap-dir", str(maps_dir), "--no-progress", "--workers", "1"])
    err = capsys.readouterr().err
    assert code == 1 and message in err, err


def test_the_evaluate_command_scores_without_importing_torch(tmp_path: Path) -> None:
    """Issue 19 item 4: ``python -m wsol_utils evaluate`` spent seconds importing torch only because
    ``wsol_utils.data``'s package init imported ``base`` (torch) on the way to the metadata reader."""
    meta, maps, _ = _folder(tmp_path)
    probe = (
        "import sys, runpy\n"
        f"sys.argv = ['wsol_utils', 'evaluate', '--metadata-dir', {str(meta)!r}, '--scoremap-dir', {str(maps)!r},"
        " '--workers', '1']\n"
        "try:\n    runpy.run_module('wsol_utils', run_name='__main__')\n"
        "except SystemExit as e:\n    assert not e.code\n"
        "print('TORCH' if 'torch' in sys.modules else 'NO TORCH')\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip().splitlines()[-1] == "NO TORCH", result.stdout + result.stderr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the fork server is Linux's start method here")
def test_the_worker_server_starts_before_the_evaluator_is_imported_and_workers_agree(tmp_path: Path) -> None:
    """Issue 19 item 4: the fork server of the workers is started before this process imports numpy and OpenCV,
    so both start-ups overlap; it runs as a child process afterwards, and the command's numbers with two workers over
    several chunks (40 maps, chunks of 16) are the reference's."""
    probe = (
        "import sys, time, psutil\n"
        "from wsol_utils.ui.boxeval_cli import start_worker_server\n"
        "start_worker_server()\n"
        "def command(child):\n"
        "    try:\n"
        "        return ' '.join(child.cmdline())\n"
        "    except psutil.Error:  # a child that exited meanwhile\n"
        "        return ''\n"
        "for _ in range(100):  # the child's command line shows once it has exec'd: wait up to 5 s\n"
        "    server = [c for c in psutil.Process().children() if 'forkserver' in command(c)]\n"
        "    if server:\n"
        "        break\n"
        "    time.sleep(0.05)\n"
        "print(sorted({'numpy', 'cv2', 'wsol_utils.scoring.boxeval'} & set(sys.modules)), len(server))\n"
    )
    started = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=300)
    assert started.stdout.split() == ["[]", "1"], started.stdout + started.stderr
    ids = [f"val/{index:03d}.C/img_{index}.jpg" for index in range(40)]
    rng = np.random.default_rng(0)
    maps = [np.clip(rng.normal(0.5, 0.3, (6, 6)).repeat(4, 0).repeat(4, 1), 0, 1) for _ in ids]
    boxes = {image_id: [[int(rng.integers(0, 10)), 2, 20, 22]] for image_id in ids}
    write_wsoleval_metadata(tmp_path / "meta", ids, dict.fromkeys(ids, 0), dict.fromkeys(ids, (24, 24)), boxes)
    for image_id, scoremap in zip(ids, maps):
        (tmp_path / "maps" / image_id).parent.mkdir(parents=True, exist_ok=True)
        np.save(tmp_path / "maps" / f"{image_id}.npy", scoremap)
    command = [sys.executable, "-m", "wsol_utils", "evaluate", "--metadata-dir", str(tmp_path / "meta")]
    command += ["--scoremap-dir", str(tmp_path / "maps"), "--interval", "0.01", "--workers", "2"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == reference_box_metrics(maps, [np.array(boxes[i]) for i in ids], interval=0.01)
