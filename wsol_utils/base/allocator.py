"""glibc's allocator for training on the CPU: keep freed memory for reuse instead of mapping fresh pages every step.

glibc serves allocations above its mmap threshold (128 KiB at start, adapting up to 32 MiB) with fresh memory
maps, and it returns the free top of its heap to the system whenever that exceeds its trim threshold. A training
step frees its activations at the end and allocates them again in the next step, so with the defaults most of
them arrive as fresh pages that the kernel page-faults and zeroes anew: the engine's small CNNs then spend about
as much time in page faults as in arithmetic. :func:`reuse_freed_memory` raises both thresholds
(:data:`MMAP_THRESHOLD`, :data:`TRIM_THRESHOLD`), so activations come from the heap and freed memory stays there
for the next step. The arithmetic, hence every number, is the same. Measured in
``benchmarks/results/train_malloc.md`` (one engine training epoch per receptive field, fresh processes). Raising
the mmap threshold alone is not enough: setting it switches off glibc's adaptive trim threshold, which then stays
at 128 KiB.

It is a process-wide setting: :func:`wsol_utils.engine.train_many` applies it in its own worker processes and
``python -m wsol_utils reproduce`` sets :data:`ENV` for the notebook kernels it starts; nothing changes a user's
own process. The cost is that freed memory stays with the process until it exits.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

__all__ = ["ENV", "MMAP_THRESHOLD", "TRIM_THRESHOLD", "reuse_freed_memory"]

#: Allocations below this many bytes (1 GiB) come from the heap.
MMAP_THRESHOLD = 1 << 30
#: The heap keeps up to this many free bytes (1 GiB) at its top instead of returning them to the system.
TRIM_THRESHOLD = 1 << 30
#: The environment variables that give a process glibc starts the same settings (read once, at start-up).
ENV: dict[str, str] = {"MALLOC_MMAP_THRESHOLD_": str(MMAP_THRESHOLD), "MALLOC_TRIM_THRESHOLD_": str(TRIM_THRESHOLD)}
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # malloc.h


def reuse_freed_memory() -> bool:
    """Set this process's mmap and trim thresholds (``mallopt``); ``False`` without glibc."""
    name = ctypes.util.find_library("c") if sys.platform.startswith("linux") else None
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
            libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
        )
    except (OSError, AttributeError):  # a C library without mallopt (musl)
        return False
