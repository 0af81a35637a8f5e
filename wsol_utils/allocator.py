"""glibc's allocator for training on the CPU: reuse freed memory instead of mapping fresh pages every step.

glibc serves allocations above its mmap threshold (128 KiB at start, adapting up to 32 MiB) with fresh memory
maps and unmaps them when freed, so a training step whose activations exceed 32 MiB (the small CNN at full
resolution, 64 x 64 x 32 floats per image: 33 MB per batch of 64) page-faults and zeroes them anew every time.
With the threshold at :data:`MMAP_THRESHOLD` they come from the heap and are reused: the same numbers. Measured
(``benchmarks/results/train_malloc.md``): about 3x faster at 64 x 64 features *before* the engine's CPU
micro-batches and in-place ReLUs; with them no activation exceeds glibc's adaptive threshold and this setting
gains nothing (0.78-1.18x, noise), so it is redundant and due for removal.

It is a process-wide setting: :func:`wsol_utils.engine.train_many` applies it in its own worker processes and
``python -m wsol_utils reproduce`` sets :data:`MMAP_ENV` for the notebook kernels it starts; nothing changes a
user's own process. The cost is that freed memory stays with the process until it exits.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

__all__ = ["MMAP_ENV", "MMAP_THRESHOLD", "reuse_freed_memory"]

#: Allocations below this many bytes (1 GiB) come from the heap.
MMAP_THRESHOLD = 1 << 30
#: The environment variable that sets the same threshold for a process glibc starts (read once, at start-up).
MMAP_ENV = "MALLOC_MMAP_THRESHOLD_"
_M_MMAP_THRESHOLD = -3  # malloc.h


def reuse_freed_memory() -> bool:
    """Set this process's mmap threshold to :data:`MMAP_THRESHOLD` (``mallopt``); ``False`` without glibc."""
    name = ctypes.util.find_library("c") if sys.platform.startswith("linux") else None
    if name is None:
        return False
    try:
        return bool(ctypes.CDLL(name).mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD))
    except (OSError, AttributeError):  # a C library without mallopt (musl)
        return False
