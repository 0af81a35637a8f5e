"""Calibration baselines (wsol_utils.engine.baselines) and the engine's scoring of maps that come without a model."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from wsol_utils import data
from wsol_utils.data.base import tight_boxes
from wsol_utils.engine import RunConfig, evaluate, load_run, train
from wsol_utils.engine.baselines import (
    BASELINES,
    DEFAULT_SIGMA,
    centre_gaussian_maps,
    evaluate_baseline,
    gt_mask_maps,
    whole_image_maps,
)
from wsol_utils.nets.maps import normalize_minmax
from wsol_utils.nets.models import WSOLModel
from wsol_utils.scoring import boxeval, metrics
from wsol_utils.scoring.pipeline import forward_maps
from wsol_utils.scoring.protocol import PAPERS
from wsol_utils.scoring.scorer import MapScorer

N_TEST = 12
SIZE = 32
CLASSIFICATION_KEYS = (
    "cls_acc_top1",
    "cls_err_top1",
    "cls_acc_top5",
    "cls_err_top5",
    "loc_acc_top1",
    "loc_err_top1",
    "loc_acc_top5",
    "loc_err_top5",
)


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory: pytest.TempPathFactory):
    return tmp_path_factory.mktemp("baselines")


@pytest.fixture(scope="module")
def tiny_test(tiny_root) -> data.WSOLDataset:
    return data.load("synthetic", split="test", num_test=N_TEST, image_size=SIZE, root=tiny_root / "data")


# -- the maps ----------------------------------------------------------------------------------------------------
def test_centre_gaussian_hand_computed() -> None:
    maps = centre_gaussian_maps(2, 5, 5, sigma=0.2)  # s = 0.2 * 5 = 1 px
    assert maps.shape == (2, 5, 5) and maps.dtype == torch.float32
    torch.testing.assert_close(maps[0], maps[1])
    assert maps[0, 2, 2].item() == 1.0
    assert int(maps[0].argmax()) == 2 * 5 + 2  # the centre pixel
    assert maps[0, 2, 3].item() == pytest.approx(math.exp(-0.5))  # d = 1 px
    assert maps[0, 0, 0].item() == pytest.approx(math.exp(-4.0))  # d² = 8
    assert maps[0, 1, 4].item() == pytest.approx(math.exp(-2.5))  # d² = 1 + 4
    for m in (maps[0], maps[0].flip(0), maps[0].flip(1), maps[0].T):
        torch.testing.assert_close(m, maps[0])
    # even sides: the four middle pixels tie for the maximum; sigma is a fraction of the shorter side
    even = centre_gaussian_maps(1, 4, 6, sigma=0.25)[0]  # s = 1 px, centre (1.5, 2.5)
    middle = even[1:3, 2:4]
    assert torch.all(middle == even.max())
    assert middle[0, 0].item() == pytest.approx(math.exp(-0.25))  # d² = 0.5
    torch.testing.assert_close(even, even.flip(0))
    torch.testing.assert_close(even, even.flip(1))
    assert BASELINES["centre_gaussian"].maps is not None and DEFAULT_SIGMA == 0.5
    for bad in (0.0, -1.0, math.nan):
        with pytest.raises(ValueError, match="sigma"):
            centre_gaussian_maps(1, 4, 4, sigma=bad)


def test_whole_image_box_under_both_protocols() -> None:
    height, width = 8, 10
    maps = whole_image_maps(3, height, width)
    assert maps.shape == (3, height, width) and maps[:, 0, 0].eq(0).all() and maps.sum() == 3 * (80 - 1)
    whole = np.array([0, 0, width - 1, height - 1], dtype=np.float64)
    for tau in (0.05, 0.2, 0.5, 1.0):  # the papers' protocol
        np.testing.assert_array_equal(metrics.maps_to_boxes(maps, tau), np.tile(whole, (3, 1)))
    normalized = normalize_minmax(maps.double())[0].numpy()
    for threshold in (0.0, 0.2, 0.5, 0.999):  # wsoleval's: one contour, its box the whole image
        for multi in (False, True):
            np.testing.assert_array_equal(metrics.wsoleval_boxes(normalized, threshold, multi), [whole])
    # IoU with a hand-made GT box: 4 x 4 = 16 pixels of the 80 -> 0.2
    gt = [np.array([[2.0, 1.0, 5.0, 4.0]])]
    assert metrics.best_iou(whole[None], gt)[0] == pytest.approx(16 / 80)
    # why not a constant map: it normalizes to zeros, whose box is (0, 0, 0, 0)
    np.testing.assert_array_equal(metrics.maps_to_boxes(torch.ones(1, height, width), 0.2), [[0, 0, 0, 0]])
    with pytest.raises(ValueError, match="2x2"):
        whole_image_maps(1, 1, 5)


def test_gt_mask_maps() -> None:
    masks = torch.tensor([[[0, 1], [255, 1]]], dtype=torch.uint8)
    torch.testing.assert_close(gt_mask_maps(masks), torch.tensor([[[0.0, 1.0], [0.0, 1.0]]]))
    torch.testing.assert_close(gt_mask_maps(masks.numpy()), gt_mask_maps(masks))
    with pytest.raises(ValueError, match="no masks"):
        gt_mask_maps(None)


# -- scored by the engine ----------------------------------------------------------------------------------------
def test_synthetic_gt_box_is_the_mask_box(tiny_test) -> None:
    for i in range(len(tiny_test)):
        _image, _label, boxes, mask, _id = tiny_test[i]
        assert mask is not None
        np.testing.assert_array_equal(boxes.numpy(), tight_boxes(mask.numpy()[None] == 1))


def test_gt_mask_baseline_reaches_the_ceiling(tiny_test) -> None:
    result = evaluate_baseline("gt_mask", tiny_test)
    summary = result.summary
    assert summary["method"] == "baseline:gt_mask" and summary["split"] == "test"
    assert summary["num_images"] == N_TEST and list(summary["branches"]) == ["a"]
    for key in ("gt_known_loc_acc", "maxboxacc", "maxboxacc_v2", "pxap"):
        assert summary[key] == 100.0, key
    assert summary["gt_known_loc_err"] == 0.0
    assert all(math.isnan(summary[key]) for key in CLASSIFICATION_KEYS)
    rec = result.records
    assert len(rec) == N_TEST and (rec["a_iou"] == 1.0).all() and (rec["pred"] == -1).all()
    assert rec["correct_top1"].isna().all()
    np.testing.assert_allclose(rec["a_mass_object"], 1.0)


def test_whole_image_and_centre_gaussian_baselines(tiny_test) -> None:
    whole = evaluate_baseline("whole_image", tiny_test, limit=5)
    rec = whole.records
    assert len(rec) == 5
    np.testing.assert_array_equal(
        rec[["a_x0", "a_y0", "a_x1", "a_y1"]].to_numpy(), np.tile([0, 0, SIZE - 1, SIZE - 1], (5, 1))
    )
    areas = [(b[:, 2] - b[:, 0] + 1) * (b[:, 3] - b[:, 1] + 1) for b in (tiny_test[i][2].numpy() for i in range(5))]
    np.testing.assert_allclose(rec["a_iou"], [a.max() / SIZE**2 for a in areas])
    # PxAP of a map that ranks every pixel but one alike: about the share of object pixels
    share = np.mean([(tiny_test[i][3] == 1).float().mean().item() for i in range(5)]) * 100
    assert whole.summary["pxap"] == pytest.approx(share, abs=2.0)
    gauss = evaluate_baseline("centre_gaussian", tiny_test, tau=0.5)
    assert gauss.summary["method"] == "baseline:centre_gaussian" and gauss.summary["tau"] == 0.5
    assert 0.0 <= gauss.summary["maxboxacc"] <= 100.0 and 0.0 < gauss.summary["pxap"] < 100.0
    # every box is centred: the map ignores the image
    centred = gauss.records[["a_x0", "a_y0", "a_x1", "a_y1"]].drop_duplicates()
    assert len(centred) == 1
    x0, y0, x1, y1 = centred.to_numpy()[0]
    assert x0 + x1 == SIZE - 1 and y0 + y1 == SIZE - 1


def test_bad_arguments(tiny_test, tiny_root) -> None:
    with pytest.raises(ValueError, match="unknown baseline"):
        evaluate_baseline("random", tiny_test)
    with pytest.raises(ValueError, match="tau"):
        evaluate_baseline("whole_image", tiny_test, tau=0.0)
    with pytest.raises(ValueError, match="limit"):
        evaluate_baseline("whole_image", tiny_test, limit=0)
    with pytest.raises(ValueError, match="data set"):
        evaluate_baseline("whole_image", [1, 2, 3])  # type: ignore[arg-type]

    class NoMasks(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return 2

        def __getitem__(self, i: int):
            return torch.zeros(3, 8, 8), 0, torch.tensor([[1.0, 1.0, 4.0, 4.0]]), None, f"img{i}"

    with pytest.raises(ValueError, match="no masks"):
        evaluate_baseline("gt_mask", NoMasks())
    nomask = evaluate_baseline("whole_image", NoMasks()).summary
    assert "pxap" not in nomask and nomask["gt_known_loc_acc"] == 0.0  # 16 / 64 pixels


# -- parity with the engine on a model ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cam_run(tiny_root):
    config = RunConfig(
        method="cam",
        epochs=1,
        batch_size=32,
        image_size=SIZE,
        lr=0.01,
        device="cpu",
        data_root=str(tiny_root / "data"),
        dataset_kwargs={"num_train": 64, "num_val": 16, "num_test": N_TEST},
    )
    return config, train(config, runs_dir=tiny_root / "runs", progress=False)


def test_model_numbers_unchanged_and_the_same_code_without_logits(cam_run) -> None:
    config, run = cam_run
    result = evaluate(run, progress=False, cache_maps=False)
    summary, rec = result.summary, result.records
    # evaluate's numbers, recomputed independently from its records and from the pipeline's maps
    assert summary["gt_known_loc_acc"] == pytest.approx(100.0 * (rec["a_iou"] >= 0.5).mean())
    assert summary["cls_acc_top1"] == pytest.approx(100.0 * rec["correct_top1"].mean())
    assert summary["loc_acc_top1"] == pytest.approx(100.0 * ((rec["a_iou"] >= 0.5) & rec["correct_top1"]).mean())
    _config, model = load_run(run)
    assert isinstance(model, WSOLModel)
    dataset = config.dataset_for("test")
    batch = data.collate([dataset[i] for i in range(len(dataset))])
    maps = forward_maps(model, batch.images, batch.labels)
    box = boxeval.BoxEvaluator()
    box.accumulate_batch(maps.full["a"], [b.numpy().astype(np.float64) for b in batch.boxes])
    pxap = boxeval.PxAPEvaluator()
    assert batch.masks is not None
    pxap.accumulate(maps.full["a"], batch.masks)
    expected = box.compute()
    assert summary["maxboxacc"] == expected["maxboxacc"] and summary["maxboxacc_v2"] == expected["maxboxacc_v2"]
    assert summary["pxap"] == pytest.approx(pxap.compute())
    # the same maps without a classifier (NaN logits): the same localization numbers, classification NaN
    scorer = MapScorer(PAPERS, ("a",), has_masks=True)
    scorer.add(batch, maps.full, logits=torch.full_like(maps.logits, math.nan))
    blind = scorer.summary()["a"]
    assert list(blind) == list(summary["branches"]["a"])
    for key, value in summary["branches"]["a"].items():
        if key in CLASSIFICATION_KEYS:
            assert math.isnan(blind[key]), key
        else:
            assert blind[key] == value, key
    # a baseline's summary has exactly evaluate's keys, in the same order
    baseline = evaluate_baseline("whole_image", config, split="test")
    assert list(baseline.summary) == list(summary)
    assert list(baseline.summary["branches"]["a"]) == list(summary["branches"]["a"])
    assert list(baseline.records.columns) == list(rec.columns)
