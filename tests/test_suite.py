"""Tests for wsol_utils.ui.suite: notebook parameters -> run configs, smoke isolation, honest sentences."""

from __future__ import annotations

import pytest

from wsol_utils.engine import INSTRUMENT
from wsol_utils.ui import suite
from wsol_utils.ui.suite import Suite


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
    assert smoke.epochs == suite.SMOKE_EPOCHS and smoke.dataset_kwargs == {**suite.SMOKE_DATASET_KWARGS, "seed": 0}
    assert full.dataset_kwargs == {"seed": 0} and full.epochs > suite.SMOKE_EPOCHS
    assert smoke.key() != full.key()  # smoke runs never overwrite the full runs in the cache
    assert Suite.from_parameters(smoke=True, epochs=3).config("cam").epochs == 3
    assert Suite.from_parameters().config("cam", epochs=2).epochs == 2


def test_each_training_seed_draws_its_own_synthetic_data_and_paired_runs_share_it(in_notebooks):
    pytest.importorskip("wsol_utils.engine")
    full = Suite.from_parameters(device="cpu")
    cam3, hcl3 = full.config("cam", seed=3), full.config("hclnet", seed=3)
    assert cam3.dataset_kwargs == hcl3.dataset_kwargs == {"seed": 3}
    from wsol_utils.data.synthetic import SyntheticConfig

    test_key = SyntheticConfig(**cam3.dataset_kwargs).key("test")
    assert test_key != SyntheticConfig(**full.config("cam", seed=4).dataset_kwargs).key("test")
    assert full.config("cam", seed=3, dataset_kwargs={"seed": 0}).dataset_kwargs == {"seed": 0}  # named: kept
    assert full.seeds == tuple(range(10)) and full.exploratory_seeds == (0, 1, 2, 3, 4)
    smoke = Suite.from_parameters(smoke=True)
    assert smoke.seeds == smoke.exploratory_seeds == suite.SMOKE_SEEDS


def test_config_for_real_data_uses_the_paper_setting(in_notebooks):
    pytest.importorskip("wsol_utils.engine")
    config = Suite.from_parameters(dataset="cub", data_root=str(in_notebooks), smoke=True).config("acol")
    assert (config.backbone, config.image_size, config.epochs, config.dataset_kwargs) == ("vgg16", 32, 1, {})
    assert config.model_kwargs == suite.SMOKE_REAL_MODEL_KWARGS  # smoke: small images and branches
    full = Suite.from_parameters(dataset="cub", data_root=str(in_notebooks)).config("acol")
    assert (full.backbone, full.layout, full.image_size, full.epochs, full.batch_size) == (
        "vgg16",
        "28x28",
        224,
        60,
        20,
    )
    assert (full.lr, full.delta, full.optimizer, full.model_kwargs) == (1e-4, 0.6, "acol", {})


def test_environment_turns_smoke_on(in_notebooks, monkeypatch):
    monkeypatch.setenv("WSOL_SMOKE", "1")
    assert Suite.from_parameters(smoke=False).smoke is True
    monkeypatch.setenv("WSOL_SMOKE", "0")
    assert Suite.from_parameters(smoke=False).smoke is False


def test_config_merges_dataset_and_model_kwargs(in_notebooks):
    pytest.importorskip("wsol_utils.engine")
    smoke = Suite.from_parameters(smoke=True).config(
        "cam", dataset_kwargs={"head_size": 0.22, "num_test": 7}, model_kwargs={"head_kernel": 3}
    )
    assert smoke.dataset_kwargs == {**suite.SMOKE_DATASET_KWARGS, "head_size": 0.22, "num_test": 7, "seed": 0}
    assert smoke.model_kwargs == {**INSTRUMENT["model_kwargs"], "head_kernel": 3}  # merged into the instrument's
    full = Suite.from_parameters().config("cam", dataset_kwargs={"head_size": 0.22})
    assert full.dataset_kwargs == {"head_size": 0.22, "seed": 0}
    assert full.key() != Suite.from_parameters().config("cam").key()


def test_train_many_returns_one_seed_dict_per_request_in_order(in_notebooks, monkeypatch):
    calls = []

    def fake_train_many(configs, runs_dir, progress, evaluations):
        calls.append((configs, evaluations))
        return [runs_dir / config.run_name() for config in configs]

    monkeypatch.setattr(suite, "train_many", fake_train_many)
    smoke = Suite.from_parameters(smoke=True)
    got = smoke.train_many([("acol", {"delta": 0.7}), ("cam", {})], evaluate=[[{"fusion": "max"}], []])
    configs, evaluations = calls[0]
    assert len(calls) == 1 and len(configs) == 2 * len(smoke.seeds)  # one call: the whole grid side by side
    # each seed's run gets its request's evaluations, with the options suite.evaluate would pass
    assert evaluations == [[smoke.evaluation_options(fusion="max")]] * len(smoke.seeds) + [[]] * len(smoke.seeds)
    assert smoke.evaluation_options(fusion="max") == {
        "split": "test",
        "wsoleval": "main",
        "device": "auto",
        "fusion": "max",
    }
    expected = [
        {seed: smoke.runs_dir / smoke.config(method, seed=seed, **changes).run_name() for seed in smoke.seeds}
        for method, changes in (("acol", {"delta": 0.7}), ("cam", {}))
    ]
    assert got == expected
    assert smoke.train_seeds("cam") == expected[1]
    with pytest.raises(ValueError, match="1 evaluate option sets for 2 requests"):
        smoke.train_many([("cam", {}), ("acol", {})], evaluate=[[]])
