"""A small typed registry: names -> entries, in registration order (the shape of timm's model registry).

The suite's three registries (map methods in :mod:`wsol_utils.nets.methods`, backbones in
:mod:`wsol_utils.nets.backbones`,
data sets in :mod:`wsol_utils.data`) are each one :class:`Registry`; their modules keep their own decorators and
public functions and only say what their entries are and how their errors read. Standard library only.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Generic, TypeVar

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Generic[T]):
    """Named entries of one kind, in registration order.

    ``kind`` names an entry in the default messages (``"method"``). ``unknown`` and ``duplicate`` are
    ``str.format`` templates of the two errors, with the fields ``kind``, ``name`` (the name asked for; ``{name!r}``
    quotes it), ``names`` (the registered names as a list) and ``joined`` (them joined by ``", "``).
    """

    def __init__(
        self,
        kind: str,
        *,
        unknown: str = "unknown {kind} {name!r}; valid {kind}s: {names}",
        duplicate: str = "{kind} {name!r} is already registered",
    ) -> None:
        self.kind = kind
        self._unknown, self._duplicate = unknown, duplicate
        self._entries: dict[str, T] = {}

    def _message(self, template: str, name: object) -> str:
        names = list(self._entries)
        return template.format(kind=self.kind, name=name, names=names, joined=", ".join(names))

    def add(self, name: str, entry: T) -> T:
        """Register ``entry`` under ``name`` and return it; a ValueError (the ``duplicate`` message) when the name
        is taken."""
        if name in self._entries:
            raise ValueError(self._message(self._duplicate, name))
        self._entries[name] = entry
        return entry

    def get(self, name: str) -> T:
        """The entry ``name``; a ValueError (the ``unknown`` message, listing the valid names) otherwise, also for
        a name that is not even hashable."""
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise ValueError(self._message(self._unknown, name)) from None

    def remove(self, name: str) -> None:
        """Unregister ``name`` (tests that add a toy entry); a ValueError for an unknown name."""
        self.get(name)
        del self._entries[name]

    def names(self) -> tuple[str, ...]:
        """The registered names, in registration order."""
        return tuple(self._entries)

    def copy(self) -> Registry[T]:
        """A registry with the same messages and entries (changing one leaves the other alone)."""
        other: Registry[T] = Registry(self.kind, unknown=self._unknown, duplicate=self._duplicate)
        other._entries = dict(self._entries)
        return other

    def __contains__(self, name: object) -> bool:
        try:
            return name in self._entries
        except TypeError:  # an unhashable name is not registered
            return False

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)
