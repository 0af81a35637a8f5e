"""The generic registry (wsol_utils.base.registry): order, the two errors and their messages, removal and copies."""

from __future__ import annotations

import pytest

from wsol_utils.base.registry import Registry


def test_entries_keep_registration_order_and_are_returned_by_name() -> None:
    registry: Registry[int] = Registry("thing")
    assert registry.add("b", 2) == 2 and registry.add("a", 1) == 1
    assert registry.names() == ("b", "a") and list(registry) == ["b", "a"] and len(registry) == 2
    assert registry.get("a") == 1 and "a" in registry and "c" not in registry and [] not in registry


def test_the_default_messages_name_the_kind_and_list_the_valid_names() -> None:
    registry: Registry[int] = Registry("thing")
    registry.add("b", 2)
    registry.add("a", 1)
    with pytest.raises(ValueError, match=r"^thing 'a' is already registered$"):
        registry.add("a", 3)
    assert registry.get("a") == 1  # the first registration stays
    with pytest.raises(ValueError, match=r"^unknown thing 'c'; valid things: \['b', 'a'\]$"):
        registry.get("c")
    with pytest.raises(ValueError, match=r"^unknown thing \[\]"):  # not even hashable: the same error
        registry.get([])  # type: ignore[arg-type]


def test_custom_messages_get_the_name_the_list_and_the_joined_names() -> None:
    registry: Registry[str] = Registry("set", unknown="no {kind} {name!r}; one of {joined}", duplicate="dup {name}")
    registry.add("x", "1")
    registry.add("y", "2")
    with pytest.raises(ValueError, match=r"^no set 'z'; one of x, y$"):
        registry.get("z")
    with pytest.raises(ValueError, match=r"^dup x$"):
        registry.add("x", "3")


def test_remove_and_copy_are_independent() -> None:
    registry: Registry[int] = Registry("thing")
    registry.add("a", 1)
    copy = registry.copy()
    copy.add("b", 2)
    registry.remove("a")
    assert registry.names() == () and copy.names() == ("a", "b")
    with pytest.raises(ValueError, match="unknown thing 'a'; valid things: \\[\\]"):
        registry.remove("a")
    with pytest.raises(ValueError, match="already registered"):
        copy.add("b", 3)  # the copy keeps the messages
