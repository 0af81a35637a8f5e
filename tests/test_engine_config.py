"""RunConfig validation, JSON round trip and the cache key (wsol_utils.engine.config)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from wsol_utils.engine.config import TEST_TIME_FIELDS, RunConfig, paper_config


def test_json_round_trip_preserves_every_field() -> None:
    config = RunConfig(
        method="hclnet",
        delta=0.7,
        fusion="l1",
        block_radius=2,
        dataset_kwargs={"num_train": 100},
        model_kwargs={"width": 8},
        seed=3,
    )
    again = RunConfig.from_json(config.to_json())
    assert again == config
    assert json.loads(config.to_json())["fusion"] == "l1"


def test_from_json_reads_a_file(tmp_path) -> None:
    path = tmp_path / "x.json"
    path.write_text(json.dumps({"method": "acol", "delta": 0.5}))
    config = RunConfig.from_json(path)
    assert (config.method, config.delta, config.fusion) == ("acol", 0.5, "max")


@pytest.mark.parametrize("method, fusion", [("cam", None), ("acol", "max"), ("hclnet", "add")])
def test_default_fusion_is_the_papers(method: str, fusion: str | None) -> None:
    assert RunConfig(method=method).fusion == fusion


def test_key_ignores_test_time_fields_only() -> None:
    base = RunConfig(method="hclnet")
    changes: dict[str, Any]  # the two loops change fields of different types
    for changes in (
        {"fusion": "l1"},
        {"block_radius": 3},
        {"fusion_weights": "softmax"},
        {"device": "cpu"},
        {"num_workers": 2},
        {"val_split": None},
    ):
        assert base.replace(**changes).key() == base.key(), changes
    for changes in (
        {"delta": 0.7},
        {"lr": 0.1},
        {"epochs": 2},
        {"seed": 1},
        {"detach_complement": False},
        {"dataset_kwargs": {"num_train": 10}},
        {"schedule": "cosine"},
    ):
        assert base.replace(**changes).key() != base.key(), changes
    assert set(base.training_fields()).isdisjoint(TEST_TIME_FIELDS)
    assert base.replace(data_root="/somewhere/cache").key() == base.key()  # synthetic: only a cache folder
    assert base.run_name() == f"hclnet-{base.key()}" and len(base.key()) == 10


def test_key_changes_with_the_model_revision(monkeypatch: pytest.MonkeyPatch) -> None:
    from wsol_utils.engine import config as config_module

    base = RunConfig(method="acol")
    before = base.key()
    monkeypatch.setattr(config_module, "MODEL_REVISION", config_module.MODEL_REVISION + 1)
    assert base.key() != before


def test_replace_method_resets_fusion_to_the_new_default() -> None:
    assert RunConfig(method="acol").replace(method="cam").fusion is None
    assert RunConfig(method="cam").replace(method="hclnet").fusion == "add"


@pytest.mark.parametrize(
    "changes, word",
    [
        ({"method": "grad-cam"}, "method"),
        ({"method": "acol", "fusion": "mean"}, "fusion"),
        ({"method": "cam", "fusion": "max"}, "fusion"),
        ({"delta": 0.0}, "delta"),
        ({"delta": 1.0}, "delta"),
        ({"delta": 1.5}, "delta"),
        ({"delta": -0.1}, "delta"),
        ({"epochs": 0}, "epochs"),
        ({"batch_size": 2.5}, "batch_size"),
        ({"lr": float("nan")}, "lr"),
        ({"lr": -1.0}, "lr"),
        ({"optimizer": "adam"}, "optimizer"),
        ({"schedule": "poly"}, "schedule"),
        ({"device": "tpu"}, "device"),
        ({"backbone": "resnet"}, "backbone"),
        ({"dataset": "coco"}, "dataset"),
        ({"dataset": "cub"}, "data_root"),
        ({"lr": True}, "lr"),
        ({"lr": float("inf")}, "lr"),
        ({"momentum": 1.0}, "momentum"),
        ({"momentum": -0.1}, "momentum"),
        ({"momentum": float("nan")}, "momentum"),
        ({"weight_decay": float("nan")}, "weight_decay"),
        ({"weight_decay": -1e-4}, "weight_decay"),
        ({"weight_decay": float("inf")}, "weight_decay"),
        ({"weight_decay": "5e-4"}, "weight_decay"),
        ({"seed": -1}, "seed"),
        ({"seed": 2**32}, "seed"),
        ({"seed": True}, "seed"),
        ({"seed": 1.5}, "seed"),
        ({"epochs": True}, "epochs"),
        ({"block_radius": True}, "block_radius"),
        ({"num_workers": -1}, "num_workers"),
        ({"detach_complement": "yes"}, "detach_complement"),
        ({"allow_random_init": 1}, "allow_random_init"),
        ({"dataset_kwargs": [1]}, "dataset_kwargs"),
        ({"model_kwargs": {"width": float}}, "model_kwargs"),
        ({"val_split": ""}, "val_split"),
        ({"device": 0}, "device"),
        ({"device": "cudax"}, "device"),
        ({"method": ["cam"]}, "method"),
    ],
)
def test_bad_values_raise_value_error_naming_the_field(changes: dict, word: str) -> None:
    with pytest.raises(ValueError, match=word):
        RunConfig(**changes)


def test_numbers_at_the_edges_of_their_ranges_are_valid() -> None:
    config = RunConfig(momentum=0.0, weight_decay=0, seed=2**32 - 1, lr=1e-8, block_radius=0)
    assert (config.momentum, config.weight_decay, config.seed) == (0.0, 0, 2**32 - 1)


def test_the_fix_names_the_flag() -> None:
    with pytest.raises(ValueError, match=r"RunConfig\.weight_decay=nan must be a finite number >= 0.*--weight-decay"):
        RunConfig(weight_decay=float("nan"))


def test_keys_of_existing_configs_are_unchanged() -> None:
    # computed by the code before validation was extended: the run directories already trained keep their names
    assert RunConfig(kernels="torch").key() == "ecad20475b"
    assert RunConfig(method="hclnet", seed=3, momentum=0.8, weight_decay=0.0, kernels="torch").key() == "5a1e73e77c"


def test_missing_data_root_raises_file_not_found(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="does-not-exist"):
        RunConfig(dataset="cub", data_root=str(tmp_path / "does-not-exist"))


def test_unknown_json_field_and_bad_json_raise() -> None:
    with pytest.raises(ValueError, match="learning_rate"):
        RunConfig.from_json('{"learning_rate": 0.1}')
    with pytest.raises(ValueError, match="not valid JSON"):
        RunConfig.from_json('{"method": ')


def test_paper_config_is_the_official_acol_setting(tmp_path) -> None:
    config = paper_config("acol", str(tmp_path))
    assert (config.lr, config.batch_size, config.epochs, config.delta, config.optimizer, config.layout) == (
        1e-4,
        20,
        60,
        0.6,
        "acol",
        "28x28",
    )
