"""wsol_utils.base.atomic: writes land whole or not at all."""

from __future__ import annotations

import os
import stat

import pytest

from wsol_utils.base.atomic import write_atomic, write_bytes_atomic, write_text_atomic


def test_writes_create_the_folder_and_return_the_path(tmp_path) -> None:
    target = tmp_path / "new" / "deeper" / "a.txt"
    assert write_text_atomic(target, "héllo\n") == target
    assert target.read_bytes() == "héllo\n".encode()
    assert write_bytes_atomic(target, b"\x00\x01") == target and target.read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in target.parent.iterdir()) == ["a.txt"]  # no temporary file left


def test_a_failing_writer_keeps_the_old_file_and_leaves_no_temporary(tmp_path) -> None:
    target = tmp_path / "a.bin"
    target.write_bytes(b"old")

    def half_then_fail(tmp) -> None:
        tmp.write_bytes(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_atomic(target, half_then_fail)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.bin"]


@pytest.fixture()
def umask():
    """Set the process umask for a test (``umask(0o022)``); the old one comes back afterwards."""
    old = os.umask(0o022)
    os.umask(old)
    yield os.umask
    os.umask(old)


@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_a_new_file_honours_the_umask_as_open_would(tmp_path, umask, mask: int, mode: int) -> None:
    umask(mask)
    written = write_text_atomic(tmp_path / "a.txt", "x")
    with open(tmp_path / "b.txt", "w") as plain:  # what open() gives, for comparison
        plain.write("x")
    assert stat.S_IMODE(written.stat().st_mode) == mode == stat.S_IMODE((tmp_path / "b.txt").stat().st_mode)
    assert stat.S_IMODE(write_bytes_atomic(tmp_path / "c.bin", b"x").stat().st_mode) == mode


def test_replacing_a_file_keeps_its_mode(tmp_path, umask) -> None:
    umask(0o022)
    target = tmp_path / "a.txt"
    target.write_text("old")
    target.chmod(0o640)
    write_text_atomic(target, "new")
    assert target.read_text() == "new" and stat.S_IMODE(target.stat().st_mode) == 0o640


def test_the_umask_is_read_without_changing_it(umask) -> None:
    from wsol_utils.base.atomic import _umask

    umask(0o027)
    assert _umask() == 0o027
    assert os.umask(0o027) == 0o027  # still set
