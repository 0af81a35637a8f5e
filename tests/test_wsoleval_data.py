"""Tests for wsol_utils.data.wsoleval: data sets from wsoleval metadata folders (docs/methods.md §3)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tiny_data import TinyImage

from wsol_utils.data import ImageDecodeError, load
from wsol_utils.data.base import ImageFileDataset


def test_reads_labels_and_every_box_per_image(tiny_wsoleval: Path, tiny_images) -> None:
    dataset = load("wsoleval", root=tiny_wsoleval, split="test", image_size=32)
    assert len(dataset) == 4 and dataset.num_classes == 3
    np.testing.assert_array_equal(dataset.labels, [0, 2, 1, 2])  # labels as written, no re-ordering
    _, label, boxes, mask, image_id = dataset[2]  # 32x32 image with two boxes: no rescaling
    assert label == 1 and image_id == "002.Bb/Bb_0003.jpg" and mask is None
    np.testing.assert_array_equal(boxes.numpy(), [[3, 3, 12, 12], [16, 18, 30, 31]])
    _, _, boxes, _, _ = dataset[0]  # 40x30 -> 32x32
    np.testing.assert_allclose(boxes.numpy(), [[4.0, 4 * 32 / 30, 20.0, 20 * 32 / 30]], rtol=1e-6)


def test_masks_and_ignore_masks_for_pxap(tiny_wsoleval: Path) -> None:
    ignore = np.zeros((32, 32), dtype=np.uint8)
    ignore[0, :] = 255
    Image.fromarray(ignore).save(tiny_wsoleval / "masks" / "002.Bb" / "Bb_0003.jpg.ignore.png")
    dataset = load("wsoleval", root=tiny_wsoleval, split="test", image_size=32, mask_dir=tiny_wsoleval / "masks")
    mask_tensor = dataset[2][3]
    assert mask_tensor is not None
    mask = mask_tensor.numpy()
    assert mask[3:13, 3:13].min() == 1 and mask[18:32, 16:31].min() == 1  # union of both boxes
    assert (mask[0] == 255).all() and mask[1:].max() == 1 and (mask[1:] == 0).sum() == 31 * 32 - 100 - 15 * 14


def test_mask_style_metadata_gets_the_box_of_its_mask(tmp_path: Path, tiny_wsoleval: Path) -> None:
    meta = tiny_wsoleval / "metadata" / "test"
    lines = [f"{i},{i}.png,\n" for i in (meta / "image_ids.txt").read_text().split()]
    (meta / "localization.txt").write_text("".join(lines))
    dataset = load("wsoleval", root=tiny_wsoleval, split="test", image_size=32, mask_dir=tiny_wsoleval / "masks")
    _, _, boxes, mask, _ = dataset[2]
    np.testing.assert_array_equal(boxes.numpy(), [[3, 3, 30, 31]])  # the union's tight box
    assert mask is not None and mask.sum() == 100 + 15 * 14  # 10x10 and 15x14 boxes, no overlap


def test_label_out_of_range(tiny_wsoleval: Path) -> None:
    with pytest.raises(ValueError, match=r"class_labels.txt: image '003.Cc/Cc_0002.jpg' has label 2, outside 0..1"):
        load("wsoleval", root=tiny_wsoleval, split="test", num_classes=2)


def test_missing_root_metadata_and_mask(tmp_path: Path, tiny_wsoleval: Path) -> None:
    with pytest.raises(FileNotFoundError, match="image root folder not found"):
        load("wsoleval", root=tmp_path / "nowhere", split="test")
    with pytest.raises(FileNotFoundError, match=r"no wsoleval metadata for split 'val'"):
        load("wsoleval", root=tiny_wsoleval, split="val")
    (tiny_wsoleval / "masks" / "001.Aa" / "Aa_0001.jpg.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"Aa_0001.jpg.png: mask of image"):
        load("wsoleval", root=tiny_wsoleval, split="test", mask_dir=tiny_wsoleval / "masks")


def test_id_in_one_file_but_not_another_names_file_and_line(tiny_wsoleval: Path) -> None:
    path = tiny_wsoleval / "metadata" / "test" / "class_labels.txt"
    path.write_text(path.read_text() + "999.Zz/Zz.jpg,0\n")
    with pytest.raises(ValueError, match=r"class_labels.txt:5: image id '999.Zz/Zz.jpg' is not listed"):
        load("wsoleval", root=tiny_wsoleval, split="test")


def test_decoded_size_differs_from_image_sizes_rescales_boxes(tiny_wsoleval: Path) -> None:
    # image 1 is listed as 40x30 but stored at 80x60 (e.g. a re-encoded copy): boxes follow the pixels
    Image.new("RGB", (80, 60)).save(tiny_wsoleval / "001.Aa" / "Aa_0001.jpg")
    dataset = load("wsoleval", root=tiny_wsoleval, split="test", transform="identity", image_size=80)
    np.testing.assert_allclose(dataset[0][2].numpy(), [[10, 8 * 80 / 60, 50, 40 * 80 / 60]], rtol=1e-6)


def test_corrupt_image_raises_or_is_skipped(tiny_wsoleval: Path, caplog) -> None:
    (tiny_wsoleval / "003.Cc" / "Cc_0002.jpg").write_bytes(b"garbage")
    with pytest.raises(ImageDecodeError, match=r"Cc_0002.jpg: cannot decode image"):
        load("wsoleval", root=tiny_wsoleval, split="test")[1]
    with caplog.at_level(logging.WARNING, logger="wsol_utils.data"):
        dataset = load("wsoleval", root=tiny_wsoleval, split="test", verify=True)
    assert isinstance(dataset, ImageFileDataset)  # the image-file data sets keep the skipped paths
    assert [dataset[i][1] for i in range(len(dataset))] == [0, 1, 2] and dataset.skipped[0].name == "Cc_0002.jpg"
    assert "skipped 1 of 4 images" in caplog.text


def test_wrong_root_names_the_first_missing_image_and_the_fix(tmp_path: Path, tiny_wsoleval: Path) -> None:
    # metadata copied where the suite looks for it, but root points at another folder than the images'
    other = tmp_path / "elsewhere"
    (other / "metadata").mkdir(parents=True)
    (tiny_wsoleval / "metadata" / "test").rename(other / "metadata" / "test")
    with pytest.raises(
        FileNotFoundError,
        match=r"Aa_0001.jpg: image not found\. The ids of .*image_ids.txt are "
        r"paths relative to the image root .*folder that holds 001.Aa/",
    ):
        load("wsoleval", root=other, split="test")
    assert len(load("wsoleval", root=other, split="test", verify=True)) == 0  # verify: every image skipped


def test_missing_split_metadata_says_where_to_put_it(tiny_wsoleval: Path) -> None:
    with pytest.raises(
        FileNotFoundError,
        match=r"no wsoleval metadata for split 'train': .*copy wsolevaluation's "
        r"metadata/<CUB\|ILSVRC\|OpenImages>/train/ to .*metadata/train",
    ):
        load("wsoleval", root=tiny_wsoleval, split="train")


def test_undecodable_image_message_names_the_file_and_the_fix(tiny_wsoleval: Path) -> None:
    bad = tiny_wsoleval / "002.Bb" / "Bb_0003.jpg"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.raises(ImageDecodeError) as info:
        load("wsoleval", root=tiny_wsoleval, split="test")[2]
    assert str(bad) in str(info.value) and "verify=True" in str(info.value)


def test_is_ilsvrc_reads_the_training_ids(make_wsoleval, tiny_images, tmp_path: Path) -> None:
    from wsol_utils.data.wsoleval import is_ilsvrc

    cub_like = make_wsoleval(tmp_path / "cub", tiny_images, split="train")
    ilsvrc = [
        TinyImage("train/n01440764/n01440764_1.JPEG", 0, (20, 20), ((1, 1, 9, 9),)),
        TinyImage("train/n01443537/n01443537_2.JPEG", 1, (20, 20), ((1, 1, 9, 9),)),
    ]
    root = make_wsoleval(tmp_path / "ilsvrc", ilsvrc, split="train")
    assert is_ilsvrc(root) and not is_ilsvrc(cub_like) and not is_ilsvrc(tmp_path / "nothing")
    assert load("wsoleval", root=root, split="train").labels.tolist() == [0, 1]


def test_available_baselines_leave_out_the_mask_baseline_without_masks(tiny_wsoleval: Path) -> None:
    from wsol_utils.engine.baselines import BASELINES, available_baselines

    without = load("wsoleval", root=tiny_wsoleval, split="test", image_size=32)
    with_masks = load("wsoleval", root=tiny_wsoleval, split="test", image_size=32, mask_dir=tiny_wsoleval / "masks")
    assert available_baselines(without) == ["centre_gaussian", "whole_image"]
    assert available_baselines(with_masks) == list(BASELINES)


def test_image_ids_leaving_the_root_are_refused_naming_the_line(make_wsoleval, tmp_path: Path) -> None:
    """``../outside/a.jpg`` exists beside the root: without the check it would be read."""
    images = [
        TinyImage("001.Aa/a.jpg", 0, (20, 20), ((1, 1, 9, 9),)),
        TinyImage("../outside/b.jpg", 1, (20, 20), ((1, 1, 9, 9),)),
    ]
    root = make_wsoleval(tmp_path / "data" / "root", images)
    assert (tmp_path / "data" / "outside" / "b.jpg").is_file()
    with pytest.raises(ValueError, match=r"image_ids\.txt:2: image id '\.\./outside/b\.jpg' climbs out of its folder"):
        load("wsoleval", root=root, split="test")
    ids = root / "metadata" / "test" / "image_ids.txt"
    ids.write_text(f"001.Aa/a.jpg\n{tmp_path / 'data' / 'outside' / 'b.jpg'}\n")
    with pytest.raises(ValueError, match=r"image_ids\.txt:2: image id .* is an absolute path"):
        load("wsoleval", root=root, split="test")


def test_non_utf8_image_ids_name_the_file_for_is_ilsvrc_and_load(tiny_wsoleval: Path) -> None:
    from wsol_utils.data.wsoleval import is_ilsvrc

    (tiny_wsoleval / "metadata" / "test" / "image_ids.txt").write_bytes(b"\xff\xfe0\x000\x001\x00\n")  # UTF-16
    for call in (lambda: is_ilsvrc(tiny_wsoleval, "test"), lambda: load("wsoleval", root=tiny_wsoleval, split="test")):
        with pytest.raises(ValueError, match=r"image_ids\.txt:1: not UTF-8 text \(byte 0xff at column 1\).*UTF-8"):
            call()
