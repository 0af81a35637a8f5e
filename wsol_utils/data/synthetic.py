"""The built-in synthetic WSOL data set (docs/methods.md §3): one two-part object per image on a cluttered background.

Each image holds one object made of

- a **head**: a small disc (``head_size`` x image side across, ~7 px at 64 px) carrying a two-colour class
  code -- an inner disc and a ring, each one of six palette colours (white, black, red, yellow, blue, green),
  one ordered pair per class. It tells the class (almost) perfectly, but covers only ~1% of the image.
- a **body**: a large striped ellipse (``body_area`` of the image area, 10-20% by default; the object's box
  covers ~23% of the image on average, up to ~45%) whose hue is the class hue ``label / num_classes`` plus
  Gaussian noise of sd ``body_hue_sd`` (fraction of the hue circle). With 10 classes the class hues are 0.1
  apart, so with the default sd 0.07 the body tells the class only weakly (Bayes accuracy from hue ~50%). The
  head sits at one end of the body's major axis, mostly outside it, like a bird's head.

The background is clutter that mimics neither part: two octaves of smooth grey-ish noise (low saturation),
plus thin lines and small rectangles in desaturated colours drawn from one distribution for all classes
(no discs, no saturated colours). This is the case WSOL exists for: a classifier needs only the head, so a
plain CAM lights the head, while the target box is the whole object (head + body).

Knobs (:class:`SyntheticConfig`; every one goes into the cache key):

- ``image_size`` (64-224 px), ``num_classes`` (2-30), ``num_train`` / ``num_val`` / ``num_test``, ``seed``;
- part sizes: ``head_size`` (head diameter / image side), ``head_inner`` (inner-disc radius / head radius),
  ``body_area`` (range of the ellipse area / image area), ``body_aspect`` (range of major / minor axis);
- how strongly each part tells the class: ``head_noise`` (probability that the head shows a random other
  class's code; 0 = perfect cue), ``body_hue_sd`` (hue noise of the body; 0 = perfect cue, >= ~0.3 = none);
- ``stripe_period`` (body stripe period / image side; 0 = plain body);
- ``clutter`` (0 = plain smooth background, 1 = default, 2 = heavy: texture contrast and number of shapes);
- ``position_range`` (0 = object centred, 1 = anywhere the whole object fits, with a 1 px margin).

Measured class cue per part (nearest-class-mean linear probe, pooled covariance, on the mean RGB of each
part's pixels; 64 px, defaults, 2,000 test images, half to fit and half to score; the statistic of
``tests/test_synthetic.py``): head 100.0%, body 52.3%, background 11.1% (chance 10%).

Arrays: ``images (N, H, W, 3) uint8`` RGB, ``labels (N,) int64``, ``parts (N, H, W) uint8``
(0 background, 1 body, 2 head; the object mask is ``parts > 0``), ``boxes (N, 4) float32`` -- the tight
inclusive box ``x0, y0, x1, y1`` of ``parts > 0``. Generation is vectorized over a chunk of images with
numpy (coordinate grids and broadcasting); splits are cached as ``.npz`` files keyed by a hash of all
knobs, the split and :data:`GENERATOR_VERSION` (see :func:`synthetic_arrays`).
"""

from __future__ import annotations

import dataclasses
import os
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from wsol_utils.base.atomic import write_atomic, write_bytes_atomic
from wsol_utils.base.digest import canonical_digest
from wsol_utils.data.base import WSOLDataset, WSOLItem, resolve_transform, tight_boxes
from wsol_utils.data.transforms import BoxTransform, WSOLTransform

__all__ = [
    "SyntheticConfig",
    "SyntheticArrays",
    "SyntheticWSOL",
    "generate",
    "synthetic_arrays",
    "default_cache_dir",
    "export_wsoleval",
    "PALETTE",
    "PALETTE_NAMES",
    "GENERATOR_VERSION",
    "SPLITS",
    "head_code",
]

GENERATOR_VERSION = 1
SPLITS = ("train", "val", "test")
PALETTE_NAMES = ("white", "black", "red", "yellow", "blue", "green")
PALETTE = np.array(
    [[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [1.0, 0.92, 0.0], [0.1, 0.25, 1.0], [0.0, 0.75, 0.1]],
    dtype=np.float32,
)
# (inner, ring) colour pairs: every unordered pair first, then the same pairs reversed -> 30 classes at most.
_PAIRS = [(i, j) for i in range(len(PALETTE)) for j in range(i + 1, len(PALETTE))]
_CODES = np.array(_PAIRS + [(j, i) for i, j in _PAIRS], dtype=np.int64)
_CHUNK_PIXELS = 2_000_000  # images per chunk = this / (H * W): bounds the memory of one vectorized step


@dataclass(frozen=True)
class SyntheticConfig:
    """Knobs of the generator (see the module docstring for what each one does)."""

    image_size: int = 64
    num_classes: int = 10
    num_train: int = 5000
    num_val: int = 500
    num_test: int = 1000
    seed: int = 0
    head_size: float = 0.11
    head_inner: float = 0.55
    head_noise: float = 0.0
    body_area: tuple[float, float] = (0.10, 0.20)
    body_aspect: tuple[float, float] = (1.3, 2.0)
    body_hue_sd: float = 0.07
    stripe_period: float = 0.09
    clutter: float = 1.0
    position_range: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "body_area", tuple(float(v) for v in self.body_area))
        object.__setattr__(self, "body_aspect", tuple(float(v) for v in self.body_aspect))
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` naming the knob when a value is out of range or the object cannot fit."""
        checks = [
            (16 <= self.image_size <= 512, "image_size", "between 16 and 512 (64-224 intended)"),
            (2 <= self.num_classes <= len(_CODES), "num_classes", f"between 2 and {len(_CODES)}"),
            (min(self.num_train, self.num_val, self.num_test) >= 0, "num_train/num_val/num_test", ">= 0"),
            (0.0 < self.head_size <= 0.4, "head_size", "in (0, 0.4]"),
            (0.0 < self.head_inner < 1.0, "head_inner", "in (0, 1)"),
            (0.0 <= self.head_noise <= 1.0, "head_noise", "in [0, 1]"),
            (0.0 < self.body_area[0] <= self.body_area[1] < 0.5, "body_area", "a range (lo, hi), 0 < lo <= hi < 0.5"),
            (1.0 <= self.body_aspect[0] <= self.body_aspect[1], "body_aspect", "a range (lo, hi), 1 <= lo <= hi"),
            (self.body_hue_sd >= 0.0, "body_hue_sd", ">= 0"),
            (self.stripe_period >= 0.0, "stripe_period", ">= 0"),
            (0.0 <= self.clutter <= 4.0, "clutter", "in [0, 4]"),
            (0.0 <= self.position_range <= 1.0, "position_range", "in [0, 1]"),
        ]
        for ok, name, expected in checks:
            if not ok:
                raise ValueError(f"SyntheticConfig.{name} must be {expected}, got {getattr(self, name.split('/')[0])}")
        major = np.sqrt(self.body_area[1] * self.body_aspect[1] / np.pi)
        if 2 * major + 1.35 * self.head_size / 2 > 0.97:  # extent along the major axis, in image sides
            raise ValueError(
                f"SyntheticConfig: the largest object (body_area={self.body_area}, body_aspect={self.body_aspect}, "
                f"head_size={self.head_size}) does not fit in the image; lower body_area, body_aspect or head_size"
            )

    def num_images(self, split: str) -> int:
        """Number of images of ``split`` (``train`` / ``val`` / ``test``)."""
        return {"train": self.num_train, "val": self.num_val, "test": self.num_test}[_check_split(split)]

    def key(self, split: str) -> str:
        """Cache key: a hash of every knob, the split and the generator version."""
        payload = {"config": dataclasses.asdict(self), "split": _check_split(split), "version": GENERATOR_VERSION}
        return canonical_digest(payload, 20, compact=False)  # the spaced JSON of the first cache files


def _check_split(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    return split


def head_code(labels: np.ndarray) -> np.ndarray:
    """``(N,)`` labels -> ``(N, 2)`` palette indices ``(inner, ring)`` of each class's head code."""
    return _CODES[np.asarray(labels, dtype=np.int64)]


@dataclass
class SyntheticArrays:
    """One generated split: ``images (N, H, W, 3) uint8``, ``labels (N,) int64``, ``parts (N, H, W) uint8``
    (0 background, 1 body, 2 head) and ``boxes (N, 4) float32`` (tight inclusive box of ``parts > 0``)."""

    images: np.ndarray
    labels: np.ndarray
    parts: np.ndarray
    boxes: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


# ---------------------------------------------------------------------------------------------- drawing


def _hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Vectorized HSV -> RGB: ``(...)`` arrays in ``[0, 1]`` (hue wraps) -> ``(..., 3)``."""
    channels = []
    for n in (5.0, 3.0, 1.0):
        k = (n + 6.0 * np.mod(h, 1.0)) % 6.0
        channels.append(v - v * s * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0))
    return np.stack(channels, axis=-1).astype(np.float32)


def _upsample_matrix(coarse: int, fine: int) -> np.ndarray:
    """``(fine, coarse)`` bilinear interpolation matrix (pixel centres aligned, edges clamped)."""
    pos = np.clip((np.arange(fine) + 0.5) * coarse / fine - 0.5, 0.0, coarse - 1.0)
    low = np.floor(pos).astype(int)
    high = np.minimum(low + 1, coarse - 1)
    weight = (pos - low).astype(np.float32)
    matrix = np.zeros((fine, coarse), dtype=np.float32)
    matrix[np.arange(fine), low] += 1.0 - weight
    matrix[np.arange(fine), high] += weight
    return matrix


def _smooth_noise(rng: np.random.Generator, n: int, channels: int, coarse: int, size: int) -> np.ndarray:
    """``(n, channels, size, size)`` smooth noise: N(0, 1) on a ``coarse`` grid, bilinearly upsampled."""
    up = _upsample_matrix(coarse, size)
    grid = rng.standard_normal((n, channels, coarse, coarse), dtype=np.float32)
    return up @ grid @ up.T


def _background(rng: np.random.Generator, n: int, size: int, clutter: float) -> np.ndarray:
    """Grey-ish two-octave smooth texture: ``(n, H, W, 3)`` float in about ``[0, 1]``."""
    level = rng.uniform(0.35, 0.65, (n, 1, 1, 1)).astype(np.float32)
    luminance = _smooth_noise(rng, n, 1, 5, size) + 0.5 * _smooth_noise(rng, n, 1, 11, size)
    tint = _smooth_noise(rng, n, 3, 4, size)
    texture = 0.09 * clutter * luminance + 0.035 * min(clutter, 1.0) * tint
    return np.ascontiguousarray(level + texture.transpose(0, 2, 3, 1))


def _paint(canvas: np.ndarray, where: np.ndarray, colour: np.ndarray) -> None:
    """In place: ``canvas (n, H, W, 3)[where (n, H, W)] = colour (n, 3)`` per image."""
    np.copyto(canvas, colour[:, None, None, :], where=where[..., None])


def _draw_clutter(rng: np.random.Generator, canvas: np.ndarray, clutter: float) -> None:
    """In place: thin lines and small filled rectangles in desaturated colours, one distribution for all
    classes (no discs, no saturated colours, so clutter mimics neither the head nor the body).

    The shapes' parameters are drawn vectorized; OpenCV draws the handful of shapes of each image.
    """
    n, size = canvas.shape[0], canvas.shape[1]
    count = round(6 * clutter)
    if count == 0:
        return
    scale = size / 64.0
    present = rng.random((n, count)) < 0.75
    is_line = rng.random((n, count)) < 0.5
    grey = rng.uniform(0.15, 0.85, (n, count, 1))
    colours = np.clip(grey + rng.normal(0.0, 0.06, (n, count, 3)), 0.0, 1.0)
    centres = rng.uniform(0, size - 1, (n, count, 2))
    angle = rng.uniform(0, np.pi, (n, count))
    half_length = rng.uniform(4, 12, (n, count)) * scale
    direction = np.stack([np.cos(angle), np.sin(angle)], axis=-1) * half_length[..., None]
    line_ends = np.concatenate([centres - direction, centres + direction], axis=-1)
    half_sides = rng.uniform(1.0, 3.0, (n, count, 2)) * scale
    rect_ends = np.concatenate([centres - half_sides, centres + half_sides], axis=-1)
    ends = np.rint(np.where(is_line[..., None], line_ends, rect_ends)).astype(int)
    thickness = np.where(is_line, max(1, round(scale)), -1)  # -1 = filled rectangle
    for i, j in zip(*np.nonzero(present)):
        x0, y0, x1, y1 = (int(v) for v in ends[i, j])
        colour = tuple(float(c) for c in colours[i, j])
        draw = cv2.line if is_line[i, j] else cv2.rectangle
        draw(canvas[i], (x0, y0), (x1, y1), colour, int(thickness[i, j]))


def _object_geometry(rng: np.random.Generator, n: int, config: SyntheticConfig) -> dict[str, np.ndarray]:
    """Per-image body axes, angle, centre and head centre / radii, ``(n, 1, 1)`` each, in pixels."""
    size = config.image_size
    area = rng.uniform(*config.body_area, n) * size * size
    aspect = rng.uniform(*config.body_aspect, n)
    major, minor = np.sqrt(area * aspect / np.pi), np.sqrt(area / (np.pi * aspect))
    angle = rng.uniform(0.0, 2.0 * np.pi, n)
    cos, sin = np.cos(angle), np.sin(angle)
    head_r = np.full(n, config.head_size * size / 2.0)
    offset = major + 0.35 * head_r  # head centre on the major axis, mostly outside the body
    hx, hy = offset * cos, offset * sin
    half_x, half_y = np.sqrt((major * cos) ** 2 + (minor * sin) ** 2), np.sqrt((major * sin) ** 2 + (minor * cos) ** 2)
    lo_x, hi_x = np.minimum(-half_x, hx - head_r), np.maximum(half_x, hx + head_r)
    lo_y, hi_y = np.minimum(-half_y, hy - head_r), np.maximum(half_y, hy + head_r)
    centre_x = _place(rng, lo_x, hi_x, size, config.position_range)
    centre_y = _place(rng, lo_y, hi_y, size, config.position_range)
    geometry = dict(
        major=major,
        minor=minor,
        cos=cos,
        sin=sin,
        cx=centre_x,
        cy=centre_y,
        hx=centre_x + hx,
        hy=centre_y + hy,
        head_r=head_r,
        inner_r=head_r * config.head_inner,
    )
    return {name: value.reshape(n, 1, 1).astype(np.float32) for name, value in geometry.items()}


def _place(rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray, size: int, spread: float) -> np.ndarray:
    """Centre coordinates so that ``[centre + lo, centre + hi]`` lies in ``[1, size - 2]``."""
    first, last = 1.0 - lo, size - 2.0 - hi
    middle = 0.5 * (first + last)
    return middle + spread * (rng.random(lo.shape) - 0.5) * np.maximum(last - first, 0.0)


def _body_colours(
    rng: np.random.Generator, labels: np.ndarray, config: SyntheticConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Body colour and stripe colour ``(n, 3)``: class hue + N(0, body_hue_sd), saturated, bright."""
    n = len(labels)
    hue = labels / config.num_classes + rng.normal(0.0, config.body_hue_sd, n)
    saturation, value = rng.uniform(0.55, 0.9, n), rng.uniform(0.65, 0.95, n)
    return _hsv_to_rgb(hue, saturation, value), _hsv_to_rgb(hue, saturation, 0.6 * value)


def _head_colours(rng: np.random.Generator, labels: np.ndarray, config: SyntheticConfig) -> np.ndarray:
    """``(n, 2, 3)`` inner and ring colours of the head code, with ``head_noise`` swaps and slight jitter."""
    n = len(labels)
    shown = labels.copy()
    swap = rng.random(n) < config.head_noise
    others = (labels + rng.integers(1, config.num_classes, n)) % config.num_classes
    shown[swap] = others[swap]
    colours = PALETTE[head_code(shown)] + rng.normal(0.0, 0.03, (n, 2, 3)).astype(np.float32)
    return np.clip(colours, 0.0, 1.0)


def _render_chunk(
    rng: np.random.Generator, labels: np.ndarray, config: SyntheticConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``len(labels)`` images: ``images (n, H, W, 3) uint8`` and ``parts (n, H, W) uint8``."""
    n, size = len(labels), config.image_size
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    yy, xx = yy[None], xx[None]
    canvas = _background(rng, n, size, config.clutter)
    _draw_clutter(rng, canvas, config.clutter)
    g = _object_geometry(rng, n, config)
    dx, dy = xx - g["cx"], yy - g["cy"]
    along, across = dx * g["cos"] + dy * g["sin"], -dx * g["sin"] + dy * g["cos"]
    body = (along / g["major"]) ** 2 + (across / g["minor"]) ** 2 <= 1.0
    body_colour, stripe_colour = _body_colours(rng, labels, config)
    _paint(canvas, body, body_colour)
    if config.stripe_period > 0:
        phase = rng.random((n, 1, 1), dtype=np.float32)
        stripes = np.mod(along / (config.stripe_period * size) + phase, 1.0) < 0.4
        _paint(canvas, body & stripes, stripe_colour)
    head_dist2 = (xx - g["hx"]) ** 2 + (yy - g["hy"]) ** 2
    head = head_dist2 <= g["head_r"] ** 2
    inner = head_dist2 <= g["inner_r"] ** 2
    head_colours = _head_colours(rng, labels, config)
    _paint(canvas, head, head_colours[:, 1])
    _paint(canvas, inner, head_colours[:, 0])
    canvas += 0.02 * rng.standard_normal(canvas.shape, dtype=np.float32)
    images = (np.clip(canvas, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    parts = np.where(head, 2, np.where(body, 1, 0)).astype(np.uint8)
    return images, parts


def generate(config: SyntheticConfig, split: str, progress: bool = False) -> SyntheticArrays:
    """Generate one split from scratch (no cache). Deterministic in ``(config, split)``.

    Labels are balanced: ``arange(N) % num_classes``, shuffled. Each split has its own seed stream
    (``SeedSequence([seed, split index])``), so changing ``num_train`` does not change the test set.
    """
    n = config.num_images(split)
    rng = np.random.default_rng(np.random.SeedSequence([config.seed, SPLITS.index(split)]))
    labels = rng.permutation(np.arange(n) % config.num_classes).astype(np.int64)
    chunk = max(1, _CHUNK_PIXELS // (config.image_size**2))
    size = config.image_size
    images = np.empty((n, size, size, 3), dtype=np.uint8)
    parts = np.empty((n, size, size), dtype=np.uint8)
    starts: Iterable[int] = range(0, n, chunk)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc=f"synthetic {split}", unit="chunk")
    for start in starts:
        stop = min(start + chunk, n)
        images[start:stop], parts[start:stop] = _render_chunk(rng, labels[start:stop], config)
    return SyntheticArrays(images, labels, parts, tight_boxes(parts > 0))


def default_cache_dir() -> Path:
    """``$DATA_ROOT/synthetic`` when ``DATA_ROOT`` is set, else ``~/.cache/wsol_repro/synthetic``."""
    root = os.environ.get("DATA_ROOT")
    return Path(root) / "synthetic" if root else Path.home() / ".cache" / "wsol_repro" / "synthetic"


def _save_atomic(path: Path, arrays: SyntheticArrays) -> None:
    def write(tmp: Path) -> None:
        with tmp.open("wb") as handle:  # a file object: savez would add ".npz" to a path without it
            np.savez_compressed(handle, **dataclasses.asdict(arrays))

    write_atomic(path, write)


def synthetic_arrays(
    config: SyntheticConfig,
    split: str,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    progress: bool = False,
) -> SyntheticArrays:
    """One split, from the ``.npz`` cache when present, else generated and cached (written atomically).

    The file is ``<cache_dir>/synthetic_<key>.npz`` with ``key = config.key(split)``; ``cache_dir`` defaults to
    :func:`default_cache_dir`. ``use_cache=False`` generates in memory and writes nothing.
    """
    if not use_cache:
        return generate(config, split, progress)
    path = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = path / f"synthetic_{config.key(split)}.npz"
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as data:
                return SyntheticArrays(**{name: data[name] for name in ("images", "labels", "parts", "boxes")})
        except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
            pass  # an unreadable cache file is regenerated and replaced below
    arrays = generate(config, split, progress)
    _save_atomic(path, arrays)
    return arrays


class SyntheticWSOL(WSOLDataset):
    """The synthetic set as a torch data set of ``(image, label, boxes (1, 4), mask (H, W) 0/1, image_id)``.

    Attributes:
        config: the :class:`SyntheticConfig`. arrays: the raw :class:`SyntheticArrays`.
        parts: ``(N, H, W) uint8`` part map (0 background, 1 body, 2 head) of the *untransformed* images --
            aligned with the returned images under the default test transform (identity).
        class_names: ``"class<k> (<inner>/<ring>)"``, naming each class's head code.
    """

    def __init__(
        self,
        config: SyntheticConfig,
        split: str = "train",
        transform: str | BoxTransform | None = None,
        cache_dir: str | Path | None = None,
        use_cache: bool = True,
        progress: bool = False,
        generator: torch.Generator | None = None,
    ) -> None:
        self.config = config
        self.split = _check_split(split)
        self.arrays = synthetic_arrays(config, split, cache_dir, use_cache, progress)
        self.num_classes = config.num_classes
        self.class_names = [
            f"class{k} ({PALETTE_NAMES[i]}/{PALETTE_NAMES[j]})"
            for k, (i, j) in enumerate(head_code(np.arange(config.num_classes)))
        ]
        default = "flip" if split == "train" else "identity"
        self.transform = resolve_transform(transform, default, config.image_size, generator)

    def __len__(self) -> int:
        return len(self.arrays)

    @property
    def labels(self) -> np.ndarray:
        return self.arrays.labels

    @property
    def parts(self) -> np.ndarray:
        return self.arrays.parts

    def part_masks(self, indices: np.ndarray | list[int] | slice) -> tuple[np.ndarray, np.ndarray]:
        """``(head, body)`` boolean masks ``(B, H, W)`` of the untransformed images at ``indices``."""
        parts = self.arrays.parts[indices]
        return parts == 2, parts == 1

    def __getitem__(self, index: int) -> WSOLItem:
        parts = self.arrays.parts[index]
        image, boxes, mask = self.transform(
            self.arrays.images[index], self.arrays.boxes[index][None], (parts > 0).astype(np.uint8)
        )
        return image, int(self.arrays.labels[index]), boxes, mask, f"{self.split}/{index:05d}.png"

    def __getitems__(self, indices: list[int]) -> list[WSOLItem]:
        """``[self[i] for i in indices]`` (what a ``DataLoader`` asks for), transformed as one array when the
        transform allows it (:meth:`~wsol_utils.data.transforms.WSOLTransform.batch`): same items, same random
        draws, about 10x less time per image."""
        transform = self.transform
        if not isinstance(transform, WSOLTransform) or not transform.batchable(self.arrays.images.shape[1:3]):
            return [self[index] for index in indices]
        rows = np.asarray(indices, dtype=np.int64)
        masks = (self.arrays.parts[rows] > 0).astype(np.uint8)
        outputs = transform.batch(self.arrays.images[rows], self.arrays.boxes[rows][:, None], masks)
        return [
            (image, int(self.arrays.labels[index]), boxes, mask, f"{self.split}/{index:05d}.png")
            for index, (image, boxes, mask) in zip(rows.tolist(), outputs)
        ]


def _write_png_atomic(path: Path, array: np.ndarray) -> None:
    """Write ``(H, W)`` grey or ``(H, W, 3)`` RGB uint8 as PNG, atomically."""
    ok, encoded = cv2.imencode(".png", array[..., ::-1] if array.ndim == 3 else array)
    if not ok:
        raise ValueError(f"{path}: PNG encoding failed")
    write_bytes_atomic(path, encoded.tobytes())


def export_wsoleval(
    config: SyntheticConfig,
    split: str,
    out_dir: str | Path,
    cache_dir: str | Path | None = None,
    progress: bool = False,
) -> Path:
    """Write one split in wsoleval's layout, so the evaluation path for real data serves it too.

    Writes ``<out_dir>/<split>/<index:05d>.png`` (RGB images; the image id is ``<split>/<index:05d>.png``),
    ``<out_dir>/metadata/<split>/`` (the four metadata files; boxes are the tight inclusive object boxes),
    ``<out_dir>/masks/<image_id>.png`` (object mask, 255 foreground, 0 background) and
    ``<out_dir>/parts/<image_id>.png`` (0 background, 1 body, 2 head). Returns the metadata folder.
    ``load("wsoleval", root=out_dir, split=split, mask_dir=out_dir / "masks")`` reads it back.
    """
    from wsol_utils.data.metadata import write_wsoleval_metadata

    out = Path(out_dir)
    arrays = synthetic_arrays(config, split, cache_dir, progress=progress)
    ids = [f"{split}/{index:05d}.png" for index in range(len(arrays))]
    indices: Iterable[int] = range(len(arrays))
    if progress:
        from tqdm.auto import tqdm

        indices = tqdm(indices, desc=f"export {split}", unit="image")
    for index in indices:
        _write_png_atomic(out / ids[index], arrays.images[index])
        _write_png_atomic(out / "masks" / f"{ids[index]}.png", (arrays.parts[index] > 0).astype(np.uint8) * 255)
        _write_png_atomic(out / "parts" / f"{ids[index]}.png", arrays.parts[index])
    size = (config.image_size, config.image_size)
    return write_wsoleval_metadata(
        out / "metadata" / split,
        ids,
        labels={i: int(label) for i, label in zip(ids, arrays.labels)},
        sizes=dict.fromkeys(ids, size),
        boxes={i: box[None] for i, box in zip(ids, arrays.boxes)},
    )
