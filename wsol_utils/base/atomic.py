"""Atomic file writes: results are never left half-written (a crash keeps the old file or none).

Permissions are those ``open(path, "w")`` would give: a new file gets ``0o666`` less the process umask (not
``mkstemp``'s ``0o600``), a file that is replaced keeps its permission bits.

Standard library only, so that light modules (the wsoleval metadata reader that the evaluator's worker
processes import, the data generators) can use it without importing torch.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def write_atomic(path: str | os.PathLike[str], write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` (its return value is ignored) on a temporary file beside ``path``, then move it over
    ``path`` in one step.

    The folder is created when missing; on any error the temporary file is removed and ``path`` keeps its old
    content. The file gets the mode ``open()`` would give it (:func:`_target_mode`). Returns ``path`` as a
    :class:`~pathlib.Path`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        os.chmod(tmp, _target_mode(path))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _umask() -> int:
    """The process umask, read without changing it where possible: Linux's ``/proc/self/status`` ``Umask:`` line;
    elsewhere ``os.umask`` set and restored at once (a thread creating a file in that instant could see 0o077)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


def _target_mode(path: Path) -> int:
    """The permission bits ``open(path, "w")`` would leave: an existing file's own, else ``0o666 & ~umask``."""
    try:
        return path.stat().st_mode & 0o777
    except FileNotFoundError:
        return 0o666 & ~_umask()


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Atomically write ``text`` (UTF-8) to ``path``; returns ``path``."""
    return write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> Path:
    """Atomically write ``data`` to ``path``; returns ``path``."""
    return write_atomic(path, lambda tmp: tmp.write_bytes(data))


def file_sha256(path: str | os.PathLike[str], block_size: int = 1 << 20) -> str:
    """The sha256 hex digest of the bytes of ``path``, read in blocks of ``block_size`` bytes.

    The one digest of a file that the suite records and checks (a finished run's checkpoint in ``done.json``,
    the checkpoint a derived cache was computed from).
    """
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(block_size):
            digest.update(block)
    return digest.hexdigest()
