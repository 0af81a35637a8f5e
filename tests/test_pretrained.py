"""Tests for wsol_utils.nets.pretrained: TF SAME padding, the Lite0 architecture, offline ImageNet weights."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import torch

from wsol_utils.nets import pretrained


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "expected"),
    [
        (224, 3, 2, (0, 1)),  # out 112: (111*2 + 3 - 224) = 1 -> extra pixel after
        (112, 5, 2, (1, 2)),  # out 56: (55*2 + 5 - 112) = 3
        (7, 3, 1, (1, 1)),
        (7, 5, 2, (2, 2)),  # out 4: (3*2 + 5 - 7) = 4
        (9, 1, 1, (0, 0)),
    ],
)
def test_same_padding_matches_tensorflow_formula(size, kernel, stride, expected):
    assert pretrained.same_padding(size, kernel, stride) == expected


def test_same_conv_output_is_ceil_of_input_over_stride():
    conv = pretrained.SameConv2d(1, 1, 3, stride=2, bias=False)
    assert conv(torch.zeros(1, 1, 13, 10)).shape[-2:] == (7, 5)


def test_architecture_shapes_and_cam_head():
    model = pretrained.EfficientNetLite0(num_classes=7).eval()
    images = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        features = model.features(images)
        logits = model(images)
    assert features.shape == (2, 1280, 2, 3)
    # GAP + FC: logits are the FC of the spatial mean of the features.
    torch.testing.assert_close(logits, model._fc(features.mean(dim=(2, 3))))
    assert len(model._blocks) == sum(stage[-1] for stage in pretrained.LITE0_STAGES) == 16


def test_weights_path_names_the_extra_when_missing(monkeypatch):
    real_import = importlib.import_module

    def fake_import(name, *args):
        if name == pretrained.WEIGHTS_PACKAGE:
            raise ModuleNotFoundError(name)
        return real_import(name, *args)

    monkeypatch.setattr(importlib, "import_module", fake_import)
    with pytest.raises(FileNotFoundError, match=r"\.\[pretrained\]"):
        pretrained.weights_path()


def test_preprocess_photo_scaling_and_errors():
    photo = np.zeros((10, 20, 3), np.uint8)
    photo[..., 0] = 255
    image = pretrained.preprocess_photo(photo, size=8)
    assert image.shape == (1, 3, 8, 8)
    assert torch.all(image[0, 0] == 1.0) and torch.all(image[0, 1] == -127 / 128)
    with pytest.raises(ValueError, match=r"RGB uint8 array \(H, W, 3\)"):
        pretrained.preprocess_photo(np.zeros((10, 20), np.uint8))


def test_imagenet_weights_recognise_the_scikit_image_cat():
    pytest.importorskip(pretrained.WEIGHTS_PACKAGE, reason="optional extra 'pretrained' not installed")
    skimage_data = pytest.importorskip("skimage.data")
    model = pretrained.load_efficientnet_lite0()
    with torch.no_grad():
        logits = model(pretrained.preprocess_photo(skimage_data.chelsea()))
    # ImageNet classes 281..285 are the domestic cats (tabby, tiger cat, Persian, Siamese, Egyptian).
    assert 281 <= int(logits.argmax()) <= 285


def test_cam_and_conv_forms_agree_and_maps_average_to_logits():
    torch.manual_seed(0)
    model = pretrained.EfficientNetLite0(num_classes=5).eval()
    images = torch.randn(2, 3, 64, 64)
    logits_cam, maps_cam, logits_conv, maps_conv = pretrained.cam_and_conv_forms(model, images)
    assert maps_cam.shape == maps_conv.shape == (2, 5, 2, 2)
    with torch.no_grad():
        torch.testing.assert_close(logits_cam, model(images))
    torch.testing.assert_close(maps_cam, maps_conv, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(logits_conv, maps_cam.mean(dim=(2, 3)), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(logits_cam, logits_conv, rtol=1e-5, atol=1e-5)
