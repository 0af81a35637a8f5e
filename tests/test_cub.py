"""Tests for wsol_utils.data.cub: the official CUB-200-2011 archive layout (docs/methods.md §3)."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np
import pytest

from wsol_utils.data import ImageDecodeError, load
from wsol_utils.data.base import ImageFileDataset


def test_reads_labels_zero_based_boxes_and_splits(tiny_cub: Path, tiny_images) -> None:
    train = load("cub", root=tiny_cub, split="train", transform="identity", image_size=32)
    test = load("cub", root=tiny_cub.parent, split="test", transform="test", image_size=32)  # parent also works
    assert isinstance(train, ImageFileDataset) and isinstance(test, ImageFileDataset)
    assert [r.image_id for r in train.records] == [tiny_images[0].image_id, tiny_images[2].image_id]
    assert [r.image_id for r in test.records] == [tiny_images[1].image_id, tiny_images[3].image_id]
    np.testing.assert_array_equal(train.labels, [0, 1])  # 1 and 2 on disk
    np.testing.assert_array_equal(test.labels, [2, 2])
    assert train.num_classes == 200 and train.class_names[2] == "003.Bird3"
    # (x, y, w, h) -> (x, y, x + w, y + h): image 1 is 40x30, box x=5 y=4 w=20 h=16 -> (5, 4, 25, 20),
    # then resized to 32x32: x * 32/40, y * 32/30
    _, label, boxes, _, image_id = train[0]
    assert label == 0 and image_id == "001.Aa/Aa_0001.jpg"
    np.testing.assert_allclose(boxes.numpy(), [[4.0, 4 * 32 / 30, 20.0, 20 * 32 / 30]], rtol=1e-6)


def test_segmentation_mask_is_loaded_and_resized(tiny_cub: Path) -> None:
    dataset = load("cub", root=tiny_cub, split="test", image_size=25)
    image, _, boxes, mask, _ = dataset[0]  # 50x60 image, segmentation = its box (0, 10, 49, 59)
    assert mask is not None
    assert image.shape == (3, 25, 25) and mask.shape == (25, 25)
    assert set(np.unique(mask.numpy())) == {0, 1}
    np.testing.assert_allclose(boxes.numpy(), [[0, 10 * 25 / 60, 24.5, 59 * 25 / 60]], rtol=1e-6)


def test_val_split_holds_out_training_images_per_class(tiny_cub: Path) -> None:
    with pytest.raises(ValueError, match="val_per_class"):
        load("cub", root=tiny_cub, split="val")
    val = load("cub", root=tiny_cub, split="val", val_per_class=1)
    train = load("cub", root=tiny_cub, split="train", val_per_class=1)
    assert len(val) == 2 and len(train) == 0  # one training image per class in the tiny set


def test_missing_root_and_files_name_the_path(tmp_path: Path, tiny_cub: Path) -> None:
    with pytest.raises(FileNotFoundError, match="CUB root folder not found"):
        load("cub", root=tmp_path / "nowhere")
    (tiny_cub / "bounding_boxes.txt").unlink()
    with pytest.raises(FileNotFoundError, match=r"bounding_boxes\.txt"):
        load("cub", root=tiny_cub)


def test_label_out_of_range_is_an_error_not_a_shift(tiny_cub: Path) -> None:
    path = tiny_cub / "image_class_labels.txt"
    path.write_text(path.read_text().replace("1 1\n", "1 0\n"))  # a 0-based label on disk
    with pytest.raises(ValueError, match=r"image_class_labels.txt: image 1: label 0 is outside 1..200"):
        load("cub", root=tiny_cub)


def test_unparsable_line_names_file_and_line(tiny_cub: Path) -> None:
    path = tiny_cub / "bounding_boxes.txt"
    lines = path.read_text().splitlines()
    lines[2] = "3 1.0 2.0 three 4.0"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"bounding_boxes.txt:3: cannot parse"):
        load("cub", root=tiny_cub)


def test_image_missing_from_one_metadata_file(tiny_cub: Path) -> None:
    path = tiny_cub / "train_test_split.txt"
    path.write_text("\n".join(path.read_text().splitlines()[:-1]) + "\n")
    with pytest.raises(ValueError, match=r"train_test_split.txt: image numbers differ .*missing \[4\]"):
        load("cub", root=tiny_cub)


def test_box_outside_its_image_is_an_error(make_cub, tmp_path: Path, tiny_images) -> None:
    images = list(tiny_images)
    images[0] = dataclasses.replace(images[0], boxes=((5, 4, 45, 20),))  # image is 40 wide
    root = make_cub(tmp_path / "bad", images)
    dataset = load("cub", root=root, split="train")
    with pytest.raises(ValueError, match=r"Aa_0001.jpg.*outside the 40x30 image"):
        dataset[0]


def test_corrupt_image_raises_or_is_skipped_and_counted(tiny_cub: Path, caplog) -> None:
    (tiny_cub / "images" / "001.Aa" / "Aa_0001.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    dataset = load("cub", root=tiny_cub, split="train")
    with pytest.raises(ImageDecodeError, match=r"Aa_0001.jpg: cannot decode image"):
        dataset[0]
    with caplog.at_level(logging.WARNING, logger="wsol_utils.data"):
        verified = load("cub", root=tiny_cub, split="train", verify=True)
    assert isinstance(verified, ImageFileDataset)
    assert len(verified) == 1 and len(verified.skipped) == 1
    assert verified[0][4] == "002.Bb/Bb_0003.jpg" and verified[0][1] == 1  # labels do not shift
    assert "skipped 1 of 2 images" in caplog.text


def test_root_without_the_images_folder_names_the_missing_image_and_the_fix(tiny_cub: Path) -> None:
    (tiny_cub / "images").rename(tiny_cub / "images_elsewhere")
    with pytest.raises(FileNotFoundError, match=r"Aa_0001.jpg: image not found; .*must hold the archive's images/"):
        load("cub", root=tiny_cub, split="train")
    with pytest.raises(FileNotFoundError, match=r"missing CUB metadata file .*extract CUB_200_2011.tgz whole"):
        (tiny_cub / "train_test_split.txt").unlink()
        load("cub", root=tiny_cub, split="train")


def test_undecodable_image_message_names_the_file(tiny_cub: Path) -> None:
    bad = tiny_cub / "images" / "002.Bb" / "Bb_0003.jpg"
    bad.write_bytes(b"")
    with pytest.raises(ImageDecodeError) as info:
        load("cub", root=tiny_cub, split="train")[1]
    assert str(bad) in str(info.value) and "cannot decode image" in str(info.value)


@pytest.mark.parametrize("bad", ["../../outside.jpg", "/etc/passwd", "001.Aa/../../x.jpg"])
def test_image_path_leaving_the_images_folder_names_the_line(tiny_cub: Path, bad: str) -> None:
    path = tiny_cub / "images.txt"
    lines = path.read_text().splitlines()
    lines[1] = f"2 {bad}"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"images\.txt:2: image path .* (climbs out of its folder|is an absolute)"):
        load("cub", root=tiny_cub)


def test_non_utf8_metadata_names_the_file_and_line(tiny_cub: Path) -> None:
    path = tiny_cub / "images.txt"
    path.write_bytes(path.read_bytes().replace(b"\n", b"\xe9\n", 2).replace(b"\xe9\n", b"\n", 1))
    with pytest.raises(ValueError, match=r"images\.txt:2: not UTF-8 text .*the file must be UTF-8"):
        load("cub", root=tiny_cub)
