"""The map scorer (wsol_utils.scoring.scorer) on hand-made maps: boxes, IoUs, records and a protocol's metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from wsol_utils.data import WSOLBatch
from wsol_utils.scoring import boxeval
from wsol_utils.scoring.protocol import PAPERS
from wsol_utils.scoring.scorer import MapScorer, localized_at, mass_fractions, score_boxes, wsoleval_branches

SIZE = 8


def _batch() -> tuple[WSOLBatch, dict[str, torch.Tensor]]:
    """Two 8x8 images. Image 0: the map is the block x 1..3, y 2..4, exactly its GT box (IoU 1). Image 1: a 2x2
    block at the top-left plus one 0.5 pixel at (7, 7); its box is the block (0, 0, 1, 1) against the GT box
    (0, 0, 3, 3): inclusive IoU 4 / 16 = 0.25."""
    maps = torch.zeros(2, SIZE, SIZE)
    maps[0, 2:5, 1:4] = 1.0
    maps[1, 0:2, 0:2] = 1.0
    maps[1, 7, 7] = 0.5
    masks = torch.zeros(2, SIZE, SIZE, dtype=torch.uint8)
    masks[0, 2:5, 1:4] = 1
    masks[1, 0:4, 0:4] = 1
    masks[1, 6, 6] = 255  # ignored: neither object nor background
    boxes = [torch.tensor([[1.0, 2.0, 3.0, 4.0]]), torch.tensor([[0.0, 0.0, 3.0, 3.0]])]
    batch = WSOLBatch(torch.zeros(2, 3, SIZE, SIZE), torch.tensor([0, 1]), boxes, masks, ["i0", "i1"])
    return batch, {"a": maps}


def test_boxes_ious_and_records_by_hand() -> None:
    batch, maps = _batch()
    scorer = MapScorer(PAPERS.replace(wsoleval=False), ("a",), has_masks=True)
    scores = scorer.add(batch, maps)
    np.testing.assert_array_equal(scores.boxes["a"], [[1, 2, 3, 4], [0, 0, 1, 1]])
    np.testing.assert_allclose(scores.ious["a"], [1.0, 0.25])
    records = scorer.records()
    assert list(records["image_id"]) == ["i0", "i1"] and list(records["pred"]) == [-1, -1]
    np.testing.assert_allclose(records["a_mass_object"], [1.0, 4.0 / 4.5])
    np.testing.assert_allclose(records["a_mass_background"], [0.0, 0.5 / 4.5])


def test_summary_by_hand_with_and_without_a_classifier() -> None:
    batch, maps = _batch()
    # without logits: GT-known loc from the IoUs (1 of 2 at IoU >= 0.5), classification NaN
    blind = MapScorer(PAPERS.replace(wsoleval=False), ("a",), has_masks=False)
    blind.add(batch, maps)
    summary = blind.summary()["a"]
    assert summary["gt_known_loc_acc"] == 50.0 and summary["gt_known_loc_err"] == 50.0
    assert math.isnan(summary["cls_acc_top1"]) and math.isnan(summary["loc_acc_top1"])
    # logits predicting class 0 for both: image 0 right and localized, image 1 wrong -> top-1 loc 50 %
    scorer = MapScorer(PAPERS.replace(wsoleval=False), ("a",), has_masks=False)
    scorer.add(batch, maps, logits=torch.tensor([[2.0, 0.0], [3.0, 0.0]]))
    summary = scorer.summary()["a"]
    assert (summary["cls_acc_top1"], summary["loc_acc_top1"], summary["gt_known_loc_acc"]) == (50.0, 50.0, 50.0)
    assert list(scorer.records()["correct_top1"]) == [True, False]
    # the protocol's IoU threshold decides: at 0.25 both boxes localize
    loose = MapScorer(PAPERS.replace(wsoleval=False, iou_threshold=0.25), ("a",), has_masks=False)
    loose.add(batch, maps)
    assert loose.summary()["a"]["gt_known_loc_acc"] == 100.0


def test_wsoleval_metrics_are_the_fast_evaluators() -> None:
    batch, maps = _batch()
    scorer = MapScorer(PAPERS, ("a",), has_masks=True)
    scorer.add(batch, maps)
    box, pxap = boxeval.BoxEvaluator(), boxeval.PxAPEvaluator()
    box.accumulate_batch(maps["a"], [b.numpy().astype(np.float64) for b in batch.boxes])
    pxap.accumulate(maps["a"], batch.masks)
    summary, expected = scorer.summary()["a"], box.compute()
    assert (summary["maxboxacc"], summary["maxboxacc_v2"]) == (expected["maxboxacc"], expected["maxboxacc_v2"])
    assert summary["pxap"] == pytest.approx(pxap.compute())
    assert wsoleval_branches("main", ("a", "b", "fused")) == ("fused",) and wsoleval_branches(False, ("a",)) == ()


def test_localized_at_agrees_with_boxing_at_each_tau() -> None:
    batch, maps = _batch()
    gt = [b.numpy().astype(np.float64) for b in batch.boxes]
    protocol = PAPERS.replace(tau_grid=(0.2, 0.5, 0.6, 1.0))
    hits = localized_at(maps["a"], gt, protocol)
    for row, tau in zip(hits, protocol.tau_grid):
        np.testing.assert_array_equal(row, protocol.localized(score_boxes(maps, gt, tau).ious["a"]))
    # at tau 0.5 the 0.5 pixel joins the foreground but stays a separate, smaller component: the same boxes
    np.testing.assert_array_equal(hits, [[True, False]] * 4)


def test_mass_fractions_of_a_zero_map_are_nan_and_errors_are_clear() -> None:
    region = torch.ones(1, 2, 2, dtype=torch.bool)
    assert math.isnan(mass_fractions(torch.zeros(1, 2, 2), {"object": region})["object"][0])
    empty = MapScorer(PAPERS, ("a",), has_masks=False)
    with pytest.raises(ValueError, match="no images"):
        empty.summary()
    batch, maps = _batch()
    with pytest.raises(ValueError, match="low="):
        MapScorer(PAPERS, ("a",), has_masks=False, keep_low=True).add(batch, maps)
