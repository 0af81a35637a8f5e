"""Where the fast evaluator's time goes on 224 px maps (issue 19 item 4), and what cheaper tracing could save.

On ``--maps`` of ``bench_boxeval``'s realistic maps, one process, interval 0.001, it prints

1. the CPU time per image of :meth:`BoxEvaluator._hits` on the tracing path (``component_tree=False``, what the
   component tree replaced) and the share of ``cv2.findContours`` in it (cProfile);
2. how many distinct binary images a map has, how many the IoU bound leaves to trace, how many of those reach
   IoU 0.3, and the share of the traced pixels that lies below the first binary image that does;
3. ``findContours`` on the real stack against a stack of the same size all zeros and all ones (what the raster
   scan alone costs), and against each binary image cut to its own window (stack building included);
4. ``cv2.connectedComponentsWithStats`` (8-connected) on the same stack, as a candidate pre-check;
5. what replaced tracing: the CPU time per image of the component tree path (``component_tree=True``; cProfile,
   the compiled tree and the tracing left for the binary images whose contours disagree about IoU 50), how many
   binary images it still traces, and that its counts equal the tracing path's on the same maps.

    .venv/bin/python benchmarks/profile_boxeval.py --maps 100 > benchmarks/results/profile_boxeval.txt
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time
from collections.abc import Callable
from typing import Any, TypeVar

import cv2
import numpy as np
from bench_boxeval import realistic_map
from bench_train_throughput import cpu_description

from wsol_utils.scoring import boxeval
from wsol_utils.scoring.boxes import V1_IOU_LEVEL as V1
from wsol_utils.scoring.boxes import broadcast_iou, quantize_scoremap

_T = TypeVar("_T")
FLOOR = 0.3  # the lowest IoU any count needs (MaxBoxAccV2's first level)


def _timed(totals: dict[str, float], name: str, function: Callable[..., _T], *args: Any) -> _T:
    """``function(*args)``, its wall time added to ``totals[name]``."""
    start = time.perf_counter()
    result = function(*args)
    totals[name] = totals.get(name, 0.0) + time.perf_counter() - start
    return result


def _trace(binary: np.ndarray) -> object:
    """The evaluator's ``findContours`` call."""
    return cv2.findContours(binary, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)


def _stack(img: np.ndarray, lows: np.ndarray, window: np.ndarray) -> np.ndarray:
    """The evaluator's stack: every binary image cut to ``window``, a background row below each."""
    x0, y0, x1, y1 = (int(v) for v in window)
    cut = img[y0 : y1 + 1, x0 : x1 + 1]
    stack = np.zeros((len(lows), cut.shape[0] + 1, cut.shape[1]), dtype=np.uint8)
    np.greater_equal(cut, lows.astype(np.uint8)[:, None, None], out=stack[:, :-1].view(np.bool_))
    return stack.reshape(-1, cut.shape[1])


def _own_windows(img: np.ndarray, lows: np.ndarray, windows: np.ndarray) -> np.ndarray:
    """The same binary images, each cut to its own window (left-aligned), a background row below each."""
    heights = windows[:, 3] - windows[:, 1] + 2
    starts = np.concatenate(([0], np.cumsum(heights)[:-1])).tolist()
    canvas = np.zeros((int(heights.sum()), int(windows[0, 2] - windows[0, 0] + 1)), np.uint8)
    binary = canvas.view(np.bool_)
    for k, (x0, y0, x1, y1) in enumerate(windows.tolist()):
        out = binary[starts[k] : starts[k] + y1 - y0 + 1, : x1 - x0 + 1]
        np.greater_equal(img[y0 : y1 + 1, x0 : x1 + 1], np.uint8(lows[k]), out=out)
    return canvas


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--maps", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    maps = [realistic_map(rng) for _ in range(args.maps)]
    print(
        f"# {args.maps} realistic 224 px maps (seed {args.seed}), one process; {cpu_description()}; "
        f"OpenCV {cv2.__version__}, numpy {np.__version__}"
    )

    evaluator = boxeval.BoxEvaluator(0.001, component_tree=False)  # the tracing path, as recorded
    pairs = [(m.astype(np.float32), np.asarray(b, dtype=np.int64)) for m, b in maps]
    profile = cProfile.Profile()
    start = time.process_time()
    for hit_v1, hit_v2 in profile.runcall(lambda: [evaluator._hits(m, b) for m, b in pairs]):
        evaluator._add(hit_v1, hit_v2)
    per_image = (time.process_time() - start) / len(pairs) * 1000
    stats = pstats.Stats(profile).get_stats_profile()
    contours = sum(v.tottime for k, v in stats.func_profiles.items() if "findContours" in k) / len(pairs) * 1000
    print(
        f"tracing path (component_tree=False) per image: {per_image:.1f} ms CPU (under cProfile); "
        f"findContours {contours:.1f} ms ({contours / per_image:.0%})"
    )

    counts = {"levels": 0, "traced": 0, "reach": 0, "below_first": 0, "disagree": 0}
    pixels = {"traced": 0, "failing": 0, "stack": 0, "own": 0}
    totals: dict[str, float] = {}
    for scoremap, boxes in pairs:
        img = quantize_scoremap(scoremap)
        gt = np.asarray(boxes)
        lows = np.flatnonzero(np.bincount(img.ravel(), minlength=256))
        windows = boxeval._level_windows(img, lows)
        traced = boxeval._iou_bound(windows, gt, *img.shape) >= FLOOR
        counts["levels"] += len(lows)
        if not traced.any():
            continue
        lows, windows = lows[traced], windows[traced]
        found = boxeval._contours_of_levels(img, lows, windows[0])
        box_iou = broadcast_iou(found.boxes[:, None, :], gt[None]).max(axis=1)
        best = np.maximum.reduceat(box_iou, found.starts)
        # the binary images the component tree path still traces: their contours disagree about IoU 50 (V1)
        counts["disagree"] += int(
            (best >= V1 / 100).sum() - np.minimum.reduceat(box_iou >= V1 / 100, found.starts).sum()
        )
        area = (windows[:, 2] - windows[:, 0] + 1) * (windows[:, 3] - windows[:, 1] + 1)
        fail = best < FLOOR
        reach = np.flatnonzero(~fail)
        counts["traced"] += len(lows)
        counts["reach"] += len(reach)
        counts["below_first"] += int((np.flatnonzero(fail) < (reach[0] if len(reach) else len(lows))).sum())
        pixels["traced"] += int(area.sum())
        pixels["failing"] += int(area[fail].sum())

        stack = _timed(totals, "build stack", _stack, img, lows, windows[0])
        pixels["stack"] += stack.size
        _timed(totals, "findContours real", _trace, stack)
        _timed(totals, "findContours zeros", _trace, np.zeros_like(stack))
        _timed(totals, "findContours ones", _trace, np.ones_like(stack))
        own = _timed(totals, "build own windows", _own_windows, img, lows, windows)
        pixels["own"] += own.size
        _timed(totals, "findContours own", _trace, own)
        _timed(totals, "connectedComponentsWithStats", cv2.connectedComponentsWithStats, stack, None, 8)

    n = len(pairs)
    print(
        f"binary images per map: {counts['levels'] / n:.1f} distinct, {counts['traced'] / n:.1f} traced, "
        f"{counts['reach'] / n:.1f} reach IoU {FLOOR}; {counts['below_first'] / n:.1f} traced ones lie below the "
        f"first that does; {pixels['failing'] / pixels['traced']:.0%} of the traced pixels do not reach IoU {FLOOR}; "
        f"{counts['disagree'] / n:.1f} ({counts['disagree'] / counts['traced']:.0%} of the traced) have contours that "
        f"disagree about IoU {V1}"
    )
    print(
        f"stack {pixels['stack'] / n / 1e6:.2f} Mpx per map; each image in its own window {pixels['own'] / n / 1e6:.2f}"
    )
    for name, seconds in totals.items():
        print(f"{name}: {seconds / n * 1000:.2f} ms per map")
    profile_tree_path(pairs, evaluator)


def profile_tree_path(pairs: list[tuple[np.ndarray, np.ndarray]], traced: boxeval.BoxEvaluator) -> None:
    """Item 5 of the module docstring; ``traced``: the tracing path's evaluator, already fed ``pairs``' counts."""
    tree = boxeval.BoxEvaluator(0.001, component_tree=True)
    profile = cProfile.Profile()
    start = time.process_time()
    hits = profile.runcall(lambda: [tree._hits(m, b) for m, b in pairs])
    per_image = (time.process_time() - start) / len(pairs) * 1000
    stats = pstats.Stats(profile).get_stats_profile().func_profiles
    parts = {
        "component tree": sum(v.tottime for k, v in stats.items() if "level_contour_boxes" in k),
        "findContours": sum(v.tottime for k, v in stats.items() if "findContours" in k),
    }
    traced_levels = sum(int(v.ncalls.split("/")[0]) for k, v in stats.items() if k == "_contours_of_levels")
    for hit_v1, hit_v2 in hits:
        tree._add(hit_v1, hit_v2)
    same = np.array_equal(tree.correct_v1, traced.correct_v1) and np.array_equal(tree.correct_v2, traced.correct_v2)
    print(
        f"component tree path per image: {per_image:.1f} ms CPU (under cProfile; "
        + ", ".join(f"{name} {seconds / len(pairs) * 1000:.1f} ms" for name, seconds in parts.items())
        + f"); maps with a binary image traced for V1: {traced_levels} of {len(pairs)}; counts equal to tracing: {same}"
    )


if __name__ == "__main__":
    main()
