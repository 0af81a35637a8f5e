"""The explorer without a browser (wsol_utils.ui.widgets): set knob / widget values in Python and compare what the
callback computed with direct library calls (wsol_utils.engine.evaluate, erasing, metrics)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from wsol_utils.engine import evaluate
from wsol_utils.ui import widgets
from wsol_utils.ui.widgets import Explorer, ExplorerInputError, Knobs, compare_runs, explore, stats_html

from browser_support import TINY_DATASET_KWARGS, train_tiny_run

SAMPLE = 32
TAU = 0.6  # at tau 0.2 the tiny run's boxes cover the whole image for every delta; at 0.6 delta matters


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.getbasetemp() / "widget-runs"
    return {"acol": train_tiny_run(root), "cam": train_tiny_run(root, method="cam")}


@pytest.fixture(scope="module")
def explorer(runs) -> Explorer:
    return Explorer(runs["acol"], sample_size=SAMPLE)


def library(run: Path, delta: float, fusion: str, tau: float = TAU, limit: int | None = SAMPLE):
    """What the engine computes for the same run, sample and knobs."""
    return evaluate(
        run, delta=delta, fusion=fusion, tau=tau, limit=limit, wsoleval=False, progress=False, cache_maps=False
    )


@pytest.mark.parametrize(("delta", "fusion"), [(0.5, "max"), (0.7, "max"), (0.3, "add"), (0.9, "l1")])
def test_accuracy_boxes_and_iou_equal_the_engines(explorer, runs, delta, fusion) -> None:
    result = library(runs["acol"], delta, fusion)
    scores = explorer.sample_scores(Knobs(0, delta, fusion, TAU))
    for branch in ("a", "b", "fused"):
        assert scores.accuracy[branch] == result.summary["branches"][branch]["gt_known_loc_acc"]
        np.testing.assert_array_equal(scores.ious[branch], result.records[f"{branch}_iou"].to_numpy())
        expected_boxes = result.records[[f"{branch}_{c}" for c in ("x0", "y0", "x1", "y1")]].to_numpy()
        np.testing.assert_array_equal(scores.boxes[branch], expected_boxes)
    view = explorer.view(Knobs(5, delta, fusion, TAU))
    assert view.ious == {b: result.records.loc[5, f"{b}_iou"] for b in ("a", "b", "fused")}
    assert view.accuracy == scores.accuracy


def test_test_time_delta_moves_branch_b_only(explorer) -> None:
    low, high = (explorer.sample_maps(Knobs(0, d, "max", TAU)) for d in (0.3, 0.9))
    torch.testing.assert_close(low.maps["a"], high.maps["a"], rtol=0, atol=0)
    assert not torch.equal(low.maps["b"], high.maps["b"])
    # B's input is the 0/1 mask M_A < delta (docs/methods.md §1.3): binary, and a higher delta keeps every cell a
    # lower one kept
    assert set(torch.unique(low.b_input).tolist()) <= {0.0, 1.0}
    assert torch.all(high.b_input >= low.b_input) and high.b_input.sum() > low.b_input.sum()
    accuracies = {d: explorer.sample_scores(Knobs(0, d, "max", TAU)).accuracy["fused"] for d in (0.3, 0.5, 0.7, 0.9)}
    assert len(set(accuracies.values())) > 1, f"the tiny run's fused accuracy does not react to delta: {accuracies}"


def test_b_input_is_what_branch_b_saw(explorer) -> None:
    from wsol_utils.nets.maps import normalize_minmax

    images = explorer.sample.images[:4]
    with torch.no_grad():
        output = explorer.model(images, None, delta=0.55)  # label-free: A's top-1 drives the erasing (PAPERS)
    predicted = output.logits_a.argmax(dim=1)
    mask = (normalize_minmax(output.maps_a[torch.arange(4), predicted]) < 0.55).float()  # docs/methods.md §1.3
    torch.testing.assert_close(output.erased, output.features * mask[:, None])
    upsampled = torch.nn.functional.interpolate(mask[:, None], size=images.shape[-2:], mode="nearest")[:, 0]
    torch.testing.assert_close(explorer.sample_maps(Knobs(0, 0.55, "max", TAU)).b_input[:4], upsampled)


def test_one_forward_per_knob_value_and_moving_back_is_cached(runs, monkeypatch) -> None:
    explorer = Explorer(runs["acol"], sample_size=SAMPLE)
    calls = []
    forward = explorer._forward

    def counting_forward(*args):
        calls.append(args[2:])
        return forward(*args)

    monkeypatch.setattr(explorer, "_forward", counting_forward)
    for delta in (0.5, 0.6, 0.5, 0.6):
        explorer.view(Knobs(3, delta, "max", TAU))
    explorer.view(Knobs(7, 0.5, "max", 0.3))  # another image and tau: no new forward
    explorer.view(Knobs(3, 0.5, "add", TAU))  # another fusion: one more
    assert calls == [(0.5, "max"), (0.6, "max"), (0.5, "add")]
    assert explorer.sample_scores(Knobs(0, 0.5, "max", TAU)) is explorer.sample_scores(Knobs(9, 0.5, "max", TAU))


def test_an_image_outside_the_sample_matches_the_engine(runs) -> None:
    explorer = Explorer(runs["acol"], sample_size=4)
    index = TINY_DATASET_KWARGS["num_test"] - 1
    view = explorer.view(Knobs(index, 0.7, "max", TAU))
    records = library(runs["acol"], 0.7, "max", limit=None).records
    assert view.ious == {b: records.loc[index, f"{b}_iou"] for b in ("a", "b", "fused")}
    assert view.label == records.loc[index, "label"] and view.prediction == records.loc[index, "pred"]


def test_widget_callback_computes_the_chosen_knobs(runs) -> None:
    box = explore(runs["acol"], image_index=2, delta=0.5, tau=TAU, sample_size=SAMPLE)
    ui = box.explorer_widget
    assert not ui.delta.continuous_update and not ui.tau.continuous_update
    ui.delta.value = 0.7
    ui.fusion.value = "add"
    expected = library(runs["acol"], 0.7, "add")
    assert ui.last_view.knobs == Knobs(2, 0.7, "add", TAU, ("a", "b", "fused"))
    assert ui.last_view.accuracy == {b: s["gt_known_loc_acc"] for b, s in expected.summary["branches"].items()}
    shown = dict(re.findall(r'class="wsol-acc" data-branch="(\w+)" data-value="([0-9.e+-]+)"', ui.stats.value))
    assert {b: float(v) for b, v in shown.items()} == ui.last_view.accuracy
    assert 'data-delta="0.7"' in ui.stats.value and bytes(ui.figure.value).startswith(b"\x89PNG")
    ui.branches["b"].value = False  # hide B: fewer panels, same numbers
    assert widgets.view_panels(ui.last_view) == ["image", "b_input", "a", "fused"]
    assert ui.last_view.accuracy == {b: s["gt_known_loc_acc"] for b, s in expected.summary["branches"].items()}


def test_cam_runs_have_one_branch_and_no_delta(runs) -> None:
    ui = explore(runs["cam"], tau=TAU, sample_size=SAMPLE).explorer_widget
    assert ui.delta.disabled and ui.fusion.disabled and list(ui.branches) == ["a"]
    expected = library(runs["cam"], None, None)  # type: ignore[arg-type]
    assert ui.last_view.accuracy == {"a": expected.summary["branches"]["a"]["gt_known_loc_acc"]}
    assert ui.last_view.b_input is None and ui.last_view.knobs.fusion is None
    assert re.sub(r"<[^>]+>", "", ui.stats.value).startswith(f"tau 0.60 | GT-known loc (n={SAMPLE}): A ")


def test_stats_text_is_readable(explorer) -> None:
    view = explorer.view(Knobs(1, 0.5, "max", TAU))
    text = re.sub(r"<[^>]+>", "", stats_html(view))
    assert text.startswith(f"delta 0.50 · fusion max · tau 0.60 | GT-known loc (n={SAMPLE}): A ")
    assert f"fused {view.accuracy['fused']:.1f}% | image 1 IoU: A {view.ious['a']:.2f}" in text


def test_missing_run_or_checkpoint_is_a_message_not_a_traceback(runs, tmp_path) -> None:
    missing = explore(tmp_path / "nope")
    assert "does not exist" in missing.children[0].value and widgets.ERROR_CLASS in missing.children[0].value
    no_checkpoint = tmp_path / "half"
    no_checkpoint.mkdir()
    shutil.copy(runs["acol"] / "config.json", no_checkpoint / "config.json")
    message = explore(no_checkpoint).children[0].value
    assert "checkpoint.pt not found" in message and "train it" in message
    with pytest.raises(FileNotFoundError, match=r"config.json not found"):
        Explorer(tmp_path)
    other_model = tmp_path / "other-model"
    shutil.copytree(runs["acol"], other_model)
    config = json.loads((other_model / "config.json").read_text())
    (other_model / "config.json").write_text(json.dumps({**config, "model_kwargs": {"head_width": 8}}))
    message = explore(other_model).children[0].value
    assert "checkpoint.pt does not fit the current model code" in message and "retrain" in message


def test_bad_knobs_show_a_message_and_keep_the_last_view(runs) -> None:
    ui = explore(runs["acol"], tau=TAU, sample_size=8).explorer_widget
    before = ui.last_view
    ui.image_index.value = 1000
    assert "image index 1000 is out of range" in ui.error.value
    assert f"(0 .. {TINY_DATASET_KWARGS['num_test'] - 1})" in ui.error.value and ui.last_view is before
    ui.image_index.value = 3
    assert ui.error.value == "" and ui.last_view.knobs.image_index == 3
    start_out_of_range = explore(runs["acol"], image_index=-1).explorer_widget
    assert "out of range" in start_out_of_range.error.value and start_out_of_range.last_view is None
    with pytest.raises(ExplorerInputError, match="fusion='median'"):
        Explorer(runs["acol"], sample_size=2).view(Knobs(fusion="median"))
    with pytest.raises(ExplorerInputError, match=r"delta=1.0"):
        Explorer(runs["acol"], sample_size=2).view(Knobs(delta=1.0))


def test_compare_runs_draws_one_row_per_run(runs) -> None:
    fig = compare_runs([runs["acol"], runs["cam"]], image_index=4, tau=TAU, sample_size=8)
    specs = [ax.get_subplotspec() for ax in fig.axes]
    assert all(spec is not None for spec in specs)  # every axes is a subplot of the grid
    rows = {spec.rowspan.start for spec in specs if spec is not None}
    assert len(rows) == 2 and len(fig.axes) == 2 * 5  # acol: image, B input, A, B, fused; cam row padded
    assert fig.axes[0].get_title().startswith("trained delta 0.60 · fused GT-known")
    with pytest.raises(ExplorerInputError, match="at least one run"):
        compare_runs([])


def test_both_views_take_their_tau_slider_from_the_protocols_grid(runs) -> None:
    slider = widgets.tau_slider(0.2)
    assert (slider.min, slider.max, slider.step, slider.value) == (0.01, 1.0, 0.01, 0.2)
    assert not slider.continuous_update and slider.description == "tau"
    ui = explore(runs["cam"], tau=0.3, sample_size=8).explorer_widget
    comparison = widgets.explore_comparison([runs["cam"]], tau=0.4, sample_size=8)
    (_, in_comparison) = comparison.children[0].children
    for found, value in ((ui.tau, 0.3), (in_comparison, 0.4)):
        assert (found.min, found.max, found.step, found.value) == (0.01, 1.0, 0.01, value)
