"""Backbones, classifier branches and the ``cam`` / ``acol`` / ``hclnet`` models (docs/methods.md §1.1-§1.4).

One factory, :func:`create_model`, returns a plain :class:`WSOLModel` whose ``forward(images, labels=None)``
returns a :class:`WSOLOutput`. Pieces:

- **Backbone** ``features``: images ``(B, 3, H, W)`` -> features ``S`` ``(B, K, h, w)``, from
  :mod:`wsol_utils.nets.backbones` (docs/methods.md §1.2): ``vgg16`` (layouts ``14x14`` and ``28x28`` at 224 px),
  ``resnet50`` (wsoleval's, 2048 channels), both with torchvision's ImageNet weights, or ``small`` (a few
  convolutions for CPU work on the synthetic data).
- **Branch** (:class:`Branch`): ``conv(k) K->W, ReLU, conv(k) W->W, ReLU`` then a classifier, either a
  ``1x1 conv W->C`` giving class maps ``(B, C, h, w)`` whose global average gives the logits (ACoL form), or
  GAP followed by a ``Linear W->C`` (CAM form, maps ``A_c = sum_k W[c, k] S'_k + b_c``).
- **Methods**: ``cam`` (one branch, CAM form), ``acol`` (two branches, B sees ``S * (M_A < delta)``),
  ``hclnet`` (two branches, B sees ``S * (1 - M_A)``). ``M_A`` is the map of the chosen class: ``labels`` when
  given, else branch A's top-1 prediction.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from wsol_utils.nets.backbones import (
    LAYOUTS,
    PretrainedWeightsWarning,
    create_backbone,
    is_residual,
    list_backbones,
    small_backbone,
    vgg16_backbone,
    vgg16_weights_path,
)
from wsol_utils.nets.erasing import check_delta
from wsol_utils.nets.fused import fused_branch, fused_stem
from wsol_utils.nets.fusion import FUSION_METHODS, fuse
from wsol_utils.nets.maps import normalize_minmax
from wsol_utils.nets.methods import MethodOptions, get_method, list_methods

__all__ = [
    "BACKBONES",
    "LAYOUTS",
    "Branch",
    "PretrainedWeightsWarning",
    "WSOLModel",
    "WSOLOutput",
    "acol_parameter_groups",
    "cam_to_conv1x1",
    "class_map",
    "create_model",
    "feature_stride",
    "receptive_field",
    "small_backbone",
    "spatial_mean",
    "vgg16_backbone",
    "vgg16_weights_path",
]

BACKBONES = tuple(list_backbones())  # wsol_utils.nets.backbones' registry: small, vgg16, resnet50
BRANCHES = ("a", "b", "fused")

#: layers that leave the spatial geometry alone (for :func:`receptive_field`).
_POINTWISE_LAYERS = (
    nn.ReLU,
    nn.LeakyReLU,
    nn.GELU,
    nn.Sigmoid,
    nn.Tanh,
    nn.Identity,
    nn.BatchNorm2d,
    nn.GroupNorm,
    nn.Dropout,
    nn.Dropout2d,
)


@dataclass
class WSOLOutput:
    """What :meth:`WSOLModel.forward` returns (ARCHITECTURE ``wsol_utils.nets.models``).

    Attributes:
        logits_a: ``(B, C)`` branch A's logits.
        maps_a: ``(B, C, h, w)`` branch A's raw class maps.
        logits_b: ``(B, C)`` branch B's logits; ``None`` for ``cam``.
        maps_b: ``(B, C, h, w)`` branch B's raw class maps; ``None`` for ``cam``.
        features: ``(B, K, h, w)`` backbone features ``S``.
        erased: ``(B, K, h, w)`` what branch B saw; ``None`` for ``cam``.
    """

    logits_a: Tensor
    maps_a: Tensor
    logits_b: Tensor | None = None
    maps_b: Tensor | None = None
    features: Tensor | None = None
    erased: Tensor | None = None


# --------------------------------------------------------------------------------------------------------------
# Geometry: receptive field and stride, computed from the layers


def _spatial_layers(module: nn.Module) -> list[nn.Module]:
    """The layers that act on the map, in order: a model's backbone then branch A up to its class maps."""
    if isinstance(module, WSOLModel):
        return _spatial_layers(module.features) + _spatial_layers(module.branch_a)
    if isinstance(module, Branch):
        head = [] if isinstance(module.classifier, nn.Linear) else [module.classifier]
        return _spatial_layers(module.body) + head
    if isinstance(module, nn.Sequential):
        return [layer for child in module for layer in _spatial_layers(child)]
    return [module]


def _pair(value: int | tuple[int, ...]) -> int:
    """One number for a square kernel/stride/dilation; non-square ones are not needed here."""
    values = (value, value) if isinstance(value, int) else tuple(value)
    if len(set(values)) != 1:
        raise ValueError(f"receptive_field: only square kernels, strides and dilations are supported; got {values}")
    return int(values[0])


def _geometry(module: nn.Module) -> tuple[int, int]:
    """``(receptive field, stride)`` in input pixels of the last layer of ``module``.

    Standard recursion over the layers: ``rf += (k - 1) * dilation * jump``, ``jump *= stride``. Padding moves the
    field's centre, not its size, so it does not enter.
    """
    field, jump = 1, 1
    for layer in _spatial_layers(module):
        if isinstance(layer, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
            kernel, stride = _pair(layer.kernel_size), _pair(layer.stride)
            dilation = _pair(getattr(layer, "dilation", 1))
            field += (kernel - 1) * dilation * jump
            jump *= stride
        elif not isinstance(layer, _POINTWISE_LAYERS):
            raise ValueError(
                f"receptive_field: cannot tell how {type(layer).__name__} changes the geometry; "
                "use Conv2d / MaxPool2d / AvgPool2d and pointwise layers"
            )
    return field, jump


def receptive_field(module_or_model: nn.Module) -> int:
    """Receptive field, in input pixels, of one cell of the class maps (docs/methods.md §3: compare it to the part
    size).

    Args:
        module_or_model: a :class:`WSOLModel` (backbone + branch A, i.e. one cell of ``maps_a``; branch B has the
            same geometry), a :class:`Branch`, or any ``nn.Sequential`` of convolutions, pools and pointwise layers.

    Returns:
        The side of the square window of input pixels that can influence one output cell.

    Raises:
        ValueError: for residual backbones (resnet50): a skip connection mixes windows of different sizes, so the
            layer-stack formula does not apply and the field is not computed.
    """
    if is_residual(module_or_model):
        raise ValueError(
            "receptive_field: not computed for residual backbones (resnet50): skip connections mix windows of "
            "different sizes; use a plain convolution stack (small, vgg16)"
        )
    return _geometry(module_or_model)[0]


def feature_stride(module_or_model: nn.Module) -> int:
    """Distance in input pixels between two neighbouring output cells (the product of the strides).

    A :class:`WSOLModel` answers with its backbone's declared stride (``feature_stride_px``; works for ResNet too,
    the branches have stride 1); other modules are walked layer by layer.
    """
    declared = getattr(module_or_model, "feature_stride_px", None)
    if isinstance(module_or_model, WSOLModel) and declared is not None:
        return int(declared)
    return _geometry(module_or_model)[1]


# --------------------------------------------------------------------------------------------------------------
# Initialisation of the new layers (the backbones live in wsol_utils.nets.backbones)


def _init_xavier(module: nn.Module) -> None:
    """Xavier-uniform weights and zero biases for the new layers (docs/methods.md §1.2)."""
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(layer.weight)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)


# --------------------------------------------------------------------------------------------------------------
# Heads


class _SpatialMean(torch.autograd.Function):
    """``x.mean(dim=(2, 3))`` whose backward broadcasts ``g / (h w)`` as a stride-0 view of ``x``'s shape.

    PyTorch's own ``mean`` backward materializes the broadcast gradient as a contiguous NCHW tensor; when ``x`` is
    the output of an in-place ReLU in ``channels_last`` (the CAM head of the small backbone), that ReLU's backward
    then runs the slow mixed-layout path (about 10x slower). The values are the same ``g / (h w)`` either way and
    the ReLU's backward is elementwise, so the gradients are bit-identical.

    Only for a pool that follows a ReLU: a convolution's backward sums its bias gradient in the order of the
    gradient's layout, so feeding it this view instead of PyTorch's NCHW tensor changes the bias gradient in the
    last bits (seen on ACoL's 1x1 class convolution with 8-image batches); the conv-form heads keep ``mean``.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        ctx.shape = x.shape
        return x.mean(dim=(2, 3))

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        height, width = ctx.shape[2], ctx.shape[3]
        return (grad / (height * width))[:, :, None, None].expand(ctx.shape)


def spatial_mean(x: Tensor) -> Tensor:
    """Global average pool ``(B, C, h, w)`` -> ``(B, C)``: the same numbers as ``x.mean(dim=(2, 3))`` forward and
    backward, with a backward that keeps ``x``'s memory layout (see :class:`_SpatialMean`)."""
    if x.ndim != 4:
        raise ValueError(f"spatial_mean: expects a (B, C, h, w) tensor; got shape {tuple(x.shape)}")
    return _SpatialMean.apply(x)


class Branch(nn.Module):
    """One classifier branch (docs/methods.md §1.2): ``conv(k) K->W, ReLU, conv(k) W->W, ReLU`` then the classifier.

    ``classifier="conv"``: ``1x1 conv W->C`` -> maps ``(B, C, h, w)``, logits = their spatial mean (ACoL form).
    ``classifier="fc"``: GAP -> ``Linear W->C`` logits; maps ``A_c = sum_k W[c, k] S'_k + b_c`` (CAM form).
    Both give the same logits and maps for the same weights (ACoL §3.1, :func:`cam_to_conv1x1`).
    """

    def __init__(self, in_channels: int, width: int, num_classes: int, kernel_size: int = 3, classifier: str = "conv"):
        super().__init__()
        padding = kernel_size // 2
        self.body = nn.Sequential(  # in-place ReLUs: the same numbers, no new activation tensors (faster on the CPU)
            nn.Conv2d(in_channels, width, kernel_size, padding=padding),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, width, kernel_size, padding=padding),
            nn.ReLU(inplace=True),
        )
        self.classifier: nn.Module = (
            nn.Conv2d(width, num_classes, kernel_size=1) if classifier == "conv" else nn.Linear(width, num_classes)
        )
        _init_xavier(self)

    def forward(self, features: Tensor) -> tuple[Tensor, Tensor]:
        """``(B, K, h, w)`` -> ``(logits (B, C), maps (B, C, h, w))``."""
        hidden = self.body(features)
        if isinstance(self.classifier, nn.Linear):
            logits = self.classifier(spatial_mean(hidden))
            maps = torch.einsum("ck,bkhw->bchw", self.classifier.weight, hidden)
            if self.classifier.bias is not None:
                maps = maps + self.classifier.bias[:, None, None]
            return logits, maps
        maps = self.classifier(hidden)
        return maps.mean(dim=(2, 3)), maps  # not spatial_mean: see its docstring


# --------------------------------------------------------------------------------------------------------------
# The model


def _check_classes(classes: Tensor, batch: int, num_classes: int, name: str) -> None:
    """``classes`` must be an integer tensor ``(B,)`` with values in ``[0, num_classes)``."""
    integer = isinstance(classes, Tensor) and not (classes.is_floating_point() or classes.is_complex())
    if not integer or classes.shape != (batch,):
        raise ValueError(
            f"`{name}` must be an integer tensor of shape ({batch},); got "
            f"{getattr(classes, 'dtype', type(classes).__name__)} with shape {tuple(getattr(classes, 'shape', ()))}"
        )
    if batch and (int(classes.min()) < 0 or int(classes.max()) >= num_classes):
        raise ValueError(
            f"`{name}` must lie in [0, {num_classes}); got values from {int(classes.min())} to {int(classes.max())}"
        )


class WSOLModel(nn.Module):
    """A model of a registered map method (CAM, ACoL, HCLNet, :mod:`wsol_utils.nets.methods`); build it with
    :func:`create_model`.

    Attributes:
        method: the method's registry name (``"cam"``, ``"acol"``, ``"hclnet"``, ...).
        num_classes: ``C``.
        delta: ACoL threshold in ``(0, 1)`` the model was trained with; a test-time value is an argument of
            :meth:`forward` (``delta=``), never set here.
        detach_complement: HCLNet: stop the gradient through ``1 - M_A`` (default) or let it flow.
        backbone_name: ``"small"``, ``"vgg16"`` or ``"resnet50"`` (:func:`wsol_utils.nets.backbones.list_backbones`).
        pretrained_backbone: whether ImageNet weights were loaded into the backbone.
        feature_stride_px: pixels between feature cells, as the backbone declares it (``None``: walk the layers).
        channels_last: run on ``torch.channels_last`` tensors (about 2x faster for the small CNN on the CPU).
        fused_kernels: train the layers the fused CPU kernels fit (:mod:`wsol_utils.nets.fused`) with them; only
            in training mode with gradients on a float32 CPU batch (evaluation always runs PyTorch's layers).
            Set by the engine from ``RunConfig.kernels``; default ``False``.
        features / branch_a / branch_b: the backbone and the branches (``branch_b`` is ``None`` for ``cam``).
    """

    def __init__(
        self,
        method: str,
        features: nn.Module,
        branch_a: Branch,
        branch_b: Branch | None,
        *,
        num_classes: int,
        delta: float = 0.6,
        detach_complement: bool = True,
        backbone_name: str = "small",
        pretrained_backbone: bool = False,
        channels_last: bool = False,
        feature_stride_px: int | None = None,
    ):
        super().__init__()
        self.method = method
        self.num_classes = num_classes
        self.delta = delta
        self.detach_complement = detach_complement
        self.backbone_name = backbone_name
        self.pretrained_backbone = pretrained_backbone
        self.channels_last = channels_last
        self.fused_kernels = False
        self.feature_stride_px = feature_stride_px
        self.features = features
        self.branch_a = branch_a
        self.branch_b = branch_b

    def _check_images(self, images: Tensor) -> None:
        stride = feature_stride(self)  # the backbone's declared stride (ResNet blocks are not walked)
        if not isinstance(images, Tensor) or images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(
                f"{type(self).__name__}.forward: `images` must be a (B, 3, H, W) tensor; got shape "
                f"{tuple(getattr(images, 'shape', ()))}"
            )
        if not images.is_floating_point():
            raise ValueError(f"`images` must be float (normalized RGB); got {images.dtype}")
        if min(images.shape[-2:]) < stride:
            raise ValueError(
                f"`images` must be at least {stride}x{stride} px for this backbone; got {tuple(images.shape[-2:])}"
            )

    def forward(self, images: Tensor, labels: Tensor | None = None, *, delta: float | None = None) -> WSOLOutput:
        """Run the backbone, branch A and (for ``acol`` / ``hclnet``) the erasing and branch B.

        Args:
            images: ``(B, 3, H, W)`` float, ImageNet-normalized.
            labels: ``(B,)`` int class per sample whose map drives the erasing (training, GT-known metrics);
                ``None`` -> branch A's top-1 prediction. Ignored by ``cam``.
            delta: test-time erasing threshold in ``(0, 1)`` for this call (``None``: :attr:`delta`, training's);
                validated by the caller (:func:`wsol_utils.nets.erasing.check_delta`); changes branch B's input only.

        Returns:
            :class:`WSOLOutput` with maps at the features' resolution ``(h, w)``.
        """
        self._check_images(images)
        if labels is not None:
            _check_classes(labels, images.shape[0], self.num_classes, "labels")
        fused = self.fused_kernels and self.training and torch.is_grad_enabled()
        features = fused_stem(self.features, images) if fused else None  # NCHW images: no channels_last copy
        if features is None:
            features = self.features(
                images.contiguous(memory_format=torch.channels_last) if self.channels_last else images
            )
        logits_a, maps_a = self._branch(self.branch_a, features, fused)
        if self.branch_b is None:
            return WSOLOutput(logits_a=logits_a, maps_a=maps_a, features=features)
        chosen = logits_a.argmax(dim=1) if labels is None else labels
        chosen_map = maps_a[torch.arange(maps_a.shape[0], device=maps_a.device), chosen]
        erased = get_method(self.method).erase(features, chosen_map, self.options_at(delta))
        logits_b, maps_b = self._branch(self.branch_b, erased, fused)
        return WSOLOutput(logits_a, maps_a, logits_b, maps_b, features, erased)

    @staticmethod
    def _branch(branch: Branch, features: Tensor, fused: bool) -> tuple[Tensor, Tensor]:
        """``branch(features)``, by the fused kernels when ``fused`` and they fit (:func:`fused_branch`)."""
        result = fused_branch(branch.body, branch.classifier, features) if fused else None
        return branch(features) if result is None else result

    @property
    def options(self) -> MethodOptions:
        """The method options the model was built with (:meth:`options_at` ``(None)``)."""
        return self.options_at(None)

    def options_at(self, delta: float | None) -> MethodOptions:
        """The method options with test-time ``delta`` (``None``: the model's own :attr:`delta`)."""
        return MethodOptions(delta=self.delta if delta is None else delta, detach_complement=self.detach_complement)

    def backbone_parameters(self) -> list[nn.Parameter]:
        """The backbone's parameters (the ``lr`` / ``2 lr`` groups when it is pretrained)."""
        return list(self.features.parameters())

    def new_parameters(self) -> list[nn.Parameter]:
        """The branches' parameters (the ``10 lr`` / ``20 lr`` groups)."""
        return [p for branch in (self.branch_a, self.branch_b) if branch is not None for p in branch.parameters()]

    def parameter_groups(self, lr: float) -> list[dict[str, Any]]:
        """Optimizer groups of docs/methods.md §4 by :func:`acol_parameter_groups`: backbone weights ``lr``, biases
        ``2 lr``; new ones ``10 lr``, ``20 lr``.

        A backbone that is not pretrained (the small one, or VGG16 without ImageNet weights) is trained from
        scratch like the heads, so it gets the new layers' ``10 lr`` / ``20 lr``. Each group has a ``"name"``;
        frozen parameters (``requires_grad=False``) are left out.
        Pass the list to ``torch.optim.SGD(groups, lr=lr, momentum=0.9, nesterov=True, weight_decay=5e-4)``.
        """
        backbone_scale = 1.0 if self.pretrained_backbone else NEW_LAYER_SCALE
        parts = [("backbone", list(self.features.named_parameters()), backbone_scale)]
        parts += [
            ("new", list(branch.named_parameters()), NEW_LAYER_SCALE)
            for branch in (self.branch_a, self.branch_b)
            if branch is not None
        ]
        return acol_parameter_groups(parts, lr)


#: lr multiplier of the layers trained from scratch (docs/methods.md §4); a bias gets :data:`BIAS_SCALE` times more.
NEW_LAYER_SCALE = 10.0
BIAS_SCALE = 2.0


def acol_parameter_groups(
    parts: Sequence[tuple[str, Sequence[tuple[str, nn.Parameter]], float]], lr: float
) -> list[dict[str, Any]]:
    """The official ACoL optimizer groups (docs/methods.md §4), the one place the rule is written.

    ``parts``: ``(part, named parameters, scale)``, e.g. ``("backbone", ..., 1.0)`` and ``("new", ..., 10.0)``.
    A parameter whose name ends with ``"bias"`` goes to ``"<part>_biases"`` at ``lr * scale * 2``, any other to
    ``"<part>_weights"`` at ``lr * scale``; parts of one name share their groups. Frozen parameters
    (``requires_grad=False``) are left out. Returns ``[{"name", "params", "lr"}, ...]`` in order of first use
    (empty groups are absent): with pretrained backbone weights the ``1 / 2 / 10 / 20 x lr`` groups.
    """
    groups: dict[str, dict[str, Any]] = {}
    for part, named, scale in parts:
        for name, parameter in named:
            if not parameter.requires_grad:  # frozen layers stay out of the optimizer
                continue
            kind = "biases" if name.endswith("bias") else "weights"
            multiplier = scale * (BIAS_SCALE if kind == "biases" else 1.0)
            key = f"{part}_{kind}"
            group = groups.setdefault(key, {"name": key, "params": [], "lr": lr * multiplier})
            group["params"].append(parameter)
    return list(groups.values())


def create_model(
    method: str,
    *,
    num_classes: int,
    backbone: str = "small",
    layout: str = "14x14",
    delta: float = 0.6,
    detach_complement: bool = True,
    pretrained: bool | None = None,
    **backbone_kwargs: object,
) -> WSOLModel:
    """Build a CAM / ACoL / HCLNet model (docs/methods.md §1, ARCHITECTURE ``wsol_utils.nets.models``).

    Args:
        method: a registered map method (``"cam"``, ``"acol"``, ``"hclnet"``;
            :func:`wsol_utils.nets.methods.list_methods`).
        num_classes: ``C`` >= 1.
        backbone: ``"small"`` (CPU, synthetic data; from scratch), ``"vgg16"`` (the papers') or ``"resnet50"``
            (wsoleval's); :func:`wsol_utils.nets.backbones.create_backbone` builds it (docs/methods.md §1.2).
        layout: feature-map layout ``"14x14"`` (wsoleval) or ``"28x28"`` (official ACoL; ResNet50: wsoleval's
            large feature map), at 224 px; ignored by the small backbone.
        delta: ACoL erasing threshold in ``(0, 1)`` (official 0.6, wsoleval 0.7).
        detach_complement: HCLNet: no gradient through ``1 - M_A`` (default) or let it flow.
        pretrained: ImageNet weights (vgg16, resnet50; torch's cache, downloaded unless ``WSOL_OFFLINE=1``):
            ``None`` use them if they can be had, else warn and init randomly; ``True`` require them
            (FileNotFoundError naming the file, URL and TORCH_HOME); ``False`` random init. The small backbone has
            no pretrained weights (``True`` is a ValueError).
        **backbone_kwargs: ``head_width`` (default 1024 for vgg16 and resnet50, 32 small), ``head_kernel`` (3 vgg16
            and resnet50, 1 small), ``channels_last`` (False vgg16 / resnet50, True small: weights and inputs in
            that memory format); small only: ``depth``, ``width``, ``downsamples``, ``pooling``, ``feature_pool`` (see
            :func:`small_backbone`).

    Returns:
        :class:`WSOLModel` on the CPU in train mode.
    """
    if method not in list_methods():
        raise ValueError(f"create_model: unknown method {method!r}; valid methods: {list(list_methods())}")
    if backbone not in list_backbones():
        raise ValueError(f"create_model: unknown backbone {backbone!r}; valid backbones: {list_backbones()}")
    if layout not in LAYOUTS:
        raise ValueError(f"create_model: unknown layout {layout!r}; valid layouts: {list(LAYOUTS)}")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"create_model: `num_classes` must be a positive integer; got {num_classes!r}")
    built = create_backbone(backbone, layout=layout, pretrained=pretrained, **backbone_kwargs)
    features, loaded = built.features, built.pretrained
    head_width, head_kernel = built.defaults.head_width, built.defaults.head_kernel
    channels_last = built.defaults.channels_last

    def branch(classifier: str) -> Branch:
        width, kernel = int(head_width), int(head_kernel)
        return Branch(built.out_channels, width, num_classes, kernel, classifier)

    two_branches = get_method(method).two_branch
    model = WSOLModel(
        method,
        features,
        branch("conv" if two_branches else "fc"),
        branch("conv") if two_branches else None,
        num_classes=num_classes,
        delta=check_delta(delta, "create_model"),
        detach_complement=bool(detach_complement),
        backbone_name=backbone,
        pretrained_backbone=loaded,
        channels_last=channels_last,
        feature_stride_px=built.stride,
    )
    return model.to(memory_format=torch.channels_last) if channels_last else model


def cam_to_conv1x1(model: WSOLModel) -> WSOLModel:
    """Lossless CAM (GAP + FC) -> 1x1-conv class-map head (ACoL §3.1, docs/methods.md §1.1).

    Returns a copy of ``model`` whose branch A ends in a ``1x1 conv`` with the FC's weights ``W[c, k]`` and bias;
    its logits and maps equal the original's to float tolerance. A model already in conv form is copied as is.
    """
    if not isinstance(model, WSOLModel) or model.method != "cam":
        got = getattr(model, "method", type(model).__name__)
        raise ValueError(f"cam_to_conv1x1: expects a 'cam' WSOLModel; got {got!r}")
    converted = copy.deepcopy(model)
    fc = converted.branch_a.classifier
    if isinstance(fc, nn.Linear):
        conv = nn.Conv2d(fc.in_features, fc.out_features, kernel_size=1, bias=fc.bias is not None)
        conv = conv.to(device=fc.weight.device, dtype=fc.weight.dtype)
        with torch.no_grad():
            conv.weight.copy_(fc.weight[:, :, None, None])
            if fc.bias is not None:
                assert conv.bias is not None  # built with bias=True just above
                conv.bias.copy_(fc.bias)
        converted.branch_a.classifier = conv
    return converted


def class_map(
    output: WSOLOutput, classes: Tensor, fusion: str = "max", branch: str = "fused", **fusion_kwargs: object
) -> Tensor:
    """The normalized map of one class per sample (docs/methods.md §1.5, §2).

    Args:
        output: a model's :class:`WSOLOutput`.
        classes: ``(B,)`` int, the class per sample (GT for GT-known metrics, top-1 prediction for Top-1 Loc).
        fusion: ``"max"``, ``"add"`` or ``"l1"`` (``fusion_kwargs``: ``block_radius``, ``weights``) for
            ``branch="fused"``.
        branch: ``"fused"`` (two-branch models; for ``cam`` branch A), ``"a"`` or ``"b"``.

    Returns:
        ``(B, h, w)`` in ``[0, 1]``, per-sample min-max normalized (constant map -> zeros).
    """
    if branch not in BRANCHES:
        raise ValueError(f"class_map: `branch` must be one of {list(BRANCHES)}; got {branch!r}")
    if fusion not in FUSION_METHODS:
        raise ValueError(f"class_map: unknown fusion {fusion!r}; valid: {sorted(FUSION_METHODS)}")
    if branch == "b" and output.maps_b is None:
        raise ValueError("class_map: branch='b' needs a two-branch model ('acol' or 'hclnet'); this output is 'cam'")
    batch, num_classes = output.maps_a.shape[:2]
    _check_classes(classes, batch, num_classes, "classes")
    rows = torch.arange(batch, device=output.maps_a.device)
    classes = classes.to(output.maps_a.device)
    if branch == "b":
        chosen = output.maps_b[rows, classes]  # type: ignore[index]
    elif branch == "a" or output.maps_b is None:
        chosen = output.maps_a[rows, classes]
    elif fusion == "l1":  # the l1 weights use every class's map
        chosen = fuse(output.maps_a, output.maps_b, "l1", **fusion_kwargs)[rows, classes]
    else:  # max / add act per class: select first, fuse the (B, 1, h, w) maps
        pair_a, pair_b = output.maps_a[rows, classes][:, None], output.maps_b[rows, classes][:, None]
        chosen = fuse(pair_a, pair_b, fusion, **fusion_kwargs)[:, 0]
    return normalize_minmax(chosen)
