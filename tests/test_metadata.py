"""Tests for wsol_utils.data.metadata: wsoleval metadata folders (docs/methods.md §3)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from wsol_utils.data.metadata import read_wsoleval_metadata, write_wsoleval_metadata


def _write(folder: Path, **files: str | None) -> Path:  # None: leave that file out
    folder.mkdir(parents=True, exist_ok=True)
    defaults: dict[str, str | None] = {
        "image_ids": "val/a.jpg\nval/b.jpg\n",
        "class_labels": "val/a.jpg,3\nval/b.jpg,0\n",
        "image_sizes": "val/a.jpg,100,50\nval/b.jpg,20,30\n",
        "localization": "val/a.jpg,1,2,10,20\nval/b.jpg,0,0,19,29\nval/a.jpg,50,0,100,50\n",
    }
    defaults.update(files)
    for name, text in defaults.items():
        if text is not None:
            (folder / f"{name}.txt").write_text(text)
    return folder


def test_reads_boxes_labels_sizes_in_order(tmp_path: Path) -> None:
    meta = read_wsoleval_metadata(_write(tmp_path / "m"))
    assert meta.image_ids == ["val/a.jpg", "val/b.jpg"]
    assert meta.labels == {"val/a.jpg": 3, "val/b.jpg": 0}
    assert meta.sizes == {"val/a.jpg": (100, 50), "val/b.jpg": (20, 30)}
    np.testing.assert_array_equal(meta.boxes["val/a.jpg"], [[1, 2, 10, 20], [50, 0, 100, 50]])
    np.testing.assert_array_equal(meta.boxes["val/b.jpg"], [[0, 0, 19, 29]])
    assert meta.boxes["val/a.jpg"].dtype == np.int64
    assert meta.mask_paths is None and len(meta) == 2


def test_blank_lines_and_windows_newlines_are_accepted(tmp_path: Path) -> None:
    folder = _write(tmp_path / "m", image_ids="val/a.jpg\r\n\r\nval/b.jpg\r\n")
    assert read_wsoleval_metadata(folder).image_ids == ["val/a.jpg", "val/b.jpg"]


def test_round_trip_write_then_read(tmp_path: Path) -> None:
    ids = ["train/x/1.jpg", "train/y/2.jpg"]
    boxes: dict[str, np.ndarray | list[list[int]]] = {
        ids[0]: np.array([[0, 0, 5, 5], [2.9, 1.2, 7.99, 8.0]]),
        ids[1]: [[1, 1, 1, 1]],
    }
    out = write_wsoleval_metadata(
        tmp_path / "new" / "test", ids, {ids[0]: 1, ids[1]: 2}, {ids[0]: (8, 9), ids[1]: (2, 2)}, boxes
    )
    meta = read_wsoleval_metadata(out)
    assert meta.image_ids == ids and meta.labels == {ids[0]: 1, ids[1]: 2}
    # floats are truncated with int(), as wsoleval's own conversion does
    np.testing.assert_array_equal(meta.boxes[ids[0]], [[0, 0, 5, 5], [2, 1, 7, 8]])
    assert not list(out.glob(".*.tmp")), "temp files must be renamed away"


def test_write_rejects_missing_entry_and_comma(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="sizes: no entry for image id 'a'"):
        write_wsoleval_metadata(tmp_path, ["a"], {"a": 0}, {}, {"a": [[0, 0, 1, 1]]})
    with pytest.raises(ValueError, match="must not contain ','"):
        write_wsoleval_metadata(tmp_path, ["a,b"], {"a,b": 0}, {"a,b": (2, 2)}, {"a,b": [[0, 0, 1, 1]]})


def test_openimages_mask_lines(tmp_path: Path) -> None:
    folder = _write(
        tmp_path / "m",
        image_sizes=None,
        localization="val/a.jpg,masks/a_1.png,ignore/a.png\nval/a.jpg,masks/a_2.png,\nval/b.jpg,masks/b.png,\n",
    )
    meta = read_wsoleval_metadata(folder)
    assert meta.boxes == {} and meta.sizes == {}
    assert meta.mask_paths == {"val/a.jpg": ["masks/a_1.png", "masks/a_2.png"], "val/b.jpg": ["masks/b.png"]}
    assert meta.ignore_paths == {"val/a.jpg": "ignore/a.png", "val/b.jpg": None}


@pytest.mark.parametrize(
    ("files", "match"),
    [
        ({"class_labels": "val/a.jpg,3\nval/b.jpg\n"}, r"class_labels.txt:2: expected '<image_id>,<label>'"),
        ({"class_labels": "val/a.jpg,3\nval/b.jpg,cat\n"}, r"class_labels.txt:2: .*integers"),
        ({"class_labels": "val/a.jpg,3\n"}, r"class_labels.txt: no label for 1 image id.*'val/b.jpg'"),
        (
            {"class_labels": "val/a.jpg,3\nval/b.jpg,0\nval/c.jpg,1\n"},
            r"class_labels.txt:3: image id 'val/c.jpg' is not listed in image_ids.txt",
        ),
        ({"image_sizes": "val/a.jpg,100,50\nval/b.jpg,20,0\n"}, r"image_sizes.txt:2: image size must be positive"),
        ({"image_ids": "val/a.jpg\nval/b.jpg\nval/a.jpg\n"}, r"image_ids.txt:3: image id 'val/a.jpg' repeats line 1"),
        (
            {"localization": "val/a.jpg,1,2,10,20\nval/b.jpg,0,0,21,29\n"},
            r"localization.txt:2: box \[0, 0, 21, 29\] lies outside the image size 20x30",
        ),
        ({"localization": "val/a.jpg,10,2,9,20\nval/b.jpg,0,0,1,1\n"}, r"localization.txt:1: .*x1 < x0"),
        ({"localization": "val/a.jpg,-1,2,9,20\nval/b.jpg,0,0,1,1\n"}, r"localization.txt:1: .*negative"),
        ({"localization": "val/a.jpg,1,2,10,20\n"}, r"localization.txt: no box for 1 image id"),
        ({"localization": "val/a.jpg,1,2,10,20\nval/b.jpg,1,2,3\n"}, r"localization.txt:2: expected '<image_id>,<x0>"),
        ({"localization": "val/a.jpg,1,2,10,20\nval/b.jpg,1,2,3,4.5\n"}, r"localization.txt:2: .*integers"),
    ],
)
def test_bad_metadata_names_file_and_line(tmp_path: Path, files: dict[str, str], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        read_wsoleval_metadata(_write(tmp_path / "m", **files))


def test_box_ending_one_past_the_last_pixel_is_accepted(tmp_path: Path) -> None:
    # x + width of a float box can reach the image width; wsoleval's CUB metadata contains such boxes.
    meta = read_wsoleval_metadata(_write(tmp_path / "m", localization="val/a.jpg,0,0,100,50\nval/b.jpg,0,0,20,30\n"))
    np.testing.assert_array_equal(meta.boxes["val/b.jpg"], [[0, 0, 20, 30]])


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="metadata folder not found"):
        read_wsoleval_metadata(tmp_path / "nope")
    folder = _write(tmp_path / "m")
    (folder / "image_sizes.txt").unlink()
    with pytest.raises(FileNotFoundError, match=r"image_sizes.txt: missing wsoleval metadata file"):
        read_wsoleval_metadata(folder)


# -- ILSVRC: labels in sorted-wnid order (docs/methods.md §3.4) ------------------------------------------------


def _ilsvrc(folder: Path, rows: list[tuple[str, int]]) -> Path:
    """A metadata folder of ILSVRC-style training ids ``train/<wnid>/<wnid>_<k>.JPEG`` with the given labels."""
    ids = [f"train/{wnid}/{wnid}_{k}.JPEG" for k, (wnid, _) in enumerate(rows)]
    return _write(
        folder,
        image_ids="".join(f"{i}\n" for i in ids),
        class_labels="".join(f"{i},{label}\n" for i, (_, label) in zip(ids, rows)),
        image_sizes="".join(f"{i},10,10\n" for i in ids),
        localization="".join(f"{i},0,0,9,9\n" for i in ids),
    )


def test_ilsvrc_labels_in_sorted_wnid_order_are_read_as_written(tmp_path: Path) -> None:
    rows = [("n01443537", 1), ("n01440764", 0), ("n01484850", 2), ("n01440764", 0)]
    meta = read_wsoleval_metadata(_ilsvrc(tmp_path / "m", rows))
    assert list(meta.labels.values()) == [1, 0, 2, 0]
    subset = [("n01440764", 0), ("n01484850", 7), ("n01443537", 3)]  # a subset of the classes: increasing labels
    assert list(read_wsoleval_metadata(_ilsvrc(tmp_path / "s", subset)).labels.values()) == [0, 7, 3]


def test_ilsvrc_labels_in_another_order_name_the_line_and_the_expected_label(tmp_path: Path) -> None:
    # all three classes, labelled in another order (as the official ACoL list): line 2's n01443537 sorts second
    rows = [("n01440764", 0), ("n01443537", 2), ("n01484850", 1)]
    expected = (
        r"class_labels.txt:2: image id 'train/n01443537/n01443537_1.JPEG' has label 2, but its class n01443537 "
        r"is number 1 of the 3 sorted WordNet ids: expected label 1\. .*the official ACoL list uses another order"
    )
    with pytest.raises(ValueError, match=expected):
        read_wsoleval_metadata(_ilsvrc(tmp_path / "m", rows))


def test_ilsvrc_subset_out_of_order_and_two_labels_for_one_class(tmp_path: Path) -> None:
    rows = [("n01440764", 5), ("n01484850", 9), ("n01443537", 11)]  # n01443537 sorts before n01484850
    with pytest.raises(
        ValueError,
        match=r"class_labels.txt:2: .*n01484850 sorts after n01443537 \(label 11\): "
        r"expected a label above 11",
    ):
        read_wsoleval_metadata(_ilsvrc(tmp_path / "m", rows))
    rows = [("n01440764", 0), ("n01443537", 1), ("n01440764", 1)]
    with pytest.raises(
        ValueError,
        match=r"class_labels.txt:3: .*has label 1, but line 1 gives its class folder "
        r"n01440764 label 0",
    ):
        read_wsoleval_metadata(_ilsvrc(tmp_path / "t", rows))


def test_ids_without_a_wnid_folder_are_not_checked(tmp_path: Path) -> None:
    # ILSVRC val ids and CUB ids name no wnid folder; a file name starting with a wnid is not a class folder
    folder = _write(
        tmp_path / "m",
        image_ids="val/n01443537_1.JPEG\nval/ILSVRC2012_val_00000001.JPEG\n",
        class_labels="val/n01443537_1.JPEG,5\nval/ILSVRC2012_val_00000001.JPEG,0\n",
        image_sizes="val/n01443537_1.JPEG,10,10\nval/ILSVRC2012_val_00000001.JPEG,10,10\n",
        localization="val/n01443537_1.JPEG,0,0,9,9\nval/ILSVRC2012_val_00000001.JPEG,0,0,9,9\n",
    )
    assert read_wsoleval_metadata(folder).labels == {"val/n01443537_1.JPEG": 5, "val/ILSVRC2012_val_00000001.JPEG": 0}


def test_missing_metadata_file_says_where_to_get_it(tmp_path: Path) -> None:
    folder = _write(tmp_path / "m")
    (folder / "class_labels.txt").unlink()
    with pytest.raises(FileNotFoundError, match=r"class_labels.txt: missing wsoleval metadata file .*wsolevaluation"):
        read_wsoleval_metadata(folder)


@pytest.mark.parametrize(
    ("bad_id", "reason"),
    [
        ("../../../x", "climbs out of its folder"),
        ("val/../../x.jpg", "climbs out of its folder"),
        ("/abs/path", "is an absolute path"),
        ("C:\\\\data\\\\x.jpg", "is an absolute path"),
        ("..\\\\x.jpg", "climbs out of its folder"),
    ],
)
def test_an_id_leaving_its_folder_is_refused_naming_the_line(tmp_path: Path, bad_id: str, reason: str) -> None:
    folder = _write(
        tmp_path / "m",
        image_ids=f"val/a.jpg\n{bad_id}\n",
        class_labels=f"val/a.jpg,3\n{bad_id},0\n",
        image_sizes=f"val/a.jpg,100,50\n{bad_id},20,30\n",
        localization=f"val/a.jpg,1,2,10,20\n{bad_id},0,0,19,29\n",
    )
    with pytest.raises(ValueError, match=rf"image_ids\.txt:2: image id .* {reason}"):
        read_wsoleval_metadata(folder)


def test_a_mask_path_leaving_its_folder_is_refused_naming_the_line(tmp_path: Path) -> None:
    folder = _write(
        tmp_path / "m",
        image_sizes=None,
        localization="val/a.jpg,masks/a.png,\nval/b.jpg,masks/b.png,../../secret.png\n",
    )
    with pytest.raises(ValueError, match=r"localization\.txt:2: ignore path '\.\./\.\./secret\.png' climbs out"):
        read_wsoleval_metadata(folder)
    (folder / "localization.txt").write_text("val/a.jpg,/etc/a.png,\nval/b.jpg,masks/b.png,\n")
    with pytest.raises(ValueError, match=r"localization\.txt:1: mask path '/etc/a\.png' is an absolute path"):
        read_wsoleval_metadata(folder)


def test_non_utf8_metadata_names_the_file_line_and_the_fix(tmp_path: Path) -> None:
    folder = _write(tmp_path / "m")
    (folder / "class_labels.txt").write_bytes(b"val/a.jpg,3\nval/b\xe9.jpg,0\n")  # Latin-1 e-acute
    with pytest.raises(ValueError, match=r"class_labels\.txt:2: not UTF-8 text \(byte 0xe9 at column 6\); .*UTF-8"):
        read_wsoleval_metadata(folder)


def test_utf8_ids_with_dots_in_names_are_read(tmp_path: Path) -> None:
    ids = "val/été..jpg\n./val/..hidden/b.jpg\n"
    folder = _write(
        tmp_path / "m",
        image_ids=ids,
        class_labels="val/été..jpg,3\n./val/..hidden/b.jpg,0\n",
        image_sizes="val/été..jpg,100,50\n./val/..hidden/b.jpg,20,30\n",
        localization="val/été..jpg,1,2,10,20\n./val/..hidden/b.jpg,0,0,19,29\n",
    )
    assert read_wsoleval_metadata(folder).image_ids == ["val/été..jpg", "./val/..hidden/b.jpg"]
