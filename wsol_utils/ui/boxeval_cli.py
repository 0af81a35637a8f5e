"""``python -m wsol_utils evaluate``: score saved maps in wsoleval's layout (MaxBoxAcc, MaxBoxAccV2, PxAP).

Prints exactly one JSON object on stdout (the result dict of :mod:`wsol_utils.scoring.boxeval`); the progress bar
and warnings go to stderr. Exit status 0 on success, 1 on bad input (with a message naming the file).
"""

from __future__ import annotations

import argparse
import json
import sys

DESCRIPTION = """\
Score any WSOL method's saved score maps the way wsoleval ("Evaluating WSOL Right", CVPR 2020) does, with
the same numbers, much faster (only the distinct uint8 cut-offs of each map are evaluated; images are spread
over worker processes).

Inputs:
  --metadata-dir   a wsoleval metadata folder: image_ids.txt, class_labels.txt (<id>,<label>),
                   image_sizes.txt (<id>,<w>,<h>), localization.txt (<id>,x0,y0,x1,y1 inclusive, one box a line)
  --scoremap-dir   <scoremap-dir>/<image_id>.npy for every image id: a 2-D float map in [0, 1]
                   (224x224 as wsoleval expects; GT boxes are rescaled from image_sizes.txt to each map's
                   size with int() truncation). A map holding NaN is scored as all zeros (wsoleval's
                   normalize_scoremap) with a warning; values outside [0, 1] are an error.
  --mask-dir       optional, for PxAP: <mask-dir>/<image_id>.png (pixels > 127 foreground) with an optional
                   <mask-dir>/<image_id>.ignore.png (pixels > 127 ignored), or <mask-dir>/<image_id>.npy
                   (uint8: 0 background, 1 foreground, 255 ignore); resized to the map size (nearest).

Output (one JSON object on stdout; accuracies in percent):
  maxboxacc, maxboxacc_threshold   MaxBoxAcc (V1): largest contour, IoU 50
  maxboxacc_v2, v2_per_iou         MaxBoxAccV2: all contours, mean over the --iou levels; per level its
                                   accuracy and best CAM threshold
  pxap                             pixel average precision (only with --mask-dir)
  num_images, interval, iou_levels
"""


def build_parser() -> argparse.ArgumentParser:
    """The ``evaluate`` command's argument parser."""
    parser = argparse.ArgumentParser(
        prog="python -m wsol_utils evaluate",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--metadata-dir", required=True, help="wsoleval metadata folder (see above)")
    parser.add_argument("--scoremap-dir", required=True, help="folder of <image_id>.npy score maps")
    parser.add_argument(
        "--interval",
        type=float,
        default=0.001,
        help="CAM threshold step: thresholds are np.arange(0, 1, interval) (default 0.001)",
    )
    parser.add_argument(
        "--iou",
        type=int,
        nargs="+",
        default=[30, 50, 70],
        metavar="PERCENT",
        help="IoU levels (percent) averaged by MaxBoxAccV2 (default 30 50 70)",
    )
    parser.add_argument("--mask-dir", default=None, help="masks for PxAP (see above); PxAP is skipped without")
    parser.add_argument(
        "--workers", type=int, default=None, help="worker processes (default: all cores; 1 = no worker processes)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    parser.add_argument("--indent", type=int, default=None, help="indent the JSON output (default: one line)")
    return parser


#: The module the evaluator's fork server imports before it forks the workers (``data.scoremaps`` sets the same preload
#: when it makes its pool; a server already running is reused as it is).
WORKER_PRELOAD = "wsol_utils.data.scoremaps"


def start_worker_server() -> None:
    """Start the fork server of :func:`wsol_utils.data.scoremaps.evaluate_scoremaps`'s workers now, in the background.

    The server is a fresh process that imports numpy and OpenCV (about 0.3 s) before it can fork a worker; started
    before this process imports them itself and reads the metadata, the two start-ups overlap instead of following
    each other. Linux only (elsewhere the workers are spawned, and nothing is started here).
    """
    if not sys.platform.startswith("linux"):
        return
    import multiprocessing
    import multiprocessing.forkserver

    multiprocessing.get_context("forkserver").set_forkserver_preload([WORKER_PRELOAD])
    multiprocessing.forkserver.ensure_running()


def main(argv: list[str] | None = None) -> int:
    """Run ``evaluate``; print the result JSON on stdout. Returns the exit status."""
    args = build_parser().parse_args(argv)
    if args.workers is None or args.workers > 1:
        start_worker_server()
    from wsol_utils.data.scoremaps import evaluate_scoremaps  # imported after parsing so that --help is fast

    try:
        result = evaluate_scoremaps(
            args.metadata_dir,
            args.scoremap_dir,
            interval=args.interval,
            iou_levels=args.iou,
            mask_dir=args.mask_dir,
            workers=args.workers,
            progress=not args.no_progress and sys.stderr.isatty(),  # tqdm's own rule: no bar where no terminal
        )
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=args.indent))
    return 0


if __name__ == "__main__":
    sys.exit(main())
