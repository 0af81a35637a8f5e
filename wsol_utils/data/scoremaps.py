"""A folder of wsoleval score maps, read and scored: :func:`evaluate_scoremaps` (``python -m wsol_utils evaluate``).

The files a user hands over are untrusted: every ``.npy`` header is checked before anything is allocated
(:func:`load_scoremap`, 2-D float, at most :data:`MAX_MAP_PIXELS`; never unpickled), and no image id may lead
outside its folder. The maps are scored by the scoring layer's fast evaluator
(:class:`~wsol_utils.scoring.boxeval.BoxEvaluator`, :class:`~wsol_utils.scoring.boxeval.PxAPEvaluator`; docs/methods.md
§2.2), streamed in chunks through worker processes that load neither torch nor the rest of the package's layers.

Mask files for :func:`evaluate_scoremaps` (``mask_dir``), for image id ``val/a.jpg``:

- ``<mask_dir>/val/a.jpg.png`` (grayscale; pixels > 127 are foreground) with an optional
  ``<mask_dir>/val/a.jpg.ignore.png`` (pixels > 127 are ignored unless foreground), or
- ``<mask_dir>/val/a.jpg.npy``: uint8 ``(H, W)`` with 0 background, 1 foreground, 255 ignore
  (the project's mask convention, docs/ARCHITECTURE.md).

Masks are resized to the score map's size with nearest-neighbour interpolation.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from wsol_utils.scoring.boxes import MASK_IGNORE, check_mask, check_scoremap, rescale_boxes
from wsol_utils.scoring.boxeval import BoxEvaluator, PxAPEvaluator

if TYPE_CHECKING:
    from wsol_utils.data.metadata import WsolevalMetadata

__all__ = ["MAX_MAP_PIXELS", "evaluate_scoremaps", "load_mask", "load_scoremap"]

# Workers only run numpy and OpenCV (one thread each). Plain "fork" deadlocks when the parent already runs
# OpenCV or torch threads (a lock held by one of them is copied into the child; seen with OpenCV 5 after
# BoxEvaluator's thread pool), so on Linux they come from a fork server: a fresh single-threaded process that
# imports this module once and forks each worker from itself. Elsewhere: spawn.
_START_METHOD = "forkserver" if sys.platform.startswith("linux") else "spawn"

#: The most pixels a score map or mask ``.npy`` may hold (8192 x 8192): a header claiming more is refused before
#: anything is allocated (wsoleval's maps are 224 x 224; a map at an image's full resolution still fits).
MAX_MAP_PIXELS = 8192 * 8192
_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
_KIND_NAMES = {"f": "float (values in [0, 1])", "biuf": "numeric"}


def _file_in(folder: Path, image_id: str, suffix: str) -> Path:
    """``<folder>/<image_id><suffix>``, refused (ValueError naming it) when it would lie outside ``folder``: an
    absolute id or one climbing out with ``..`` (the metadata reader refuses those ids already, naming the line;
    this guards direct callers). Symbolic links inside ``folder`` are followed: a folder of links is a layout."""
    path = folder / f"{image_id}{suffix}"
    inside = os.path.normpath(path)
    if os.path.isabs(image_id) or os.path.commonpath([inside, os.path.normpath(folder)]) != os.path.normpath(folder):
        raise ValueError(f"{path}: image id {image_id!r} leads outside {folder}; ids must be relative paths inside it")
    return path


def _read_npy(path: Path, what: str, kinds: str) -> np.ndarray:
    """Read a 2-D ``.npy`` array after checking its header: dtype kind in ``kinds`` (numpy's ``dtype.kind`` codes),
    at most :data:`MAX_MAP_PIXELS` elements, and no more data than the file holds, so that a header claiming a huge
    or wrong array is refused (ValueError naming the file) before anything is allocated; never unpickles. The data
    are then read as ``numpy.load`` reads them (``fromfile`` + reshape), without parsing the header twice."""
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: {what} not found") from None
    with handle:
        try:
            version = np.lib.format.read_magic(handle)
            if version not in _HEADER_READERS:
                raise ValueError(f"unsupported .npy format version {version}")
            shape, fortran_order, dtype = _HEADER_READERS[version](handle)
        except ValueError as error:
            raise ValueError(f"{path}: not a readable .npy array ({error})") from None
        if dtype.hasobject or dtype.kind not in kinds:
            raise ValueError(f"{path}: a {what} must be a {_KIND_NAMES[kinds]} array, got dtype {dtype}")
        if len(shape) != 2 or min(shape) < 0:
            raise ValueError(f"{path}: a {what} must be 2-D (H, W), got shape {tuple(shape)}")
        pixels = int(np.prod(shape, dtype=np.float64))  # float: a product of huge sides must not overflow
        if pixels > MAX_MAP_PIXELS:
            raise ValueError(
                f"{path}: header claims a {shape[0]} x {shape[1]} {what}, more than {MAX_MAP_PIXELS} pixels; "
                "save maps at the evaluation size (wsoleval: 224 x 224)"
            )
        remaining = os.fstat(handle.fileno()).st_size - handle.tell()
        if remaining < pixels * dtype.itemsize:
            raise ValueError(
                f"{path}: header claims {tuple(shape)} {dtype} ({pixels * dtype.itemsize} bytes of data), the file "
                f"holds {remaining}: truncated; save it again with numpy.save"
            )
        data = np.fromfile(handle, dtype=dtype, count=pixels)  # numpy.lib.format.read_array's own read of a file
    return data.reshape(shape[::-1]).transpose() if fortran_order else data.reshape(shape)


def load_scoremap(path: Path) -> tuple[np.ndarray, bool]:
    """Load a ``(H, W)`` ``.npy`` map in ``[0, 1]``; a map holding NaN becomes zeros (wsoleval's
    ``normalize_scoremap``). Returns ``(map, had_nan)``. The header is checked first (:func:`_read_npy`: 2-D float,
    sane size). Raises ValueError naming the file otherwise."""
    scoremap = _read_npy(path, "score map", "f")
    had_nan = bool(np.isnan(scoremap).any())
    if had_nan:
        scoremap = np.zeros_like(scoremap)
    check_scoremap(scoremap, str(path))
    return scoremap, had_nan


def _read_gray(path: Path, size: tuple[int, int]) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise ValueError(f"{path}: cannot read the mask image (expected a grayscale PNG)")
    return cv2.resize(image, size, interpolation=cv2.INTER_NEAREST)


def load_mask(mask_dir: Path, image_id: str, map_shape: tuple[int, int]) -> np.ndarray:
    """The uint8 ``(H, W)`` mask (0 / 1 / 255 ignore) of ``image_id`` resized (nearest) to ``map_shape``,
    from ``<image_id>.npy`` or ``<image_id>.png`` (+ ``<image_id>.ignore.png``); see the module docstring."""
    height, width = map_shape
    npy, png = _file_in(mask_dir, image_id, ".npy"), _file_in(mask_dir, image_id, ".png")
    if npy.is_file():
        mask = check_mask(_read_npy(npy, "mask", "biuf"), None, str(npy))
        return cv2.resize(mask.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST)
    if not png.is_file():
        raise FileNotFoundError(f"{png}: mask not found (expected {png.name} or {npy.name} under {mask_dir})")
    foreground = _read_gray(png, (width, height)) > 127
    mask = foreground.astype(np.uint8)
    ignore_png = _file_in(mask_dir, image_id, ".ignore.png")
    if ignore_png.is_file():
        mask[(_read_gray(ignore_png, (width, height)) > 127) & ~foreground] = MASK_IGNORE
    return mask


# ---------------------------------------------------------------- streaming over a folder


@dataclass(frozen=True)
class _Job:
    """What a worker needs to score a chunk of images (small: ids and their boxes only)."""

    image_ids: list[str]
    boxes: list[np.ndarray]
    sizes: list[tuple[int, int]]
    scoremap_dir: str
    mask_dir: str | None
    interval: float
    iou_levels: tuple[int, ...]


def _score_chunk(job: _Job) -> tuple[BoxEvaluator, PxAPEvaluator | None, list[str]]:
    """Score one chunk of images; returns its evaluators (counts only) and the ids whose map held NaN."""
    boxes = BoxEvaluator(job.interval, job.iou_levels)
    mask_dir = None if job.mask_dir is None else Path(job.mask_dir)
    pxap = PxAPEvaluator(job.interval) if mask_dir is not None else None
    nan_ids: list[str] = []
    for image_id, gt, size in zip(job.image_ids, job.boxes, job.sizes):
        scoremap, had_nan = load_scoremap(_file_in(Path(job.scoremap_dir), image_id, ".npy"))
        if had_nan:
            nan_ids.append(image_id)
        height, width = scoremap.shape
        boxes.accumulate(scoremap, rescale_boxes(gt, size, (width, height)))
        if pxap is not None and mask_dir is not None:
            pxap.accumulate(scoremap, load_mask(mask_dir, image_id, (height, width)))
    return boxes, pxap, nan_ids


def _jobs(
    meta: WsolevalMetadata,
    scoremap_dir: Path,
    mask_dir: Path | None,
    interval: float,
    iou_levels: tuple[int, ...],
    chunk_size: int,
) -> Iterator[_Job]:
    for start in range(0, len(meta.image_ids), chunk_size):
        ids = meta.image_ids[start : start + chunk_size]
        yield _Job(
            ids,
            [meta.boxes[i] for i in ids],
            [meta.sizes[i] for i in ids],
            str(scoremap_dir),
            None if mask_dir is None else str(mask_dir),
            interval,
            iou_levels,
        )


def _check_scoremaps_exist(scoremap_dir: Path, image_ids: Sequence[str]) -> None:
    if not scoremap_dir.is_dir():
        raise FileNotFoundError(f"{scoremap_dir}: score-map folder not found")
    missing = [i for i in image_ids if not _file_in(scoremap_dir, i, ".npy").is_file()]
    if missing:
        shown = ", ".join(str(scoremap_dir / f"{i}.npy") for i in missing[:3])
        raise FileNotFoundError(
            f"{scoremap_dir}: {len(missing)} of {len(image_ids)} score maps are missing, e.g. {shown} "
            "(expected <scoremap-dir>/<image_id>.npy for every id in image_ids.txt)"
        )


def _chunk_results(jobs: list[_Job], workers: int) -> Iterator[tuple[BoxEvaluator, PxAPEvaluator | None, list[str]]]:
    if workers == 1:
        yield from map(_score_chunk, jobs)
        return
    context = multiprocessing.get_context(_START_METHOD)
    if _START_METHOD == "forkserver":
        context.set_forkserver_preload([__name__])  # workers start from a server that already imported us
    with context.Pool(workers, initializer=cv2.setNumThreads, initargs=(1,)) as pool:  # one thread per worker
        yield from pool.imap_unordered(_score_chunk, jobs)


class _NoBar:
    """What :func:`_progress_bar` gives without a bar: a context manager whose ``update`` does nothing."""

    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, count: int) -> None:
        """Nothing to show."""


def _progress_bar(total: int, progress: bool) -> Any:
    """A tqdm bar on stderr over ``total`` images (hidden where stderr is no terminal, as tqdm does), or, without
    ``progress``, a :class:`_NoBar`: tqdm is then not imported (about 60 ms of the ``evaluate`` command's start-up:
    ``tqdm.auto`` imports asyncio)."""
    if not progress:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="evaluate", unit="img", file=sys.stderr, disable=None)


def evaluate_scoremaps(
    metadata_dir: str | os.PathLike[str],
    scoremap_dir: str | os.PathLike[str],
    *,
    interval: float = 0.001,
    iou_levels: Sequence[int] = (30, 50, 70),
    mask_dir: str | os.PathLike[str] | None = None,
    workers: int | None = None,
    progress: bool = True,
    chunk_size: int = 16,
) -> dict[str, Any]:
    """Score a folder of wsoleval score maps: MaxBoxAcc, MaxBoxAccV2 and (with masks) PxAP.

    Reads ``<scoremap_dir>/<image_id>.npy`` (``(H, W)`` maps in ``[0, 1]``, wsoleval's layout) for every
    id of the metadata folder (:func:`~wsol_utils.data.metadata.read_wsoleval_metadata`); GT boxes are
    rescaled from ``image_sizes.txt`` to each map's size with ``int()`` truncation. Images are streamed in
    chunks of ``chunk_size`` through ``workers`` processes (default: all cores; 1 = in this process); each
    chunk returns only count arrays, so memory stays flat in the number of images. A map holding NaN is
    scored as all zeros, as wsoleval's ``normalize_scoremap`` does, with a warning naming it.

    Returns:
        The result dict of the module docstring (``pxap`` only with ``mask_dir``).

    Raises:
        FileNotFoundError: missing metadata, score maps (how many, and the first few) or masks.
        ValueError: bad metadata line, a map that is not 2-D or has values outside ``[0, 1]``.
    """
    from wsol_utils.data.metadata import read_wsoleval_metadata

    meta = read_wsoleval_metadata(metadata_dir)
    if meta.mask_paths is not None:
        raise ValueError(
            f"{metadata_dir}: mask-style (OpenImages) localization.txt is not supported; "
            "give boxes, and masks via mask_dir"
        )
    scoremaps = Path(scoremap_dir)
    _check_scoremaps_exist(scoremaps, meta.image_ids)
    masks = None if mask_dir is None else Path(mask_dir)
    if masks is not None and not masks.is_dir():
        raise FileNotFoundError(f"{masks}: mask folder not found")
    workers = (os.cpu_count() or 1) if workers is None else workers
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    levels = tuple(int(level) for level in iou_levels)
    boxes = BoxEvaluator(interval, levels)
    pxap = PxAPEvaluator(interval) if masks is not None else None
    nan_ids: list[str] = []
    jobs = list(_jobs(meta, scoremaps, masks, boxes.interval, levels, chunk_size))
    with _progress_bar(len(meta.image_ids), progress) as bar:
        for chunk_boxes, chunk_pxap, chunk_nan in _chunk_results(jobs, max(1, min(workers, len(jobs)))):
            boxes.merge(chunk_boxes)
            if pxap is not None and chunk_pxap is not None:
                pxap.merge(chunk_pxap)
            nan_ids += chunk_nan
            bar.update(chunk_boxes.num_images)
    if nan_ids:
        warnings.warn(
            f"{len(nan_ids)} score map(s) held NaN and were scored as all zeros "
            f"(wsoleval's normalize_scoremap), e.g. {nan_ids[:3]}",
            stacklevel=2,
        )
    result = boxes.compute()
    if pxap is not None:
        result["pxap"] = pxap.compute()
    return result
