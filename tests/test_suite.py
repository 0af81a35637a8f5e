"""Tests for wsol_utils.suite: notebook parameters -> run configs, smoke isolation, honest sentences."""

from __future__ import annotations

import math

import pytest

from wsol_utils import suite
from wsol_utils.suite import Suite


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
    # p = 50% twice, n = 100: 1.96 * sqrt(2 * 0.25 / 100) = 0.13859 -> 13.86 points.
    assert suite.difference_noise(50, 50, 100) == pytest.approx(13.8593, abs=1e-4)
    assert suite.difference_noise(0, 100, 10) == 0.0
    with pytest.raises(ValueError, match="n=0"):
        suite.difference_noise(50, 50, 0)


def test_compare_never_claims_an_effect_within_noise():
    text = suite.compare("ACoL", 55.0, "CAM", 50.0, metric="GT-known loc accuracy", n=100)
    assert text == ("ACoL's GT-known loc accuracy is 5.0 points above CAM's (55.0% vs 50.0%, 100 images; "
                    "95% noise level ±13.8 points): within sampling noise, so no difference is shown.")
    big = suite.compare("ACoL", 40.0, "CAM", 60.0, metric="loc err top-1", n=2000,
                        higher_is_better=False)
    assert big.startswith("ACoL's loc err top-1 is 20.0 points below CAM's")
    assert big.endswith("ACoL is better beyond sampling noise.")
    worse = suite.compare("B", 30.0, "A", 60.0, metric="accuracy", n=2000)
    assert worse.endswith("B is worse beyond sampling noise.")
    assert suite.compare("A", math.nan, "B", 1.0, metric="MaxBoxAccV2", n=5) == "MaxBoxAccV2: not available for A."
