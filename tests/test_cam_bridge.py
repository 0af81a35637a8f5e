"""The bridge to the CAM libraries (wsol_utils.engine.cam_bridge): parity with the suite's CAM and scoring, bad input,
and no hook, gradient or map left behind."""

from __future__ import annotations

import gc
import weakref
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from tiny_data import tiny_run_config
from torch import Tensor, nn

from wsol_utils.data import WSOLDataset, collate
from wsol_utils.engine import evaluate, load_run, train
from wsol_utils.engine.cam_bridge import (
    ClassifierView,
    GradCamExtractor,
    MapExtractor,
    NonFiniteMapWarning,
    SuiteCamExtractor,
    TorchCamExtractor,
    check_maps,
    extractor_maps,
    map_difference,
    model_hooks,
    score_extractor,
    score_extractors,
)
from wsol_utils.nets.maps import normalize_minmax
from wsol_utils.nets.models import WSOLModel

METRICS = ("gt_known_loc_acc", "maxboxacc", "maxboxacc_v2", "pxap", "cls_acc_top1", "loc_acc_top1")


@pytest.fixture(scope="module")
def cam_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CAM run trained once for this module (a few seconds)."""
    root = tmp_path_factory.mktemp("cam_bridge")
    return train(tiny_run_config(root, epochs=4), runs_dir=root / "runs", progress=False)


@pytest.fixture(scope="module")
def loaded(cam_run: Path) -> tuple[WSOLModel, WSOLDataset]:
    config, model = load_run(cam_run)
    return model, config.dataset_for("test")


def _first_batch(dataset: WSOLDataset, count: int = 8) -> Any:
    return collate([dataset[i] for i in range(count)])


def _suite_raw(model: WSOLModel, images: Tensor, labels: Tensor) -> Tensor:
    """The suite's raw CAM of the GT class without its bias: ``W_c . S'`` ``(B, h, w)`` (docs/methods.md §1.2)."""
    with torch.no_grad():
        maps = model(images, labels).maps_a[torch.arange(len(labels)), labels]
    return maps - _classifier(model).bias.detach()[labels][:, None, None]


def _classifier(model: WSOLModel) -> nn.Linear:
    """Branch A's ``Linear W->C`` (the CAM form, docs/methods.md §1.2)."""
    classifier = model.branch_a.classifier
    assert isinstance(classifier, nn.Linear)
    return classifier


# -- the scoring is the suite's --------------------------------------------------------------------------------
def test_suite_cam_through_the_bridge_equals_evaluate(cam_run: Path) -> None:
    """The suite's own maps fed through the bridge give evaluate's numbers and records exactly."""
    ours = score_extractor(cam_run, SuiteCamExtractor())
    theirs = evaluate(cam_run, cache_maps=False, progress=False)
    for key in METRICS:
        assert ours.summary[key] == theirs.summary[key], key
    shared = list(theirs.records.columns)
    assert ours.records[shared].equals(theirs.records[shared])
    assert ours.summary["method"] == "extractor:suite CAM" and ours.summary["num_images"] == 32
    assert ours.records["map_finite"].all()
    assert 0 < ours.summary["maxboxacc"] <= 100  # not a degenerate model: some boxes hit


def test_score_extractor_takes_a_model_and_data_set(loaded: tuple[WSOLModel, WSOLDataset], cam_run: Path) -> None:
    model, dataset = loaded
    from_model = score_extractor(model, SuiteCamExtractor(), dataset=dataset, limit=10, batch_size=4)
    from_run = score_extractor(cam_run, SuiteCamExtractor(), limit=10)
    assert len(from_model.records) == 10
    assert from_model.records.drop(columns=[]).equals(from_run.records)
    with pytest.raises(ValueError, match="dataset="):
        score_extractor(model, SuiteCamExtractor())


# -- parity with the libraries ----------------------------------------------------------------------------------
def test_hand_computed_cam_equals_the_suite_and_torchcam(loaded: tuple[WSOLModel, WSOLDataset]) -> None:
    """By hand, one image: CAM_c(x, y) = sum_k W[c, k] S'_k(x, y) with S' = branch A's body of the features."""
    tcm = pytest.importorskip("torchcam.methods")
    model, dataset = loaded
    batch = _first_batch(dataset, 1)
    label = int(batch.labels[0])
    with torch.no_grad():
        hidden = model.branch_a.body(model.features(batch.images))[0]  # (W, h, w)
    weights = _classifier(model).weight[label].detach()  # (W,)
    by_hand = sum(weights[k] * hidden[k] for k in range(len(weights)))
    assert isinstance(by_hand, Tensor)
    torch.testing.assert_close(_suite_raw(model, batch.images, batch.labels)[0], by_hand, rtol=1e-5, atol=1e-5)
    torchcam = TorchCamExtractor(tcm.CAM)(ClassifierView(model), batch.images, batch.labels)
    assert isinstance(torchcam, Tensor)
    torch.testing.assert_close(torchcam[0], by_hand, rtol=1e-5, atol=1e-5)


def test_torchcam_cam_equals_the_suite_cam_map(loaded: tuple[WSOLModel, WSOLDataset], cam_run: Path) -> None:
    """torchcam's CAM (no bias, no ReLU) min-max normalized is the suite's CAM map; scored, the same numbers."""
    tcm = pytest.importorskip("torchcam.methods")
    model, dataset = loaded
    batch = _first_batch(dataset)
    theirs = TorchCamExtractor(tcm.CAM)(ClassifierView(model), batch.images, batch.labels)
    assert isinstance(theirs, Tensor) and theirs.shape == (8, 8, 8)
    suite = SuiteCamExtractor()(ClassifierView(model), batch.images, batch.labels)
    torch.testing.assert_close(normalize_minmax(theirs), suite, rtol=0, atol=1e-5)
    scored = score_extractor(cam_run, TorchCamExtractor(tcm.CAM))
    reference = evaluate(cam_run, cache_maps=False, progress=False)
    for key in ("gt_known_loc_acc", "maxboxacc", "maxboxacc_v2", "cls_acc_top1"):
        assert scored.summary[key] == reference.summary[key], key
    assert scored.summary["pxap"] == pytest.approx(reference.summary["pxap"], abs=1e-3)
    np.testing.assert_allclose(scored.records["a_iou"], reference.records["a_iou"], atol=1e-6)


def test_gradcam_of_a_gap_linear_head_is_the_relu_of_cam(loaded: tuple[WSOLModel, WSOLDataset]) -> None:
    """Grad-CAM's channel weights on a GAP + Linear head are dy_c/dS'_k averaged = W[c, k] / (h w), so its map is
    ReLU(CAM - b_c) / (h w): torchcam's unnormalized Grad-CAM exactly so at feature resolution."""
    tcm = pytest.importorskip("torchcam.methods")
    model, dataset = loaded
    batch = _first_batch(dataset)
    gradcam = TorchCamExtractor(tcm.GradCAM)(ClassifierView(model), batch.images, batch.labels)
    assert isinstance(gradcam, Tensor)
    raw = _suite_raw(model, batch.images, batch.labels)
    area = raw.shape[-1] * raw.shape[-2]
    torch.testing.assert_close(gradcam * area, raw.clamp_min(0), rtol=1e-4, atol=1e-5)
    assert (raw < 0).any()  # the ReLU matters on this model: Grad-CAM is not CAM where the map dips below 0


def test_pytorch_grad_cam_gradcam_is_the_rescaled_relu_of_cam(loaded: tuple[WSOLModel, WSOLDataset]) -> None:
    """pytorch-grad-cam's GradCAM = s(resize_bilinear(s(ReLU(CAM - b_c) / (h w)))) with its scaling
    s(x) = (x - min) / (max(x - min) + 1e-7), computed here from the suite's map."""
    pgc = pytest.importorskip("pytorch_grad_cam")
    import cv2

    model, dataset = loaded
    batch = _first_batch(dataset)
    theirs = GradCamExtractor(pgc.GradCAM)(ClassifierView(model), batch.images, batch.labels)
    assert theirs.shape == (8, 32, 32) and theirs.dtype == torch.float32

    def scale(x: np.ndarray) -> np.ndarray:
        x = x - x.min()
        return x / (1e-7 + x.max())

    raw = _suite_raw(model, batch.images, batch.labels).numpy()
    area = raw.shape[-1] * raw.shape[-2]
    expected = [scale(cv2.resize(scale(np.maximum(m / area, 0)).astype(np.float32), (32, 32))) for m in raw]
    np.testing.assert_allclose(theirs.numpy(), np.stack(expected), atol=1e-5)


@pytest.fixture(scope="module")
def acol_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cam_bridge_acol")
    return train(tiny_run_config(root, method="acol", epochs=2), runs_dir=root / "runs", progress=False)


def test_two_branch_model_parity(acol_run: Path) -> None:
    """ACoL (1x1 conv classifier): the suite's default map is evaluate's fused map, torchcam's CAM is branch A's."""
    tcm = pytest.importorskip("torchcam.methods")
    reference = evaluate(acol_run, cache_maps=False, progress=False)
    fused = score_extractor(acol_run, SuiteCamExtractor())
    branch_a = score_extractor(acol_run, TorchCamExtractor(tcm.CAM))
    keys = ("gt_known_loc_acc", "maxboxacc", "maxboxacc_v2", "cls_acc_top1")
    assert [fused.summary[k] for k in keys] == [reference.summary[k] for k in keys]
    assert [branch_a.summary[k] for k in keys] == [reference.summary["branches"]["a"][k] for k in keys]
    assert branch_a.summary["pxap"] == pytest.approx(reference.summary["branches"]["a"]["pxap"], abs=1e-3)


# -- bad input ---------------------------------------------------------------------------------------------------
class _Returns:
    """An extractor returning ``make(suite maps)``: the suite's CAM map, damaged."""

    def __init__(self, make: Any, name: str = "damaged") -> None:
        self.make, self.name = make, name
        self.last: weakref.ref[Tensor] | None = None

    def __call__(self, model: nn.Module, images: Tensor, classes: Tensor) -> Any:
        maps = self.make(SuiteCamExtractor()(model, images, classes))
        if isinstance(maps, Tensor):
            self.last = weakref.ref(maps)
        return maps


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda m: m[:, None], r"'damaged'.*shape \(8, 1, 8, 8\) for #0 .*squeeze"),
        (lambda m: m[:-1], r"'damaged'.*shape \(7, 8, 8\) for the batch of 8 images from #0"),
        (lambda m: m[:, 0], r"'damaged'.*shape \(8, 8\) for #0"),
        (lambda m: [m, m], r"'damaged' returned 2 maps .*one per layer.*#0 .*pick one target layer, or fuse"),
        (lambda m: "maps", r"'damaged' returned a str for images from #0"),
    ],
)
def test_bad_maps_are_a_clear_error(cam_run: Path, make: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        score_extractor(cam_run, _Returns(make), batch_size=8)


def test_bad_maps_name_the_image_of_a_later_batch() -> None:
    with pytest.raises(ValueError, match=r"'x'.*for #16 \(img16\)"):
        check_maps(torch.zeros(4, 1, 2, 2), "x", [f"img{i}" for i in range(16, 20)], 16)
    assert check_maps([np.ones((4, 2, 3))], "x", ["a"] * 4, 0).shape == (4, 2, 3)  # one layer: its map


def test_nan_maps_score_as_zero_maps(cam_run: Path) -> None:
    """wsoleval's rule: a map holding NaN scores as an all-zero map (box (0, 0, 0, 0)); a warning names it."""

    def with_nan(maps: Tensor) -> Tensor:
        maps = maps.clone()
        maps[3, 2, 2] = float("nan")
        return maps

    def with_zero(maps: Tensor) -> Tensor:
        maps = maps.clone()
        maps[3] = 0.0
        return maps

    with pytest.warns(NonFiniteMapWarning, match=r"'damaged'.*#3 "):
        nan = score_extractor(cam_run, _Returns(with_nan), batch_size=32)
    zero = score_extractor(cam_run, _Returns(with_zero), batch_size=32)
    suite = score_extractor(cam_run, SuiteCamExtractor(), batch_size=32)
    assert nan.records["map_finite"].tolist() == [i != 3 for i in range(32)]
    assert nan.records.loc[3, ["a_x0", "a_y0", "a_x1", "a_y1"]].tolist() == [0, 0, 0, 0]
    for key in METRICS:
        assert nan.summary[key] == zero.summary[key], key
    assert nan.records.drop(columns="map_finite").equals(zero.records.drop(columns="map_finite"))
    assert nan.records.drop(index=3).equals(suite.records.drop(index=3).assign(map_finite=True))


def test_torchcam_with_two_layers_is_refused(cam_run: Path, loaded: tuple[WSOLModel, WSOLDataset]) -> None:
    tcm = pytest.importorskip("torchcam.methods")
    model, dataset = loaded
    layers = [model.features, model.branch_a.body]
    with pytest.raises(ValueError, match=r"'torchcam GradCAM' returned 2 maps .*pick one target layer"):
        score_extractor(model, TorchCamExtractor(tcm.GradCAM, target_layer=layers), dataset=dataset, limit=4)
    assert model_hooks(model) == {}  # removed after the error too


# -- nothing left behind -----------------------------------------------------------------------------------------
def _leaves_nothing(model: WSOLModel) -> None:
    assert model_hooks(model) == {}
    for module in model.modules():
        for attr in ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_full_backward_hooks"):
            hooks = getattr(module, attr, None)
            assert not hooks, (module, attr)
    assert all(p.grad is None for p in model.parameters())


def _library_extractors() -> list[Any]:
    tcm = pytest.importorskip("torchcam.methods")
    pgc = pytest.importorskip("pytorch_grad_cam")
    return [
        TorchCamExtractor(tcm.CAM),
        TorchCamExtractor(tcm.GradCAM),
        TorchCamExtractor(tcm.LayerCAM),
        GradCamExtractor(pgc.GradCAM),
        GradCamExtractor(pgc.GradCAMPlusPlus),
    ]


class _Watched:
    """An extractor that keeps only a weak reference to the last maps it returned."""

    def __init__(self, extractor: Any) -> None:
        self.extractor, self.name = extractor, extractor.name
        self.last: weakref.ref[Tensor] | None = None

    def __call__(self, model: nn.Module, images: Tensor, classes: Tensor) -> Any:
        maps = self.extractor(model, images, classes)
        self.last = weakref.ref(maps)
        return maps


def test_library_extractors_leave_no_hook_gradient_map_or_mode_change(loaded: tuple[WSOLModel, WSOLDataset]) -> None:
    model, dataset = loaded
    model.train()
    try:
        for extractor in _library_extractors():
            watched = _Watched(extractor)
            result = score_extractor(model, watched, dataset=dataset, limit=8, batch_size=4)
            assert result.records["map_finite"].all() and len(result.records) == 8
            _leaves_nothing(model)
            assert model.training  # restored
            gc.collect()
            assert watched.last is not None and watched.last() is None, extractor.name  # no map kept alive
    finally:
        model.eval()


def test_adapters_remove_their_hooks_themselves(loaded: tuple[WSOLModel, WSOLDataset]) -> None:
    """Called directly (without score_extractor's clean-up), an adapter leaves no hook on the model."""
    model, dataset = loaded
    batch = _first_batch(dataset, 4)
    for extractor in _library_extractors():
        maps = extractor(ClassifierView(model), batch.images, batch.labels)
        assert isinstance(maps, Tensor) and maps.shape[0] == 4
        assert model_hooks(model) == {}, extractor.name
    model.zero_grad(set_to_none=True)


def test_a_leaky_extractor_is_cleaned_up(loaded: tuple[WSOLModel, WSOLDataset]) -> None:
    """An extractor that registers hooks and never removes them, and backpropagates: the bridge removes both."""
    model, dataset = loaded
    kept = model.branch_a.register_forward_hook(lambda *args: None)  # the user's own hook stays

    def leaky(maps: Tensor) -> Tensor:
        model.features.register_forward_hook(lambda *args: None)
        model.branch_a.body.register_full_backward_pre_hook(lambda *args: None)
        _classifier(model).weight.sum().backward()
        return maps

    try:
        score_extractor(model, _Returns(leaky), dataset=dataset, limit=4)
        assert model_hooks(model) == {"branch_a": {"_forward_hooks": [kept.id]}}
        assert all(p.grad is None for p in model.parameters())
    finally:
        kept.remove()


def test_no_map_is_kept_alive(loaded: tuple[WSOLModel, WSOLDataset]) -> None:
    model, dataset = loaded
    extractor = _Returns(lambda m: m.clone())
    result = score_extractor(model, extractor, dataset=dataset, limit=4)
    gc.collect()
    assert extractor.last is not None and extractor.last() is None
    assert result.maps is None


# -- many runs x many extractors, and the parity number of notebook 07 --------------------------------------------
def test_score_extractors_scores_every_run_with_its_extractors(cam_run: Path, acol_run: Path) -> None:
    """One result per run x extractor, keyed ``run key + (name,)``, each equal to score_extractor's own."""
    tcm = pytest.importorskip("torchcam.methods")
    runs = {("cam", 0): cam_run, ("acol", 0): acol_run}
    extractors: dict[tuple[str, ...], list[MapExtractor]] = {
        ("cam",): [SuiteCamExtractor(), TorchCamExtractor(tcm.CAM)],
        ("acol",): [SuiteCamExtractor()],
    }
    results = score_extractors(runs, extractors, limit=8, batch_size=4)
    assert list(results) == [("cam", 0, "suite CAM"), ("cam", 0, "torchcam CAM"), ("acol", 0, "suite CAM")]
    alone = score_extractor(acol_run, SuiteCamExtractor(), limit=8)
    assert results[("acol", 0, "suite CAM")].records.equals(alone.records)
    assert all(len(result.records) == 8 for result in results.values())
    one_list = score_extractors({("cam", 0): cam_run}, [SuiteCamExtractor()], limit=8)
    assert one_list[("cam", 0, "suite CAM")].records.equals(results[("cam", 0, "suite CAM")].records)


def test_score_extractors_refuses_a_run_without_extractors_or_two_same_names(cam_run: Path) -> None:
    with pytest.raises(ValueError, match=r"no extractors for run \('cam', 0\)"):
        score_extractors({("cam", 0): cam_run}, {("acol",): [SuiteCamExtractor()]}, limit=4)
    with pytest.raises(ValueError, match="two extractors named 'suite CAM'"):
        score_extractors({("cam", 0): cam_run}, [SuiteCamExtractor(), SuiteCamExtractor()], limit=4)


def test_map_difference_is_zero_for_torchcam_cam_and_not_for_gradcam(cam_run: Path) -> None:
    """torchcam's CAM is the suite's map (difference at float precision); Grad-CAM's ReLU makes it differ; maps of
    two resolutions are refused."""
    tcm = pytest.importorskip("torchcam.methods")
    pgc = pytest.importorskip("pytorch_grad_cam")
    assert map_difference(cam_run, TorchCamExtractor(tcm.CAM), SuiteCamExtractor(), count=16, device="auto") < 1e-5
    assert map_difference(cam_run, TorchCamExtractor(tcm.GradCAM), SuiteCamExtractor(), count=16) > 1e-2
    with pytest.raises(ValueError, match=r"shape \(8, 32, 32\).*\(8, 8, 8\)"):
        map_difference(cam_run, GradCamExtractor(pgc.GradCAM), SuiteCamExtractor(), count=8)


def test_extractor_maps_are_example_maps_of_the_same_images(cam_run: Path) -> None:
    """The suite's CAM through extractor_maps is example_maps' branch A map (same images, upsampling and scale)."""
    from wsol_utils.engine import example_maps

    maps = extractor_maps(cam_run, [SuiteCamExtractor()], count=5)
    assert list(maps) == ["suite CAM"] and maps["suite CAM"].shape == (5, 32, 32)
    np.testing.assert_allclose(maps["suite CAM"], example_maps(cam_run, count=5).maps["a"], atol=1e-6)
    with pytest.raises(ValueError, match="count=0"):
        extractor_maps(cam_run, [SuiteCamExtractor()], count=0)
