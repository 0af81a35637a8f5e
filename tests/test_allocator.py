"""wsol_utils.base.allocator: glibc's mmap and trim thresholds are set where there is a glibc, refused cleanly
elsewhere."""

from __future__ import annotations

import os
import sys

import pytest

from wsol_utils.base import allocator


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_reuse_freed_memory_sets_the_threshold_with_glibc() -> None:
    assert allocator.reuse_freed_memory() is True


def test_without_a_c_library_nothing_is_set(monkeypatch) -> None:
    monkeypatch.setattr(allocator.ctypes.util, "find_library", lambda name: None)
    assert allocator.reuse_freed_memory() is False


def test_the_environment_names_both_thresholds() -> None:
    assert allocator.ENV == {
        "MALLOC_MMAP_THRESHOLD_": str(allocator.MMAP_THRESHOLD),
        "MALLOC_TRIM_THRESHOLD_": str(allocator.TRIM_THRESHOLD),
    }
    assert allocator.MMAP_THRESHOLD < 2**31 and allocator.TRIM_THRESHOLD < 2**31  # mallopt takes a C int


def test_reproduce_passes_the_thresholds_to_its_kernels(monkeypatch, tmp_path) -> None:
    from wsol_utils.ui import reproduce

    for name in allocator.ENV:
        monkeypatch.setenv(name, "0")  # recorded, so that teardown restores the environment
        monkeypatch.delenv(name)
    monkeypatch.setattr(reproduce, "select_notebooks", lambda only: (_ for _ in ()).throw(ValueError("stop here")))
    with pytest.raises(SystemExit):
        reproduce.main(["--only", "99"])
    assert {name: os.environ[name] for name in allocator.ENV} == allocator.ENV
