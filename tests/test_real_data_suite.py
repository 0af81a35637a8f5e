"""The paper-scale path on real data, exercised on this CPU (docs/methods.md §4): the suite's real-data settings, the
papers' 10-crop classification, the random-init flag of every table, and -- marked ``slow`` -- the notebooks run end
to end on tiny CUB-layout and ILSVRC-style folders with fake "pretrained" VGG16 / ResNet50 checkpoints.

Never touches the network: ``TORCH_HOME`` is a temporary folder holding links to the session's fake checkpoints
(:mod:`fake_weights`, torchvision's keys and shapes) or nothing, and ``--offline`` / ``WSOL_OFFLINE=1`` forbid
downloads.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from fake_weights import install
from tiny_data import TinyImage, make_cub_folder, make_wsoleval_folder
from torch import Tensor, nn

from wsol_utils import data
from wsol_utils.engine import RunConfig, evaluate, load_run, paper_config, train
from wsol_utils.engine.evaluate import ten_crop_outer_size, ten_crop_scores
from wsol_utils.engine.run import run_pretrained_backbone
from wsol_utils.nets.models import WSOLOutput
from wsol_utils.studies import tables
from wsol_utils.ui import reproduce, suite
from wsol_utils.ui.suite import Suite

#: Environment variables the suite, the backbones and the runner read; every test starts without them.
ENV = ("TORCH_HOME", "WSOL_OFFLINE", "WSOL_ALLOW_RANDOM_INIT", "WSOL_BACKBONE", "WSOL_SMOKE", "WSOL_NOTEBOOK")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No inherited switches; the runner's ``os.environ`` changes are undone after each test (``setenv`` first, so
    that monkeypatch records a variable that was not set and removes it again)."""
    for name in ENV:
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)


def _cub_images(classes: int = 4, per_class: int = 3) -> list[TinyImage]:
    """``classes`` x ``per_class`` images (two training, the rest test), 48-72 px, one box each."""
    images = []
    for k in range(classes):
        for j in range(per_class):
            width, height = 48 + 8 * k, 40 + 6 * j
            box = ((4, 5, width - 10, height - 8),)
            images.append(TinyImage(f"{k + 1:03d}.C{k}/C{k}_{j}.jpg", k, (width, height), box, j < 2))
    return images


def _ilsvrc_root(root: Path) -> Path:
    """An ILSVRC-style wsoleval root: ``train/<wnid>/...`` ids labelled in sorted-wnid order, ``val/...`` test ids."""
    wnids = ("n01440764", "n01443537", "n01484850")
    train = [
        TinyImage(f"train/{wnid}/{wnid}_{j}.JPEG", k, (56, 48), ((6, 4, 40, 38),))
        for k, wnid in enumerate(wnids)
        for j in range(2)
    ]
    test = [TinyImage(f"val/ILSVRC2012_val_{k + 1:08d}.JPEG", k, (52, 60), ((3, 8, 45, 50),)) for k in range(3)]
    make_wsoleval_folder(root, train, split="train")
    return make_wsoleval_folder(root, test, split="test")


# --------------------------------------------------------------------------------------------------------------
# the suite's settings on real data


def test_real_data_setting_and_the_backbone_knob(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cub = make_cub_folder(tmp_path / "cub", _cub_images())
    full = Suite.from_parameters("cub", str(cub), figures_dir=tmp_path / "f").config("hclnet")
    assert (full.backbone, full.layout, full.image_size, full.epochs, full.batch_size) == (
        "vgg16",
        "28x28",
        224,
        60,
        20,
    )
    assert (full.lr, full.optimizer, full.schedule, full.delta, full.val_split) == (1e-4, "acol", "constant", 0.6, None)
    monkeypatch.setenv(suite.BACKBONE_ENV, "resnet50")
    smoke = Suite.from_parameters("cub", str(cub), smoke=True, figures_dir=tmp_path / "f").config("acol")
    assert (smoke.backbone, smoke.image_size, smoke.epochs) == ("resnet50", suite.SMOKE_REAL_IMAGE_SIZE, 1)
    assert smoke.model_kwargs == suite.SMOKE_REAL_MODEL_KWARGS
    ilsvrc = Suite.from_parameters("wsoleval", str(_ilsvrc_root(tmp_path / "ilsvrc")), figures_dir=tmp_path / "f")
    assert ilsvrc.config("cam").epochs == suite.ILSVRC_EPOCHS == 6
    monkeypatch.setenv(suite.BACKBONE_ENV, "inception")
    with pytest.raises(ValueError, match=r"WSOL_BACKBONE='inception'.*vgg16, resnet50"):
        Suite.from_parameters("cub", str(cub), figures_dir=tmp_path / "f").config("cam")
    assert (reproduce.BACKBONE_ENV, reproduce.BACKBONES) == (suite.BACKBONE_ENV, suite.REAL_DATA_BACKBONES)


def test_reproduce_backbone_flag(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        reproduce.main(["--backbone", "resnet50", "--only", "02"])  # synthetic: no such knob
    assert "--backbone is for real data" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        reproduce.main(["--dataset", "cub", "--only", "02"])
    assert "--dataset cub needs --data-root" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        reproduce.main(["--dataset", "cub", "--data-root", "x", "--backbone", "vgg19"])
    assert "invalid choice: 'vgg19'" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------------------------
# 10-crop classification


class CropProbe(nn.Module):
    """Logits ``[v, 0]`` with ``v`` the value of the crop's top-left pixel; records the labels it was given."""

    method = "cam"

    def __init__(self) -> None:
        super().__init__()
        self.labels: list[Tensor | None] = []

    def forward(self, images: Tensor, labels: Tensor | None = None, *, delta: float | None = None) -> WSOLOutput:
        self.labels.append(labels)
        value = images[:, 0, 0, 0]
        logits = torch.stack([value, torch.zeros_like(value)], dim=1)
        return WSOLOutput(logits, images[:, :2], None, None, None, None)


def test_ten_crop_scores_average_the_softmax_of_the_ten_crops() -> None:
    # a 4x4 image whose pixel value is its column: crops of 2 px have top-left values tl 0, tr 2, bl 0, br 2,
    # centre 1 (top-left at (1, 1)), and their mirror images 1, 3, 1, 3, 2
    image = torch.arange(4.0).expand(1, 3, 4, 4)
    probe = CropProbe()
    labels = torch.tensor([1])
    scores = ten_crop_scores(probe, image, 2, labels)  # a stand-in for a WSOLModel
    sigma = [1 / (1 + math.exp(-v)) for v in (0, 2, 0, 2, 1, 1, 3, 1, 3, 2)]
    expected = sum(sigma) / 10
    np.testing.assert_allclose(scores.numpy(), [[expected, 1 - expected]], rtol=1e-6)
    assert len(probe.labels) == 10 and all(seen is labels for seen in probe.labels)  # erase with the GT class
    assert ten_crop_outer_size(224) == 256 and ten_crop_outer_size(64) == 73
    with pytest.raises(ValueError, match="do not fit"):
        ten_crop_scores(probe, image, 5)


def test_evaluate_ten_crop_changes_classification_only(tmp_path: Path) -> None:
    cub = make_cub_folder(tmp_path / "cub", _cub_images())
    config = RunConfig(
        method="acol",
        dataset="cub",
        data_root=str(cub),
        image_size=32,
        epochs=1,
        batch_size=4,
        device="cpu",
        val_split=None,
    )
    run = train(config, runs_dir=tmp_path / "runs", progress=False)
    single = evaluate(run, device="cpu", progress=False, cache_maps=False)
    crops = evaluate(run, device="cpu", progress=False, cache_maps=False, ten_crop=True)
    boxes = [c for c in single.records.columns if c.endswith(("_x0", "_y1", "_iou"))]
    pd.testing.assert_frame_equal(single.records[boxes], crops.records[boxes])
    assert crops.summary["gt_known_loc_err"] == single.summary["gt_known_loc_err"]
    assert crops.summary["maxboxacc_v2"] == single.summary["maxboxacc_v2"]
    # the classification columns are the argmax of the 10-crop scores of the 37 px images
    _, model = load_run(run)
    outer = data.load("cub", root=cub, split="test", transform="test", image_size=ten_crop_outer_size(32))
    batch = data.collate([outer[i] for i in range(len(outer))])
    expected = ten_crop_scores(model, batch.images, 32, None).argmax(dim=1).numpy()  # label-free, as evaluate
    np.testing.assert_array_equal(crops.records["pred"].to_numpy(), expected)
    assert crops.summary["cls_err_top1"] == pytest.approx(100 * np.mean(expected != batch.labels.numpy()))
    synthetic = RunConfig(
        method="cam",
        image_size=16,
        epochs=1,
        device="cpu",
        val_split=None,
        data_root=str(tmp_path / "syn"),
        dataset_kwargs={"num_train": 8, "num_test": 4},
    )
    with pytest.raises(ValueError, match="ten_crop=True needs image files"):
        evaluate(train(synthetic, runs_dir=tmp_path / "runs", progress=False), device="cpu", ten_crop=True)


# --------------------------------------------------------------------------------------------------------------
# no random backbone in a paper table


def _entry(method: str, backbone: str, pretrained: bool | None, seed: int = 0) -> dict[str, Any]:
    return {
        "run": f"{method}-{backbone}-{seed}",
        "config": {"method": method, "backbone": backbone, "seed": seed},
        "pretrained_backbone": pretrained,
    }


def test_random_init_title_and_the_pretrained_column() -> None:
    pretrained = [_entry("cam", "vgg16", True), _entry("acol", "vgg16", True)]
    assert tables.random_init_title("Localization", pretrained) == ("Localization", False)
    mixed = [*pretrained, _entry("acol", "vgg16", False, seed=1)]
    title, flag = tables.random_init_title("Localization", mixed)
    assert flag and title == "RANDOM-INIT BACKBONE — NOT COMPARABLE WITH THE PAPERS: Localization"
    assert tables.random_init_title(title, mixed) == (title, True)  # prefixed once
    assert tables.random_init_title("t", [_entry("cam", "resnet50", None)])[1]  # unrecorded counts as random
    assert not tables.random_init_title("t", [_entry("cam", "small", False)])[1]  # never meant to be pretrained
    table = pd.DataFrame({"method": ["CAM", "ACoL", "baseline: Whole image"], "x": [1.0, 2.0, 3.0]})
    flagged = tables.with_pretrained_column(table, tables.run_backbones(mixed))
    assert list(flagged.columns) == ["method", tables.PRETRAINED_COLUMN, "x"]
    values = flagged[tables.PRETRAINED_COLUMN].tolist()
    assert values[:2] == ["yes", "NO (random init)"] and pd.isna(values[2])  # a baseline row has no backbone
    small = tables.run_backbones([_entry("cam", "small", False)])
    assert tables.with_pretrained_column(table, small) is table  # the synthetic tables keep their columns
    per_delta = pd.DataFrame({"method": ["ACoL", "ACoL"], "delta": [0.5, 0.6]})
    assert tables.with_pretrained_column(per_delta, tables.run_backbones(mixed)) is per_delta  # not one row each


def test_write_table_flags_runs_from_the_provenance(tmp_path: Path) -> None:
    table = pd.DataFrame({"method": ["CAM", "ACoL"], "loc err top-1": [50.0, 48.0]})
    runs = [_entry("cam", "vgg16", True), _entry("acol", "vgg16", False)]
    paths = tables.write_table(table, tmp_path, "t", title="Localization", provenance={"runs": runs, "seeds": [0]})
    assert paths.markdown.read_text().startswith(
        "# RANDOM-INIT BACKBONE — NOT COMPARABLE WITH THE PAPERS: Localization"
    )
    csv = pd.read_csv(paths.csv)
    assert csv[tables.PRETRAINED_COLUMN].tolist() == ["yes", "NO (random init)"]
    manifest = json.loads((tmp_path / "PROVENANCE.json").read_text())
    assert manifest["t.csv"]["random_init_backbone"] is True
    clean = tables.write_table(table, tmp_path, "u", title="Localization", provenance={"runs": runs[:1]})
    assert clean.markdown.read_text().startswith("# Localization")
    assert "random_init_backbone" not in json.loads((tmp_path / "PROVENANCE.json").read_text())["u.csv"]


def test_a_random_init_run_is_recorded_and_flags_its_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_torch_home"))
    monkeypatch.setenv("WSOL_OFFLINE", "1")
    cub = make_cub_folder(tmp_path / "cub", _cub_images(classes=2))
    config = paper_config(
        "cam", str(cub), image_size=32, epochs=1, device="cpu", allow_random_init=True, model_kwargs={"head_width": 8}
    )
    with pytest.warns(UserWarning, match="weights not available"):
        run = train(config, runs_dir=tmp_path / "runs", progress=False)
    assert run_pretrained_backbone(run) is False
    (run / "done.json").unlink()  # an unfinished run: the checkpoint says it too
    assert run_pretrained_backbone(run) is False
    (run / "done.json").write_text("{cut sho", encoding="utf-8")  # a corrupt done.json is not believed either
    assert run_pretrained_backbone(run) is False
    provenance = Suite.from_parameters("cub", str(cub), figures_dir=tmp_path / "f").provenance(run)
    assert provenance["runs"][0]["pretrained_backbone"] is False
    table = pd.DataFrame({"method": ["CAM"], "x": [1.0]})
    paths = tables.write_table(table, tmp_path / "f", "t", title="T", runs=[run])
    assert paths.markdown.read_text().startswith("# RANDOM-INIT BACKBONE")
    assert pd.read_csv(paths.csv)[tables.PRETRAINED_COLUMN].tolist() == ["NO (random init)"]


# --------------------------------------------------------------------------------------------------------------
# the notebooks end to end (slow): python -m wsol_utils reproduce on tiny folders


def _reproduce(tmp_path: Path, data_root: Path, *args: str) -> tuple[int, Path]:
    """``reproduce.main`` on ``data_root`` in smoke mode, offline; returns the exit code and the figures folder."""
    out = tmp_path / "out"
    code = reproduce.main(
        [
            "--dataset",
            "cub",
            "--data-root",
            str(data_root),
            "--smoke",
            "--offline",
            "--device",
            "cpu",
            "--output-dir",
            str(out),
            "--runs-dir",
            str(tmp_path / "runs"),
            *args,
        ]
    )
    return code, out / "smoke" / "figures"


def _check_localization_table(figures: Path, backbone: str) -> None:
    csv = pd.read_csv(figures / "table_localization.csv")
    methods = csv["method"].tolist()
    assert methods[:3] == ["CAM", "ACoL", "HCLNet"] and all(m.startswith("baseline: ") for m in methods[3:])
    assert len(methods) == 6  # CUB has masks: the GT-mask baseline too
    assert csv[tables.PRETRAINED_COLUMN].tolist()[:3] == ["yes"] * 3
    assert csv[tables.PRETRAINED_COLUMN].isna().tolist()[3:] == [True] * 3
    assert any("MaxBoxAccV2" in column for column in csv.columns)
    assert any(column.startswith("paper CUB") for column in csv.columns)
    assert not (figures / "table_localization.md").read_text().startswith("# RANDOM-INIT")
    entry = json.loads((figures / "PROVENANCE.json").read_text())["table_localization.csv"]
    assert entry["notebook"] == "02_acol_training" and "random_init_backbone" not in entry
    assert len(entry["runs"]) == 3 * len(suite.SMOKE_SEEDS)
    assert {(run["config"]["backbone"], run["pretrained_backbone"]) for run in entry["runs"]} == {(backbone, True)}
    assert {run["config"]["image_size"] for run in entry["runs"]} == {suite.SMOKE_REAL_IMAGE_SIZE}


@pytest.mark.slow
def test_suite_on_tiny_cub_with_pretrained_vgg16_and_06_skips(
    tmp_path: Path, fake_weights: dict[str, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    install(tmp_path / "torch_home", fake_weights, ["vgg16"])
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    cub = make_cub_folder(tmp_path / "cub", _cub_images())
    code, figures = _reproduce(tmp_path, cub, "--only", "02", "06")
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "on 'cub', backbone vgg16 (smoke mode)" in printed
    _check_localization_table(figures, "vgg16")
    executed = (tmp_path / "out" / "smoke" / "06_when_erasing_helps.ipynb").read_text()
    assert "This notebook needs the synthetic set" in executed and "skipped for cub" in executed
    assert not list(figures.glob("*regime*")), "06 must write nothing on real data"


@pytest.mark.slow
def test_suite_on_tiny_cub_with_pretrained_resnet50(
    tmp_path: Path, fake_weights: dict[str, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    install(tmp_path / "torch_home", fake_weights, ["resnet50"])
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    cub = make_cub_folder(tmp_path / "cub", _cub_images())
    code, figures = _reproduce(tmp_path, cub, "--only", "02", "--backbone", "resnet50")
    printed = capsys.readouterr().out
    assert code == 0, printed
    _check_localization_table(figures, "resnet50")


@pytest.mark.slow
def test_suite_without_weights_refuses_with_the_fix_in_the_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_torch_home"))
    cub = make_cub_folder(tmp_path / "cub", _cub_images(classes=2))
    code, figures = _reproduce(tmp_path, cub, "--only", "02")
    printed = capsys.readouterr().out
    assert code == 1
    # the suite trains in worker processes (engine.train_many): the failure names the run and carries the
    # worker's error with its fix
    assert "FAILED" in printed and "raised RuntimeError: training " in printed and "failed in a worker" in printed
    assert "ValueError(\"refusing to train cam on 'cub' with a randomly initialised vgg16" in printed
    assert "vgg16-397923af.pth" in printed and "--allow-random-init" in printed
    assert not (figures / "table_localization.csv").exists()


@pytest.mark.slow
def test_ilsvrc_wsoleval_folder_through_the_suite(
    tmp_path: Path, fake_weights: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The wsoleval path of notebook 02 through the library: the notebook itself still scores the GT-mask baseline
    unconditionally, which ILSVRC (no masks) cannot give (see available_baselines)."""
    install(tmp_path / "torch_home", fake_weights, ["resnet50"])
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setenv("WSOL_OFFLINE", "1")
    monkeypatch.setenv(suite.BACKBONE_ENV, "resnet50")
    root = _ilsvrc_root(tmp_path / "ilsvrc")
    smoke = Suite.from_parameters("wsoleval", str(root), None, "cpu", True, tmp_path / "runs", tmp_path / "figures")
    assert smoke.config("cam").backbone == "resnet50" and smoke.config("cam").epochs == 1
    run = smoke.train("cam")
    result = smoke.evaluate(run)
    assert result.summary["num_images"] == 3 and math.isfinite(result.summary["cls_err_top1"])
    cached = [json.loads(path.read_text()) for path in (run / "suite_eval").glob("*.json")]
    assert [entry["options"]["ten_crop"] for entry in cached] == [True]  # the papers' 10-crop classification
    from wsol_utils.engine.baselines import available_baselines, evaluate_baseline

    names = available_baselines(smoke.config("cam"))
    assert names == ["centre_gaussian", "whole_image"]
    summaries = {"cam": result.summary}
    for name in names:
        summaries[f"baseline:{name}"] = evaluate_baseline(name, smoke.config("cam"), progress=False).summary
    paths = tables.write_table(
        tables.localization_table(summaries),
        smoke.figures_dir,
        "table_localization",
        title="Localization",
        provenance=smoke.provenance(run),
    )
    csv = pd.read_csv(paths.csv)
    assert csv["method"].tolist()[0] == "CAM" and csv[tables.PRETRAINED_COLUMN].tolist()[0] == "yes"
    assert json.loads((run / "done.json").read_text())["pretrained_backbone"] is True
