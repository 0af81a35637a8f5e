"""Every registered method, backbone and data set, tested without a list to edit; and the three "one place"
extensions: a fourth method, a new metric column and a new data set are each registered once, here, and flow
through the suite (config validation, model, data loading, the localization table)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from wsol_utils import data
from wsol_utils.data import get_dataset, list_datasets, register_dataset, unregister_dataset
from wsol_utils.engine import RunConfig
from wsol_utils.nets.backbones import backbone_defaults, list_backbones
from wsol_utils.nets.methods import MethodOptions, get_method, list_methods, register_method, unregister_method
from wsol_utils.nets.models import create_model
from wsol_utils.scoring.pipeline import classification_logits
from wsol_utils.studies import tables

NUM_CLASSES = 3
SMALL_SYNTHETIC = {"num_train": 4, "num_val": 4, "num_test": 4}


@pytest.mark.parametrize("method", list_methods())
def test_every_registered_method_builds_a_model_whose_logits_have_the_class_count(method):
    model = create_model(method, num_classes=NUM_CLASSES).eval()
    with torch.no_grad():
        logits = classification_logits(model(torch.zeros(2, 3, 32, 32), torch.tensor([0, 1])))
    assert logits.shape == (2, NUM_CLASSES)
    assert get_method(method).label and get_method(method).two_branch == (get_method(method).default_fusion is not None)
    assert RunConfig(method=method).method == method  # the config accepts it


@pytest.mark.parametrize("backbone", list_backbones())
def test_every_registered_backbone_builds_a_cam_and_is_accepted_by_the_config(backbone):
    model = create_model("cam", num_classes=NUM_CLASSES, backbone=backbone, pretrained=False).eval()
    with torch.no_grad():
        logits = classification_logits(model(torch.zeros(1, 3, 64, 64), torch.tensor([0])))
    assert logits.shape == (1, NUM_CLASSES)
    assert {"head_width", "head_kernel", "channels_last"} <= set(backbone_defaults(backbone))
    assert RunConfig(backbone=backbone, allow_random_init=True).backbone == backbone


@pytest.mark.parametrize("name", list_datasets())
def test_every_registered_data_set_is_a_source_with_a_loader_and_a_root_rule(name, tmp_path):
    source = get_dataset(name)
    assert source.name == name and callable(source.loader)
    assert source.default_transform(train=True) == ("train" if source.image_files else None)
    if source.image_files:  # needs its folder: no root is a ValueError, a missing one a FileNotFoundError
        with pytest.raises(ValueError, match="needs root="):
            data.load(name, split="test")
        with pytest.raises(ValueError, match="data_root is required"):
            RunConfig(dataset=name)
        with pytest.raises(FileNotFoundError, match="does not exist"):
            RunConfig(dataset=name, data_root=str(tmp_path / "absent"))
    else:  # generated: root is a cache folder, not part of the run's key
        keys = {RunConfig(dataset=name, data_root=str(tmp_path / d)).key() for d in ("a", "b")}
        assert len(keys) == 1


def test_an_unknown_data_set_is_refused_naming_the_registered_ones():
    with pytest.raises(ValueError, match="unknown data set 'nope'; choose one of synthetic, cub, wsoleval"):
        data.load("nope")
    with pytest.raises(ValueError, match="dataset"):
        RunConfig(dataset="nope")


# -- one place each ---------------------------------------------------------------------------------------------
TOY_METHOD, TOY_DATASET = "toy4", "toyset"


@pytest.fixture
def fourth_method() -> Iterator[str]:
    """A fourth method in one place: its registration (branch B sees the features halved everywhere)."""

    def halve(features: torch.Tensor, chosen_map: torch.Tensor, options: MethodOptions) -> torch.Tensor:
        return torch.full_like(chosen_map[:, None], 0.5)

    register_method(TOY_METHOD, label="Toy4", default_fusion="max")(halve)
    yield TOY_METHOD
    unregister_method(TOY_METHOD)


def test_a_fourth_method_is_one_registration(fourth_method):
    """It is listed, builds, is a valid config, and gets a row of the localization table (its label; NaN paper
    columns, since the papers did not report it) next to a paper method."""
    assert fourth_method in list_methods()
    assert RunConfig(method=fourth_method).fusion == "max"
    summary = {"loc_err_top1": 40.0, "maxboxacc": 55.0}
    table = tables.localization_table({"cam": summary, fourth_method: summary})
    row = table.set_index("method").loc["Toy4"]
    assert row["loc err top-1"] == 40.0 and row["MaxBoxAcc"] == 55.0
    assert row.filter(like="paper").isna().all()
    assert not table.set_index("method").loc[get_method("cam").label].filter(like="paper").isna().all()


def test_a_new_metric_column_is_one_entry(monkeypatch):
    """A summary key added to :data:`wsol_utils.studies.tables.EXTRA_COLUMNS` becomes a column of every row."""
    monkeypatch.setitem(tables.EXTRA_COLUMNS, "toy_metric", "toy metric")
    table = tables.localization_table({"cam": {"toy_metric": 12.5}, "acol": {}})
    assert table["toy metric"].tolist()[0] == 12.5
    assert table["toy metric"].isna().tolist() == [False, True]


@pytest.fixture
def new_dataset() -> Iterator[list[dict[str, Any]]]:
    """A new data set in one place: its registered loader (here the synthetic set under another name, recording
    its calls)."""
    calls: list[dict[str, Any]] = []

    @register_dataset(TOY_DATASET, image_files=False)
    def load_toy(root: str | Path | None, split: str, transform: Any, image_size: int | None, **kwargs: Any) -> Any:
        calls.append({"root": root, "split": split, "transform": transform, "image_size": image_size})
        return get_dataset("synthetic").loader(root, split, transform, image_size, **kwargs)

    yield calls
    unregister_dataset(TOY_DATASET)


def test_a_new_data_set_is_one_registered_loader(new_dataset, tmp_path):
    """Registered once, it is a valid config and a run loads its splits through the loader."""
    assert TOY_DATASET in list_datasets()
    config = RunConfig(
        dataset=TOY_DATASET, data_root=str(tmp_path), image_size=32, dataset_kwargs=SMALL_SYNTHETIC, device="cpu"
    )
    test_set = config.dataset_for("test")
    assert len(test_set) == SMALL_SYNTHETIC["num_test"]
    assert new_dataset == [{"root": str(tmp_path), "split": "test", "transform": None, "image_size": 32}]
    with pytest.raises(ValueError, match="already registered"):
        register_dataset(TOY_DATASET, image_files=False)(get_dataset("synthetic").loader)
