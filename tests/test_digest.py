"""The canonical-JSON key (wsol_utils.base.digest): byte-identical to the formulas each cache used before it was
written once (expected digests computed with them and written here by hand)."""

from __future__ import annotations

from pathlib import Path

import pytest

from wsol_utils.base.digest import canonical_digest, canonical_json
from wsol_utils.data.synthetic import SyntheticConfig
from wsol_utils.engine import RunConfig

VALUE = {"b": [1, 2.5, None], "a": {"z": True, "y": "é"}}


def test_the_three_formulas_give_the_old_keys() -> None:
    # run keys: json.dumps(v, sort_keys=True, separators=(",", ":")), 10 hex digits
    assert canonical_digest(VALUE, 10) == "cb4f99357f"
    # evaluation cache: json.dumps(v, sort_keys=True, default=str), 12 hex digits
    assert canonical_digest({**VALUE, "p": Path("/x")}, 12, compact=False, default=str) == "0642ec8edda2"
    # synthetic cache: json.dumps(v, sort_keys=True), 20 hex digits
    assert canonical_digest(VALUE, 20, compact=False) == "e286d03e74bd1c36b27d"


def test_run_and_synthetic_keys_are_unchanged() -> None:
    assert RunConfig(kernels="torch").key() == "ecad20475b"
    assert RunConfig(method="acol", delta=0.7, seed=3, kernels="torch").key() == "6c41c7148a"
    assert SyntheticConfig().key("train") == "c0a79e01c8dfdc0f3cd7"
    assert SyntheticConfig(num_train=8).key("test") == "4880880501ce00ed5708"


def test_canonical_json_sorts_keys_at_every_depth_and_refuses_what_it_cannot_write() -> None:
    assert canonical_json({"b": 1, "a": {"d": 2, "c": 3}}) == '{"a":{"c":3,"d":2},"b":1}'
    assert canonical_json({"b": 1, "a": 2}, compact=False) == '{"a": 2, "b": 1}'
    assert canonical_digest({"a": 1, "b": 2}, 64) == canonical_digest({"b": 2, "a": 1}, 64)
    with pytest.raises(TypeError):
        canonical_json({"p": Path("/x")})
    for length in (0, 65, True, 2.0):
        with pytest.raises(ValueError, match="length"):
            canonical_digest(VALUE, length)  # type: ignore[arg-type]
