"""wsol_utils.atomic: writes land whole or not at all."""

from __future__ import annotations

import pytest

from wsol_utils.atomic import write_atomic, write_bytes_atomic, write_text_atomic


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
