"""Tests for wsol_utils.data (the entry point): load() for all three sources, collate, CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from wsol_utils.data import collate, load
from wsol_utils.data.synthetic import SyntheticConfig, synthetic_arrays
from wsol_utils.ui.data_cli import main as data_cli


def _item(boxes: int, mask: bool, image_id: str, size: int = 4):
    return (
        torch.zeros(3, size, size),
        1,
        torch.arange(boxes * 4, dtype=torch.float32).view(boxes, 4),
        torch.ones(size, size, dtype=torch.uint8) if mask else None,
        image_id,
    )


def test_collate_keeps_variable_box_counts() -> None:
    batch = collate([_item(1, True, "a"), _item(3, True, "b")])
    assert batch.images.shape == (2, 3, 4, 4) and batch.labels.dtype == torch.int64
    assert batch.masks is not None
    assert [b.shape[0] for b in batch.boxes] == [1, 3] and batch.masks.shape == (2, 4, 4)
    assert batch.image_ids == ["a", "b"]
    assert collate([_item(1, True, "a"), _item(1, False, "b")]).masks is None


def test_collate_rejects_mixed_sizes_and_empty_batches() -> None:
    with pytest.raises(ValueError, match="differ in size"):
        collate([_item(1, False, "a", 4), _item(1, False, "b", 5)])
    with pytest.raises(ValueError, match="empty"):
        collate([])


def test_all_three_sources_load_through_one_entry_point(tmp_path: Path, tiny_cub: Path, tiny_wsoleval: Path) -> None:
    sources = {
        "synthetic": load("synthetic", root=tmp_path, split="test", num_train=8, num_val=8, num_test=8),
        "cub": load("cub", root=tiny_cub, split="test", image_size=64),
        "wsoleval": load("wsoleval", root=tiny_wsoleval, split="test", image_size=64),
    }
    for name, dataset in sources.items():
        batch = next(iter(DataLoader(dataset, batch_size=2, collate_fn=collate)))
        assert batch.images.shape == (2, 3, 64, 64), name
        assert all(b.ndim == 2 and b.shape[1] == 4 for b in batch.boxes), name
        np.testing.assert_array_equal(batch.labels.numpy(), dataset.labels[:2])
        assert len(dataset.class_names) == dataset.num_classes


def test_load_rejects_unknown_names_options_and_missing_root() -> None:
    with pytest.raises(ValueError, match="unknown data set 'imagenet'"):
        load("imagenet", root=".")
    with pytest.raises(ValueError, match="needs root="):
        load("cub")
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['head_sise'\]"):
        load("synthetic", head_sise=0.1)


def test_cli_export_writes_the_wsoleval_layout(tmp_path: Path) -> None:
    code = data_cli(
        [
            "export",
            "--out",
            str(tmp_path / "out"),
            "--split",
            "val",
            "--num-images",
            "6",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--quiet",
        ]
    )
    assert code == 0
    ids = (tmp_path / "out" / "metadata" / "val" / "image_ids.txt").read_text().split()
    assert ids == [f"val/{i:05d}.png" for i in range(6)]
    arrays = synthetic_arrays(SyntheticConfig(num_val=6), "val", cache_dir=tmp_path / "cache")
    labels = [int(line.split(",")[1]) for line in (tmp_path / "out/metadata/val/class_labels.txt").read_text().split()]
    assert labels == arrays.labels.tolist()
    assert (tmp_path / "out" / "masks" / "val" / "00005.png.png").is_file()


def test_cli_reports_bad_knobs(capsys) -> None:
    assert data_cli(["speed", "--num-classes", "99", "--quiet"]) == 2
    assert "num_classes" in capsys.readouterr().err
