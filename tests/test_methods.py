"""Tests for wsol_utils.nets.methods: the registry of map methods, the papers' three methods' branch-B inputs
(hand-computed), and a toy fourth method registered here that trains, evaluates and shows in the explorer
without any other module knowing its name."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch import Tensor

from wsol_utils.engine import RunConfig, evaluate, train
from wsol_utils.nets.erasing import normalized_attention
from wsol_utils.nets.methods import (
    MethodOptions,
    get_method,
    list_methods,
    register_method,
    unregister_method,
)
from wsol_utils.nets.models import create_model
from wsol_utils.ui.widgets import Explorer, Knobs, stats_html

TOY = "toy_half"


def test_the_papers_methods_are_registered_in_order():
    assert list_methods()[:3] == ("cam", "acol", "hclnet")
    cam, acol, hclnet = (get_method(name) for name in ("cam", "acol", "hclnet"))
    assert (cam.two_branch, cam.branches, cam.main_branch, cam.default_fusion) == (False, ("a",), "a", None)
    assert (acol.branches, acol.main_branch, acol.default_fusion, hclnet.default_fusion) == (
        ("a", "b", "fused"),
        "fused",
        "max",
        "add",
    )
    assert acol.uses("delta") and not hclnet.uses("delta") and hclnet.uses("detach_complement")
    assert acol.describe_b_input(MethodOptions(delta=0.55)) == "M_A < 0.55"


def test_branch_b_weights_hand_computed():
    maps = torch.tensor([[[0.0, 4.0], [2.0, 1.0]]])  # normalized: [[0, 1], [0.5, 0.25]]
    features = torch.ones(1, 3, 2, 2)
    acol = get_method("acol").branch_b_weights(features, maps, MethodOptions(delta=0.5))[:, 0]
    hcl = get_method("hclnet").branch_b_weights(features, maps, MethodOptions(delta=0.5))[:, 0]
    assert acol.tolist() == [[[1.0, 0.0], [0.0, 1.0]]]  # 0.5 >= delta is erased
    assert hcl.tolist() == [[[1.0, 0.0], [0.5, 0.75]]]
    with pytest.raises(ValueError, match="no branch B"):
        get_method("cam").branch_b_weights(features, maps, MethodOptions(delta=0.5))


def test_unknown_and_duplicate_names_are_clear_errors():
    with pytest.raises(ValueError, match=r"unknown method 'nope'; valid methods: \['cam', 'acol', 'hclnet'"):
        get_method("nope")
    with pytest.raises(ValueError, match="already registered"):
        register_method("cam", label="again", default_fusion=None)(None)
    with pytest.raises(ValueError, match="unknown option"):
        register_method("x", label="x", default_fusion="max", options=("tau",))
    with pytest.raises(ValueError, match="needs a default fusion"):
        register_method("x", label="x", default_fusion=None)(lambda f, m, o: f)
    assert "x" not in list_methods()


# -- a toy fourth method: branch B sees the features at half strength where M_A >= 0.5 --------------------------


def half_erasing(features: Tensor, chosen_map: Tensor, options: MethodOptions) -> Tensor:
    """``0.5`` where ``M_A >= 0.5``, else ``1``: ``(B, 1, h, w)``."""
    return 1.0 - 0.5 * (normalized_attention(features, chosen_map).detach() >= 0.5).to(features.dtype)


@pytest.fixture(scope="module")
def toy_method() -> Iterator[str]:
    register_method(
        TOY, label="Toy", default_fusion="add", paper="tests/test_methods.py", b_input_text="half where M_A >= 0.5"
    )(half_erasing)
    yield TOY
    unregister_method(TOY)


@pytest.fixture(scope="module")
def toy_run(toy_method: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("toy")
    config = RunConfig(
        method=toy_method,
        epochs=1,
        batch_size=16,
        image_size=32,
        device="cpu",
        val_split=None,
        data_root=str(root / "data"),
        dataset_kwargs={"num_train": 16, "num_val": 8, "num_test": 8},
    )
    return train(config, runs_dir=root / "runs", progress=False)


def test_toy_method_model_erases_as_registered(toy_method: str):
    model = create_model(toy_method, num_classes=3).eval()
    images, labels = torch.randn(2, 3, 32, 32), torch.tensor([0, 2])
    out = model(images, labels)
    chosen = out.maps_a[torch.arange(2), labels]
    expected = out.features * half_erasing(out.features, chosen, model.options)
    assert out.maps_b is not None and out.erased is not None
    assert torch.equal(out.erased, expected)
    assert RunConfig(method=toy_method).fusion == "add"  # the registered default fusion


def test_toy_method_trains_evaluates_and_explores(toy_run: Path):
    result = evaluate(toy_run, wsoleval="main", progress=False, device="cpu")
    assert result.summary["method"] == TOY and result.summary["fusion"] == "add"
    assert set(result.summary["branches"]) == {"a", "b", "fused"}
    assert result.summary["maxboxacc"] == result.summary["branches"]["fused"]["maxboxacc"]
    explorer = Explorer(toy_run, sample_size=8)
    assert explorer.branches == ("a", "b", "fused")
    view = explorer.view(Knobs(image_index=3))
    assert view.b_input is not None and set(view.b_input.ravel().tolist()) <= {0.5, 1.0}
    # the explorer's numbers are the engine's (one pipeline)
    assert view.accuracy["fused"] == pytest.approx(result.summary["branches"]["fused"]["gt_known_loc_acc"])
    assert "fusion add" in stats_html(view) and "delta 0.60 ·" not in stats_html(view)  # no delta knob
