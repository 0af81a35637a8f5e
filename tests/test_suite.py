"""Tests for wsol_utils.suite: notebook parameters -> run configs, smoke isolation, honest sentences."""

from __future__ import annotations

import math

import pytest

from wsol_utils import suite
from wsol_utils.suite import Suite


@pytest.fixture(autouse=True)
def no_smoke_from_the_environment(monkeypatch):
    """``make test`` also runs notebooks/conftest.py, which sets WSOL_SMOKE=1 for the nbval kernels."""
    monkeypatch.delenv(suite.SMOKE_ENV, raising=False)


@pytest.fixture()
def in_notebooks(tmp_path, monkeypatch):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return tmp_path


def test_smoke_figures_never_go_to_the_committed_folder(in_notebooks):
    smoke = Suite.from_parameters(smoke=True)
    full = Suite.from_parameters()
    assert smoke.figures_dir.resolve() == in_notebooks / "outputs" / "smoke" / "figures"
    assert full.figures_dir.resolve() == in_notebooks / "figures"
    assert smoke.figures_dir.is_dir() and full.figure_path("a.png").parent.is_dir()
    explicit = Suite.from_parameters(smoke=True, figures_dir=in_notebooks / "mine")
    assert explicit.figures_dir == in_notebooks / "mine"


@pytest.mark.parametrize("epochs", [0, -2, 1.5])
def test_bad_epochs_are_rejected(in_notebooks, epochs):
    with pytest.raises(ValueError, match="EPOCHS="):
        Suite.from_parameters(epochs=epochs)


def test_real_data_needs_a_root(in_notebooks):
    with pytest.raises(ValueError, match="DATA_ROOT"):
        Suite.from_parameters(dataset="cub")


def test_config_applies_smoke_then_epochs_then_changes(in_notebooks):
    pytest.importorskip("wsol_utils.engine")
    full = Suite.from_parameters(device="cpu").config("acol", delta=0.7)
    smoke = Suite.from_parameters(smoke=True).config("acol", delta=0.7)
    assert (full.method, full.delta, full.device) == ("acol", 0.7, "cpu")
    assert smoke.epochs == suite.SMOKE_EPOCHS and smoke.dataset_kwargs == suite.SMOKE_DATASET_KWARGS
    assert full.dataset_kwargs == {} and full.epochs > suite.SMOKE_EPOCHS
    assert smoke.key() != full.key()  # smoke runs never overwrite the full runs in the cache
    assert Suite.from_parameters(smoke=True, epochs=3).config("cam").epochs == 3
    assert Suite.from_parameters().config("cam", epochs=2).epochs == 2


def test_config_for_real_data_uses_the_paper_setting(in_notebooks):
    pytest.importorskip("wsol_utils.engine")
    config = Suite.from_parameters(dataset="cub", data_root=str(in_notebooks), smoke=True).config("acol")
    assert (config.backbone, config.image_size, config.epochs, config.dataset_kwargs) == ("vgg16", 224, 1, {})


def test_difference_noise_hand_computed():
    # p = 50% twice, n = 100: p~ = 51/102 = 0.5; 1.96 * sqrt(2 * 0.25 / 102) = 0.137227 -> 13.72 points.
    assert suite.difference_noise(50, 50, 100) == pytest.approx(13.7227, abs=1e-4)
    # 0% vs 100% on 10 images: p~ = 1/12 and 11/12; 1.96 * sqrt(2 * (11/144) / 12) = 0.221154.
    assert suite.difference_noise(0, 100, 10) == pytest.approx(22.1154, abs=1e-4)
    with pytest.raises(ValueError, match="n=0"):
        suite.difference_noise(50, 50, 0)


def test_compare_never_claims_an_effect_within_noise():
    text = suite.compare("ACoL", 55.0, "CAM", 50.0, metric="GT-known loc accuracy", n=100)
    assert text == ("ACoL's GT-known loc accuracy is 5.0 points above CAM's (55.0% vs 50.0%, 100 images; "
                    "95% noise level ±13.7 points): within sampling noise, so no difference is shown.")
    big = suite.compare("ACoL", 40.0, "CAM", 60.0, metric="loc err top-1", n=2000,
                        higher_is_better=False)
    assert big.startswith("ACoL's loc err top-1 is 20.0 points below CAM's")
    assert big.endswith("ACoL is better beyond sampling noise.")
    worse = suite.compare("B", 30.0, "A", 60.0, metric="accuracy", n=2000)
    assert worse.endswith("B is worse beyond sampling noise.")
    assert suite.compare("A", math.nan, "B", 1.0, metric="MaxBoxAccV2", n=5) == "MaxBoxAccV2: not available for A."


def test_environment_turns_smoke_on(in_notebooks, monkeypatch):
    monkeypatch.setenv("WSOL_SMOKE", "1")
    assert Suite.from_parameters(smoke=False).smoke is True
    monkeypatch.setenv("WSOL_SMOKE", "0")
    assert Suite.from_parameters(smoke=False).smoke is False


def test_equivalence_tolerance_and_check_line():
    import torch

    logits, maps = torch.tensor([[1.0, -2.0]]), torch.arange(8.0).reshape(1, 2, 2, 2)
    same = suite.equivalence(logits, maps, logits.clone(), maps + 1e-7)
    assert same.within_tolerance and same.max_logit_diff == 0.0
    assert same.check_line("net") == "net: max |Δlogits|, max |Δmaps| at float tolerance: True"
    off = suite.equivalence(logits + torch.tensor([[0.0, 1e-3]]), maps, logits, maps)
    assert not off.within_tolerance and off.max_logit_diff == pytest.approx(1e-3, rel=1e-4)
    with pytest.raises(ValueError, match="shapes differ"):
        suite.equivalence(logits, maps, logits, maps[..., :1])


def test_model_equivalence_on_a_random_cam_network():
    import torch

    models = pytest.importorskip("wsol_utils.models")
    torch.manual_seed(0)
    check = suite.model_equivalence(models.create_model("cam", num_classes=4), torch.randn(2, 3, 32, 32))
    assert check.within_tolerance and check.max_map_diff < 1e-5


def test_branch_b_weights_hand_computed():
    import torch

    maps = torch.tensor([[[0.0, 4.0], [2.0, 1.0]]])  # normalized: [[0, 1], [0.5, 0.25]]
    features = torch.ones(1, 3, 2, 2)
    acol = suite.branch_b_weights("acol", features, maps, 0.5)
    hcl = suite.branch_b_weights("hclnet", features, maps, 0.5)
    assert acol.tolist() == [[[1.0, 0.0], [0.0, 1.0]]]  # 0.5 >= delta is erased
    assert hcl.tolist() == [[[1.0, 0.0], [0.5, 0.75]]]
    with pytest.raises(ValueError, match="no branch B"):
        suite.branch_b_weights("cam", features, maps, 0.5)


def test_best_row_and_best_tau_table():
    import pandas as pd

    table = pd.DataFrame({"delta": [0.5, 0.6, 0.7], "err": [50.0, 40.0, 40.0]})
    assert suite.best_row(table, "err")["delta"] == 0.6  # first of the ties
    assert suite.best_row(table, "err", lower_is_better=False)["delta"] == 0.5
    with pytest.raises(ValueError, match="no column 'x'"):
        suite.best_row(table, "x")
    curves = pd.DataFrame({"tau": [0.1, 0.2, 0.3, 0.1, 0.2, 0.3], "method": ["A"] * 3 + ["B"] * 3,
                           "gt_known_loc_acc": [5.0, 9.0, 7.0, 1.0, 2.0, 8.0]})
    best = suite.best_tau_table(curves)
    assert best.to_dict("records") == [
        {"method": "A", "best_tau": 0.2, "best_acc": 9.0, "acc_at_0_2": 9.0},
        {"method": "B", "best_tau": 0.3, "best_acc": 8.0, "acc_at_0_2": 2.0}]


def test_config_merges_dataset_and_model_kwargs(in_notebooks):
    pytest.importorskip("wsol_utils.engine")
    smoke = Suite.from_parameters(smoke=True).config("cam", dataset_kwargs={"head_size": 0.22, "num_test": 7},
                                                      model_kwargs={"head_kernel": 3})
    assert smoke.dataset_kwargs == {**suite.SMOKE_DATASET_KWARGS, "head_size": 0.22, "num_test": 7}
    assert smoke.model_kwargs == {"head_kernel": 3}
    full = Suite.from_parameters().config("cam", dataset_kwargs={"head_size": 0.22})
    assert full.dataset_kwargs == {"head_size": 0.22}
    assert full.key() != Suite.from_parameters().config("cam").key()


def test_part_mass_splits_object_into_head_and_body():
    import pandas as pd

    records = pd.DataFrame({"b_mass_head": [0.1, 0.3], "b_mass_object": [0.5, 0.7],
                            "b_mass_background": [0.5, 0.3]})
    # head mean 0.2, object mean 0.6 -> body 0.4, background mean 0.4
    assert suite.part_mass(records) == pytest.approx({"head": 20.0, "body": 40.0, "background": 40.0})
    a_only = suite.part_mass(records.rename(columns=lambda c: c.replace("b_", "a_")), branch="a")
    assert a_only == pytest.approx({"head": 20.0, "body": 40.0, "background": 40.0})
    missing = suite.part_mass(records, branch="a")
    assert all(math.isnan(v) for v in missing.values())


def test_cells_seeing_part_hand_computed():
    assert suite.cells_seeing_part(18, 4, 7.0) == pytest.approx(6.25)   # (18 + 7) / 4
    assert suite.cells_seeing_part(34, 4, 14.0) == pytest.approx(12.0)  # (34 + 14) / 4
    with pytest.raises(ValueError, match="stride"):
        suite.cells_seeing_part(18, 0, 7.0)


def test_erasing_gain_row_hand_computed():
    import pandas as pd

    class Result:  # the two fields of an EvalResult the row reads
        def __init__(self, acc, records):
            self.summary, self.records = {"gt_known_loc_acc": acc, "num_images": 100}, records

    cam = Result(50.0, pd.DataFrame({"a_mass_head": [0.6], "a_mass_object": [0.8], "a_mass_background": [0.2]}))
    acol = Result(40.0, pd.DataFrame({"b_mass_head": [0.1, 0.3], "b_mass_object": [0.5, 0.7],
                                      "b_mass_background": [0.5, 0.3]}))
    cam_curve = pd.DataFrame({"tau": [0.1, 0.2, 0.3], "gt_known_loc_acc": [45.0, 50.0, 55.0]})
    acol_curve = pd.DataFrame({"tau": [0.1, 0.2, 0.3], "gt_known_loc_acc": [60.0, 40.0, 30.0]})
    row = suite.erasing_gain_row(cam, acol, cam_curve, acol_curve)
    assert row == pytest.approx({
        "CAM @0.2": 50.0, "ACoL @0.2": 40.0, "ACoL - CAM @0.2": -10.0,
        "noise ±": suite.difference_noise(40.0, 50.0, 100),
        "CAM best": 55.0, "CAM best tau": 0.3, "ACoL best": 60.0, "ACoL best tau": 0.1, "ACoL - CAM best": 5.0,
        "CAM mass head (%)": 60.0, "B mass head (%)": 20.0, "B mass body (%)": 40.0,
        "B mass background (%)": 40.0})


def test_head_geometry_of_the_default_and_wide_models(in_notebooks):
    pytest.importorskip("wsol_utils.engine")
    default = suite.head_geometry(Suite.from_parameters().config("acol"))
    # conv, pool, conv, pool, conv (3x3): 1 + 2 + 2*2 + 2*2 + 2*4 = 18 px at stride 4; head 0.11 * 64 px
    assert default == pytest.approx({"receptive field (px)": 18, "stride (px)": 4, "head (px)": 7.04,
                                     "map cells (per axis)": 16, "cells seeing the head (per axis)": 25.04 / 4})
    wide = suite.head_geometry(Suite.from_parameters().config(
        "acol", model_kwargs={"head_kernel": 3}, dataset_kwargs={"head_size": 0.22}))
    assert (wide["receptive field (px)"], wide["head (px)"]) == (34, pytest.approx(14.08))
    with pytest.raises(ValueError, match="synthetic"):
        suite.head_geometry(Suite.from_parameters(dataset="cub", data_root=".").config("acol"))
