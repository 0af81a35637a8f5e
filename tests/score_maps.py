"""Generated score maps and GT boxes with wsoleval's corner cases, shared by the evaluator tests
(tests/test_boxeval.py, tests/test_scoremaps.py): blobs with holes and rings, maps touching the border, checkers,
ramps, values exactly on threshold edges, and random inclusive boxes."""

from __future__ import annotations

import cv2
import numpy as np


def normalize(raw: np.ndarray) -> np.ndarray:
    """wsoleval's normalize_scoremap: min-max to [0, 1]; constant -> zeros."""
    raw = raw - raw.min()
    return raw / raw.max() if raw.max() > 0 else np.zeros_like(raw)


def blobs(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Sum of Gaussians, some negative (holes, rings), centres partly outside (touching the border)."""
    yy, xx = np.mgrid[:height, :width].astype(np.float64)
    raw = np.zeros((height, width))
    for _ in range(rng.integers(1, 6)):
        cy, cx = rng.uniform(-0.1, 1.1) * height, rng.uniform(-0.1, 1.1) * width
        sigma = rng.uniform(0.04, 0.3) * max(height, width)
        amplitude = rng.uniform(0.3, 1.0) * rng.choice([1.0, 1.0, -0.7])
        raw += amplitude * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sigma**2))
    if rng.random() < 0.3:
        raw += rng.normal(0, 0.05, raw.shape)  # speckle: many small components
    return normalize(raw)


def corner_cases(size: int) -> list[np.ndarray]:
    zeros = np.zeros((size, size))
    single = zeros.copy()
    single[size // 2, size // 3] = 1.0
    corner = zeros.copy()
    corner[0, -1] = 1.0
    ring = np.zeros((size, size))
    cv2.circle(ring, (size // 2, size // 2), size // 3, 1.0, thickness=max(1, size // 8))
    nested = ring.copy()
    nested[size // 2 - 1 : size // 2 + 2, size // 2 - 1 : size // 2 + 2] = 0.6  # an island inside the hole
    border = np.ones((size, size))
    border[1:-1, 1:-1] = 0.3
    checker = (np.indices((size, size)).sum(axis=0) % 2).astype(np.float64)
    ramp = np.tile(np.linspace(0, 1, size), (size, 1))
    half = 0.5 * ramp  # max below 1: wsoleval's cut-off is int(t * img.max())
    edge = np.full((size, size), 0.001 * 7)  # values exactly on threshold edges
    edge[2:5, 3:9] = 1.0
    return [zeros, single, corner, ring, nested, border, checker, ramp, half, edge, np.ones((size, size))]


def gt_boxes_for(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """1-3 random inclusive boxes; sometimes the full image or a 1-pixel box at the corner."""
    boxes = []
    for _ in range(rng.integers(1, 4)):
        x0, x1 = np.sort(rng.integers(0, width, 2))
        y0, y1 = np.sort(rng.integers(0, height, 2))
        boxes.append([x0, y0, x1, y1])
    if rng.random() < 0.2:
        boxes.append(rng.choice([[0, 0, width - 1, height - 1], [0, 0, 0, 0]]))
    return np.asarray(boxes, dtype=np.int64)


def generated_dataset(count: int, seed: int, sizes: tuple[int, ...] = (12, 24, 33)) -> tuple[list, list]:
    rng = np.random.default_rng(seed)
    maps = [*corner_cases(16), np.ones((1, 1)), np.zeros((2, 3))]
    maps += [blobs(rng, int(rng.choice(sizes)), int(rng.choice(sizes))) for _ in range(count - len(maps))]
    maps[-count // 4 :] = [scoremap.astype(np.float32) for scoremap in maps[-count // 4 :]]  # engine maps are float32
    boxes = [gt_boxes_for(rng, *scoremap.shape) for scoremap in maps]
    return maps, boxes
