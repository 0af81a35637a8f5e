"""Read and write wsoleval's metadata folder (docs/methods.md §3).

A wsoleval metadata folder (e.g. ``metadata/CUB/test``) holds four text files, one record per line:

- ``image_ids.txt``      ``<image_id>``                      (the order of the split)
- ``class_labels.txt``   ``<image_id>,<label>``               (0-based int label)
- ``image_sizes.txt``    ``<image_id>,<width>,<height>``      (original image size in pixels)
- ``localization.txt``   ``<image_id>,<x0>,<y0>,<x1>,<y1>``   (inclusive int pixel box; one line per box,
  several lines per image) -- or, OpenImages style, ``<image_id>,<mask_path>,<ignore_path>`` (one line per
  mask; ``<ignore_path>`` may be empty and is only given on an image's first line).

``image_id`` is a relative image path such as ``val/Black_footed_Albatross_0001.jpg``; it may contain ``/``
but not ``,``, and it stays inside its folder: an absolute id (``/abs/path``) or one with a ``..`` part
(``../../x``) is refused (:func:`check_relative_id`), as are such mask paths. The files must be UTF-8.
Blank lines are skipped. Box coordinates must satisfy ``0 <= x0 <= x1 <= width`` and
``0 <= y0 <= y1 <= height``: the inclusive convention puts the last pixel at ``width - 1``, but a box converted
from ``x + w`` float boxes may end one pixel past it, which wsoleval accepts, so we accept it too.

Every error names the file and the 1-based line number and says what is wrong.

ILSVRC labels must follow the sorted WordNet-id order (wsoleval's, as torchvision's ``ImageFolder``; docs/methods.md
§3.4): where an image id names its class folder (``train/n01440764/n01440764_10026.JPEG``), the labels of those ids
are checked against that order, and a file in another order (the official ACoL class list uses another one) is an
error naming the line and the label expected there.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PureWindowsPath

import numpy as np

from wsol_utils.base.atomic import write_text_atomic

__all__ = [
    "WsolevalMetadata",
    "read_wsoleval_metadata",
    "write_wsoleval_metadata",
    "METADATA_FILES",
    "check_sorted_wnid_labels",
    "check_relative_id",
    "utf8_lines",
    "wnid_of",
]

METADATA_FILES = ("image_ids.txt", "class_labels.txt", "image_sizes.txt", "localization.txt")
#: A WordNet id as ILSVRC names its class folders (``n01440764``).
WNID_PATTERN = re.compile(r"n\d{8}")
#: What ``errors="surrogateescape"`` turns a byte that is not UTF-8 into.
_UNDECODED = re.compile("[\udc80-\udcff]")


@dataclass
class WsolevalMetadata:
    """The parsed content of a wsoleval metadata folder.

    Attributes:
        image_ids: image ids in file order.
        labels: image id -> class label (int).
        sizes: image id -> original ``(width, height)``; empty for a mask-only folder without
            ``image_sizes.txt``.
        boxes: image id -> ``(N, 4)`` int64 array of inclusive ``x0, y0, x1, y1`` boxes in original pixels;
            empty for mask-style (OpenImages) metadata.
        mask_paths: image id -> list of mask paths (relative to the mask root), mask-style metadata only.
        ignore_paths: image id -> ignore-mask path or ``None``, mask-style metadata only.
    """

    image_ids: list[str]
    labels: dict[str, int]
    sizes: dict[str, tuple[int, int]]
    boxes: dict[str, np.ndarray]
    mask_paths: dict[str, list[str]] | None = None
    ignore_paths: dict[str, str | None] | None = field(default=None)

    def __len__(self) -> int:
        return len(self.image_ids)


def utf8_lines(path: Path) -> Iterator[tuple[int, str]]:
    """Yield ``(1-based line number, line text)`` of every line of the text file ``path`` (universal newlines).

    Raises:
        ValueError: ``"<path>:<line>: not UTF-8 ..."`` at the first line holding a byte that is not UTF-8,
            naming its column and the fix (the file must be UTF-8).
    """
    with path.open(encoding="utf-8", errors="surrogateescape") as handle:
        for number, raw in enumerate(handle, start=1):
            bad = _UNDECODED.search(raw)
            if bad is not None:
                raise ValueError(
                    f"{path}:{number}: not UTF-8 text (byte 0x{ord(bad.group()) - 0xDC00:02x} at column "
                    f"{bad.start() + 1}); the file must be UTF-8: re-save it as UTF-8 "
                    "(e.g. iconv -f latin1 -t utf-8)"
                )
            yield number, raw


def check_relative_id(image_id: str, path: str | os.PathLike[str], number: int, what: str = "image id") -> None:
    """Refuse an id (or mask path) read from line ``number`` of ``path`` that would leave its folder.

    The one check of every path read from a metadata file (wsoleval's and CUB's ``images.txt``): ids are joined
    to a folder (``<root>/<image_id>``, ``<scoremap_dir>/<image_id>.npy``, ``<mask_dir>/<image_id>.png``), so an
    absolute id, a Windows drive or UNC path, a ``..`` part, or a NUL byte would read outside it.

    Raises:
        ValueError: ``"<path>:<line>: <what> '<id>' ..."`` saying why and that ids are relative paths inside
            the folder.
    """
    parts = re.split(r"[/\\]", image_id)
    if "\0" in image_id:
        reason = "holds a NUL byte"
    elif image_id.startswith(("/", "\\")) or PureWindowsPath(image_id).drive:
        reason = "is an absolute path"
    elif ".." in parts:
        reason = "climbs out of its folder with '..'"
    else:
        return
    raise ValueError(
        f"{path}:{number}: {what} {image_id!r} {reason}; ids must be relative paths inside the image, score-map "
        "and mask folders (e.g. val/a.jpg): fix the line"
    )


def _lines(path: Path) -> Iterable[tuple[int, str]]:
    """Yield ``(1-based line number, stripped text)`` of the non-blank lines of ``path`` (UTF-8, :func:`utf8_lines`)."""
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: missing wsoleval metadata file (a metadata folder holds {', '.join(METADATA_FILES)}); copy "
            f"it from wsolevaluation's metadata/<CUB|ILSVRC|OpenImages>/<split>/ (docs/methods.md §3.4)"
        )
    for number, raw in utf8_lines(path):
        text = raw.strip()
        if text:
            yield number, text


def _parse_ints(path: Path, number: int, text: str, fields: list[str], expected: str) -> list[int]:
    try:
        return [int(value) for value in fields]
    except ValueError:
        raise ValueError(f"{path}:{number}: expected '{expected}' with integers, got {text!r}") from None


def _split(path: Path, number: int, text: str, count: int, expected: str) -> list[str]:
    fields = [value.strip() for value in text.split(",")]
    if len(fields) != count or not fields[0]:
        raise ValueError(f"{path}:{number}: expected '{expected}' ({count} comma-separated fields), got {text!r}")
    return fields


def _check_known(path: Path, number: int, image_id: str, known: Mapping[str, object] | set[str]) -> None:
    if image_id not in known:
        raise ValueError(f"{path}:{number}: image id {image_id!r} is not listed in image_ids.txt")


def _read_image_ids(path: Path) -> list[str]:
    image_ids: list[str] = []
    first_line: dict[str, int] = {}
    for number, text in _lines(path):
        if "," in text:
            raise ValueError(f"{path}:{number}: expected one image id per line (no commas), got {text!r}")
        if text in first_line:
            raise ValueError(f"{path}:{number}: image id {text!r} repeats line {first_line[text]}")
        check_relative_id(text, path, number)
        first_line[text] = number
        image_ids.append(text)
    return image_ids


def _read_labels(path: Path, known: set[str]) -> dict[str, int]:
    labels: dict[str, int] = {}
    line_of: dict[str, int] = {}
    for number, text in _lines(path):
        image_id, *rest = _split(path, number, text, 2, "<image_id>,<label>")
        (label,) = _parse_ints(path, number, text, rest, "<image_id>,<label>")
        _check_known(path, number, image_id, known)
        if label < 0:
            raise ValueError(f"{path}:{number}: label must be >= 0, got {label}")
        if image_id in labels:
            raise ValueError(f"{path}:{number}: a second label for image id {image_id!r}")
        labels[image_id] = label
        line_of[image_id] = number
    check_sorted_wnid_labels(labels, path, line_of)
    return labels


def wnid_of(image_id: str) -> str | None:
    """The WordNet id of an ILSVRC image id whose class folder names it (``train/n01440764/n01440764_10026.JPEG``
    -> ``"n01440764"``); ``None`` for ids without one (ILSVRC val / test ids, CUB, OpenImages)."""
    for part in image_id.split("/")[:-1]:
        if WNID_PATTERN.fullmatch(part):
            return part
    return None


_ORDER_FIX = (
    "wsoleval's ILSVRC labels follow the sorted WordNet-id order (torchvision's ImageFolder); these follow another "
    "class order (the official ACoL list uses another order): rewrite the labels in sorted-wnid order, or remap the "
    "classifier (docs/methods.md §3.4)"
)


def check_sorted_wnid_labels(
    labels: Mapping[str, int], path: str | os.PathLike[str], line_of: Mapping[str, int] | None = None
) -> None:
    """Check that the labels of image ids naming a WordNet id (:func:`wnid_of`) follow the sorted-wnid order.

    One label per wnid; and when the labels of the wnids seen are exactly ``0..n-1`` (a full class list) each must
    be its wnid's rank in sorted order, otherwise (a subset of the classes) they must increase with the sorted wnids.
    Ids without a wnid are not checked.

    Args:
        labels: image id -> label, in file order. path: the file, for the message. line_of: image id -> 1-based
            line (default: the position in ``labels``).

    Raises:
        ValueError: ``"<path>:<line>: ..."`` naming the image id, its label, the label expected (or the bound it
            breaks) and the fix.
    """
    lines = dict(line_of) if line_of is not None else {key: n for n, key in enumerate(labels, start=1)}
    first: dict[str, tuple[int, str]] = {}  # wnid -> (label, image id of its first line)
    for image_id, label in labels.items():
        wnid = wnid_of(image_id)
        if wnid is None:
            continue
        if wnid not in first:
            first[wnid] = (label, image_id)
        elif first[wnid][0] != label:
            seen_label, seen_id = first[wnid]
            raise ValueError(
                f"{path}:{lines[image_id]}: image id {image_id!r} has label {label}, but line {lines[seen_id]} gives "
                f"its class folder {wnid} label {seen_label}; one class folder, one label"
            )
    if not first:
        return
    ordered = sorted(first)
    if sorted(label for label, _ in first.values()) == list(range(len(ordered))):
        rank = {wnid: number for number, wnid in enumerate(ordered)}
        wrong = [(lines[image_id], wnid) for wnid, (label, image_id) in first.items() if label != rank[wnid]]
        if wrong:
            _, wnid = min(wrong)  # the first such line of the file
            label, image_id = first[wnid]
            raise ValueError(
                f"{path}:{lines[image_id]}: image id {image_id!r} has label {label}, but its class {wnid} is "
                f"number {rank[wnid]} of the {len(ordered)} sorted WordNet ids: expected label {rank[wnid]}. "
                f"{_ORDER_FIX}"
            )
        return
    for before, after in itertools.pairwise(ordered):
        if first[after][0] <= first[before][0]:
            image_id = first[after][1]
            raise ValueError(
                f"{path}:{lines[image_id]}: image id {image_id!r} has label {first[after][0]}, but its class {after} "
                f"sorts after {before} (label {first[before][0]}): expected a label above {first[before][0]}. "
                f"{_ORDER_FIX}"
            )


def _read_sizes(path: Path, known: set[str]) -> dict[str, tuple[int, int]]:
    sizes: dict[str, tuple[int, int]] = {}
    for number, text in _lines(path):
        image_id, *rest = _split(path, number, text, 3, "<image_id>,<width>,<height>")
        width, height = _parse_ints(path, number, text, rest, "<image_id>,<width>,<height>")
        _check_known(path, number, image_id, known)
        if width <= 0 or height <= 0:
            raise ValueError(f"{path}:{number}: image size must be positive, got {width}x{height}")
        if image_id in sizes:
            raise ValueError(f"{path}:{number}: a second size for image id {image_id!r}")
        sizes[image_id] = (width, height)
    return sizes


def _check_box(path: Path, number: int, box: list[int], size: tuple[int, int] | None) -> None:
    x0, y0, x1, y1 = box
    if x1 < x0 or y1 < y0:
        raise ValueError(f"{path}:{number}: box {box} has x1 < x0 or y1 < y0 (expected inclusive x0,y0,x1,y1)")
    if min(box) < 0:
        raise ValueError(f"{path}:{number}: box {box} has a negative coordinate")
    if size is not None and (x1 > size[0] or y1 > size[1]):
        raise ValueError(
            f"{path}:{number}: box {box} lies outside the image size {size[0]}x{size[1]} from image_sizes.txt"
        )


def _read_boxes(path: Path, known: set[str], sizes: Mapping[str, tuple[int, int]]) -> dict[str, np.ndarray]:
    boxes: dict[str, list[list[int]]] = {}
    for number, text in _lines(path):
        image_id, *rest = _split(path, number, text, 5, "<image_id>,<x0>,<y0>,<x1>,<y1>")
        box = _parse_ints(path, number, text, rest, "<image_id>,<x0>,<y0>,<x1>,<y1>")
        _check_known(path, number, image_id, known)
        _check_box(path, number, box, sizes.get(image_id))
        boxes.setdefault(image_id, []).append(box)
    return {image_id: np.asarray(rows, dtype=np.int64).reshape(-1, 4) for image_id, rows in boxes.items()}


def _read_masks(path: Path, known: set[str]) -> tuple[dict[str, list[str]], dict[str, str | None]]:
    masks: dict[str, list[str]] = {}
    ignores: dict[str, str | None] = {}
    for number, text in _lines(path):
        image_id, mask_path, ignore_path = _split(path, number, text, 3, "<image_id>,<mask_path>,<ignore_path>")
        _check_known(path, number, image_id, known)
        if not mask_path:
            raise ValueError(f"{path}:{number}: empty mask path in {text!r}")
        check_relative_id(mask_path, path, number, "mask path")
        if ignore_path:
            check_relative_id(ignore_path, path, number, "ignore path")
        if image_id in masks:
            if ignore_path:
                raise ValueError(f"{path}:{number}: ignore path may be given only on an image's first line")
            masks[image_id].append(mask_path)
        else:
            masks[image_id] = [mask_path]
            ignores[image_id] = ignore_path or None
    return masks, ignores


def _localization_style(path: Path) -> str:
    """``"boxes"`` (5 fields per line) or ``"masks"`` (3 fields), judged from the first non-blank line."""
    for _, text in _lines(path):
        return "masks" if text.count(",") == 2 else "boxes"
    return "boxes"


def _require_all(path: Path, found: Mapping[str, object], image_ids: list[str], what: str) -> None:
    missing = [image_id for image_id in image_ids if image_id not in found]
    if missing:
        shown = ", ".join(repr(image_id) for image_id in missing[:3])
        raise ValueError(f"{path}: no {what} for {len(missing)} image id(s) from image_ids.txt, e.g. {shown}")


def read_wsoleval_metadata(metadata_dir: str | os.PathLike[str]) -> WsolevalMetadata:
    """Parse a wsoleval metadata folder (docs/methods.md §3) into a :class:`WsolevalMetadata`.

    Args:
        metadata_dir: folder holding ``image_ids.txt``, ``class_labels.txt``, ``image_sizes.txt`` and
            ``localization.txt``. ``image_sizes.txt`` may be absent only for mask-style localization.

    Raises:
        FileNotFoundError: the folder or a required file is missing.
        ValueError: a line does not parse, an id is in one file but not in ``image_ids.txt`` (or the
            reverse), a box has ``x1 < x0`` / ``y1 < y0`` / a negative coordinate / lies outside the image
            size. The message names the file and the line number.
    """
    root = Path(metadata_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: metadata folder not found (expected wsoleval's {', '.join(METADATA_FILES)})")
    image_ids = _read_image_ids(root / "image_ids.txt")
    known = set(image_ids)
    labels = _read_labels(root / "class_labels.txt", known)
    _require_all(root / "class_labels.txt", labels, image_ids, "label")
    localization = root / "localization.txt"
    style = _localization_style(localization)
    sizes_path = root / "image_sizes.txt"
    sizes = _read_sizes(sizes_path, known) if style == "boxes" or sizes_path.exists() else {}
    if style == "boxes" or sizes:
        _require_all(sizes_path, sizes, image_ids, "size")
    if style == "masks":
        masks, ignores = _read_masks(localization, known)
        _require_all(localization, masks, image_ids, "mask")
        return WsolevalMetadata(image_ids, labels, sizes, {}, mask_paths=masks, ignore_paths=ignores)
    boxes = _read_boxes(localization, known, sizes)
    _require_all(localization, boxes, image_ids, "box")
    return WsolevalMetadata(image_ids, labels, sizes, boxes)


def _write_atomic(path: Path, lines: Iterable[str]) -> None:
    """Write ``lines``, one per line (newline-terminated), to ``path`` atomically."""
    write_text_atomic(path, "".join(f"{line}\n" for line in lines))


def write_wsoleval_metadata(
    out_dir: str | os.PathLike[str],
    image_ids: Iterable[str],
    labels: Mapping[str, int],
    sizes: Mapping[str, tuple[int, int]],
    boxes: Mapping[str, np.ndarray | Iterable[Iterable[int]]],
) -> Path:
    """Write a wsoleval metadata folder (docs/methods.md §3) that :func:`read_wsoleval_metadata` reads back.

    Args:
        out_dir: folder to create (parents too); existing metadata files are replaced atomically.
        image_ids: ids in split order (no commas, no duplicates).
        labels: id -> int label. sizes: id -> ``(width, height)``.
        boxes: id -> ``(N, 4)`` inclusive ``x0, y0, x1, y1`` boxes; floats are truncated with ``int()``.

    Returns:
        The folder path. Raises ``ValueError`` if an id lacks a label, size or box, or has a comma.
    """
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    ids = list(image_ids)
    for image_id in ids:
        if "," in image_id or not image_id.strip():
            raise ValueError(f"image id {image_id!r}: must be non-empty and must not contain ','")
        for name, table in (("labels", labels), ("sizes", sizes), ("boxes", boxes)):
            if image_id not in table:
                raise ValueError(f"{name}: no entry for image id {image_id!r}")
    box_rows = {image_id: np.asarray(boxes[image_id], dtype=np.float64).reshape(-1, 4) for image_id in ids}
    _write_atomic(root / "image_ids.txt", ids)
    _write_atomic(root / "class_labels.txt", (f"{i},{int(labels[i])}" for i in ids))
    _write_atomic(root / "image_sizes.txt", (f"{i},{int(sizes[i][0])},{int(sizes[i][1])}" for i in ids))
    _write_atomic(
        root / "localization.txt",
        (f"{i},{','.join(str(int(v)) for v in row)}" for i in ids for row in box_rows[i]),
    )
    return root
