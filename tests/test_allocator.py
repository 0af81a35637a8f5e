"""wsol_utils.allocator: glibc's mmap threshold is set where there is a glibc, and refused cleanly elsewhere."""

from __future__ import annotations

import os
import sys

import pytest

from wsol_utils import allocator


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_reuse_freed_memory_sets_the_threshold_with_glibc() -> None:
    assert allocator.reuse_freed_memory() is True


def test_without_a_c_library_nothing_is_set(monkeypatch) -> None:
    monkeypatch.setattr(allocator.ctypes.util, "find_library", lambda name: None)
    assert allocator.reuse_freed_memory() is False


def test_reproduce_passes_the_threshold_to_its_kernels(monkeypatch, tmp_path) -> None:
    from wsol_utils import reproduce

    monkeypatch.setenv(allocator.MMAP_ENV, "0")  # recorded, so that teardown restores the environment
    monkeypatch.delenv(allocator.MMAP_ENV)
    monkeypatch.setattr(reproduce, "select_notebooks", lambda only: (_ for _ in ()).throw(ValueError("stop here")))
    with pytest.raises(SystemExit):
        reproduce.main(["--only", "99"])
    assert os.environ[allocator.MMAP_ENV] == str(allocator.MMAP_THRESHOLD)
