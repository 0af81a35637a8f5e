"""Content keys: the SHA-256 of a value's canonical JSON, cut to a short hex prefix.

The one formula behind the suite's cache and run keys (:meth:`wsol_utils.engine.RunConfig.key`, the evaluation
cache's entry names in :mod:`wsol_utils.engine.evaluate`, the synthetic set's cache files): keys sorted, so equal
values give equal keys whatever their insertion order. Standard library only (the base layer).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

__all__ = ["canonical_digest", "canonical_json"]

#: ``json.dumps`` separators: ``compact`` (no spaces) or Python's default (``", "``, ``": "``).
COMPACT_SEPARATORS = (",", ":")
SPACED_SEPARATORS = (", ", ": ")


def canonical_json(value: Any, *, compact: bool = True, default: Callable[[Any], Any] | None = None) -> str:
    """``json.dumps(value, sort_keys=True)`` with compact separators (``compact=True``) or Python's default ones
    (the older keys were made with those; their bytes must not change). ``default`` turns a value JSON cannot
    write into one it can (e.g. ``str``); ``None``: a TypeError for such a value."""
    separators = COMPACT_SEPARATORS if compact else SPACED_SEPARATORS
    return json.dumps(value, sort_keys=True, separators=separators, default=default)


def canonical_digest(
    value: Any, length: int, *, compact: bool = True, default: Callable[[Any], Any] | None = None
) -> str:
    """The first ``length`` (1..64) hex digits of the SHA-256 of :func:`canonical_json` ``(value)`` (UTF-8)."""
    if isinstance(length, bool) or not isinstance(length, int) or not 1 <= length <= 64:
        raise ValueError(f"canonical_digest: length must be an integer in [1, 64] (hex digits); got {length!r}")
    text = canonical_json(value, compact=compact, default=default)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]
