"""Backbones of the WSOL models and their ImageNet weights (docs/methods.md §1.2), in a small registry.

A backbone maps images ``(B, 3, H, W)`` to features ``S`` ``(B, K, h, w)``. Each one is a builder function
decorated with :func:`register_backbone` (the timm style); :func:`create_backbone` builds one by name and returns
a :class:`Backbone` (the module, its channels ``K``, its stride, whether ImageNet weights were loaded, and the
head settings the models use with it). Registered:

- ``small``: a few 3x3 convolutions for CPU work on the synthetic data (no pretrained weights).
- ``vgg16``: the papers' VGG16 in the ``14x14`` (wsoleval) or ``28x28`` (official ACoL) layout, 512 channels;
  ImageNet weights ``torchvision.models.VGG16_Weights.IMAGENET1K_V1``.
- ``resnet50``: wsoleval's ResNet50, torchvision's ``resnet50`` up to ``layer4`` with ``layer4``'s stride set to 1
  (its first bottleneck's ``conv2`` and ``downsample``), 2048 channels. Layout ``14x14`` is wsoleval's default
  (total stride 16, 224 px -> 14x14); ``28x28`` also sets ``layer3``'s stride to 1 (wsoleval's
  ``--large_feature_map``: stride 8, 224 px -> 28x28). ImageNet weights ``ResNet50_Weights.IMAGENET1K_V1``
  (``resnet50-0676ba61.pth``, acc@1 76.13; wsoleval's code points at ``resnet50-19c8e357.pth``, the URL
  torchvision used for its ResNet50 ImageNet weights before the weights API).

**Weights** go through torchvision's weights API: ``torch.hub.load_state_dict_from_url(weights.url, ...)`` (what
``weights.get_state_dict()`` calls) reads ``<torch.hub.get_dir()>/checkpoints/<file>`` (``$TORCH_HOME/hub``,
default ``~/.cache/torch/hub``) and downloads it there first when it is missing. The environment variable
``WSOL_OFFLINE=1`` (``--offline`` on the command lines) forbids any download: a missing file then is a
FileNotFoundError naming the file, the URL and ``TORCH_HOME``. A corrupt or foreign file (not a torch file, other
keys or shapes) is a ValueError naming the file and the fix (delete it, download it again).

``pretrained``: ``True`` the weights or an error; ``None`` the weights when they can be had (cached or downloaded),
else a :class:`PretrainedWeightsWarning` and random init (CPU / synthetic work; the training entry refuses such a
backbone for a real data set unless ``allow_random_init``); ``False`` random init (torchvision's He init).
"""

from __future__ import annotations

import inspect
import os
import sys
import warnings
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from wsol_utils.base.registry import Registry

__all__ = [
    "HEAD_OPTIONS",
    "LAYOUTS",
    "OFFLINE_ENV",
    "Backbone",
    "BackboneDefaults",
    "PretrainedWeightsWarning",
    "backbone_defaults",
    "create_backbone",
    "has_pretrained_weights",
    "is_offline",
    "list_backbones",
    "load_imagenet_state_dict",
    "register_backbone",
    "small_backbone",
    "vgg16_backbone",
    "vgg16_weights_path",
    "weights_path",
    "weights_url",
]

#: the feature-map layouts at 224 px: wsoleval's ``14x14`` and the official ACoL's ``28x28`` (docs/methods.md §1.2);
#: the one list (models, the run config and the command lines import it).
LAYOUTS: tuple[str, ...] = ("14x14", "28x28")
#: ``WSOL_OFFLINE=1`` (or true / yes / on): never download weights.
OFFLINE_ENV = "WSOL_OFFLINE"
#: options every backbone accepts: the classifier branches' settings (see :class:`BackboneDefaults`).
HEAD_OPTIONS = ("head_width", "head_kernel", "channels_last")

#: VGG16 ``features`` indices of the pools after conv4_3 and conv5_3 (torchvision numbering).
_VGG_POOL4, _VGG_POOL5 = 23, 30
_VGG16_CONFIG: list[int | str] = [
    64,
    64,
    "M",
    128,
    128,
    "M",
    256,
    256,
    256,
    "M",
    512,
    512,
    512,
    "M",
    512,
    512,
    512,
    "M",
]


class PretrainedWeightsWarning(UserWarning):
    """ImageNet weights were asked for implicitly (``pretrained=None``) but could not be had: random init."""


@dataclass(frozen=True)
class BackboneDefaults:
    """Settings of the classifier branches that go with a backbone (``create_model``'s ``backbone_kwargs``).

    Attributes:
        head_width: channels ``W`` of the branch convolutions (1024 for the papers' VGG16 and wsoleval's ResNet50).
        head_kernel: 1 or 3, kernel of the two branch convolutions.
        channels_last: run the model on ``torch.channels_last`` tensors (about 2x faster for the small CNN on the
            CPU; the CUDA training loop uses it for every backbone anyway).
    """

    head_width: int
    head_kernel: int
    channels_last: bool


@dataclass
class Backbone:
    """What :func:`create_backbone` returns.

    Attributes:
        name: the registry name.
        features: ``(B, 3, H, W) -> (B, out_channels, H / stride, W / stride)`` (VGG's pools round down).
        out_channels: ``K``, channels of the features.
        stride: pixels between neighbouring feature cells.
        pretrained: whether ImageNet weights were really loaded.
        defaults: the head settings (the backbone's defaults, overridden by those passed to :func:`create_backbone`).
    """

    name: str
    features: nn.Module
    out_channels: int
    stride: int
    pretrained: bool
    defaults: BackboneDefaults


@dataclass(frozen=True)
class _Entry:
    name: str
    builder: Callable[..., Backbone]
    defaults: BackboneDefaults
    options: dict[str, Any] = field(default_factory=dict)  # the builder's own keyword options and defaults
    weights: str | None = None  # torchvision weights, "VGG16_Weights.IMAGENET1K_V1"


_REGISTRY: Registry[_Entry] = Registry(
    "backbone",
    unknown="unknown backbone {name!r}; valid backbones: {names}",
    duplicate="register_backbone: {name!r} is already registered",
)


def register_backbone(
    name: str | None = None,
    *,
    head_width: int,
    head_kernel: int,
    channels_last: bool = False,
    weights: str | None = None,
) -> Callable[[Callable[..., Backbone]], Callable[..., Backbone]]:
    """Decorator registering a backbone builder under ``name`` (default: the function's name).

    The builder is called as ``builder(layout=..., pretrained=..., **options)`` and returns a :class:`Backbone`;
    its other keyword-only parameters (with defaults) are the backbone's own options. ``weights`` names the
    torchvision ImageNet weights (``"VGG16_Weights.IMAGENET1K_V1"``) of a backbone meant to be pretrained.
    """

    def decorate(builder: Callable[..., Backbone]) -> Callable[..., Backbone]:
        key = name or builder.__name__
        parameters = inspect.signature(builder).parameters
        options = {
            p.name: p.default
            for p in parameters.values()
            if p.kind is p.KEYWORD_ONLY and p.name not in ("layout", "pretrained")
        }
        _REGISTRY.add(
            key, _Entry(key, builder, BackboneDefaults(head_width, head_kernel, channels_last), options, weights)
        )
        return builder

    return decorate


def list_backbones() -> list[str]:
    """Registered backbone names, in registration order (``["small", "vgg16", "resnet50"]``)."""
    return list(_REGISTRY.names())


def _entry(name: str) -> _Entry:
    return _REGISTRY.get(name)


def backbone_defaults(name: str) -> dict[str, Any]:
    """Every option of backbone ``name`` with its default: the head settings and the builder's own options."""
    entry = _entry(name)
    return {
        "head_width": entry.defaults.head_width,
        "head_kernel": entry.defaults.head_kernel,
        "channels_last": entry.defaults.channels_last,
        **entry.options,
    }


def has_pretrained_weights(name: str) -> bool:
    """Whether backbone ``name`` is meant to be pretrained (has ImageNet weights): vgg16, resnet50."""
    return _entry(name).weights is not None


def create_backbone(name: str, *, layout: str = "14x14", pretrained: bool | None = None, **options: Any) -> Backbone:
    """Build a registered backbone (docs/methods.md §1.2).

    Args:
        name: one of :func:`list_backbones`.
        layout: ``"14x14"`` or ``"28x28"`` (feature map size at 224 px; the small backbone ignores it).
        pretrained: ``True`` ImageNet weights or an error; ``None`` them when available (cached, or downloaded
            unless ``WSOL_OFFLINE=1``), else a :class:`PretrainedWeightsWarning` and random init; ``False`` random.
            A backbone without weights (small) accepts ``None`` / ``False`` only.
        **options: the head settings ``head_width`` (int >= 1), ``head_kernel`` (1 or 3), ``channels_last``, and
            the backbone's own options (:func:`backbone_defaults`).

    Raises:
        ValueError: unknown name, layout or option; a corrupt or foreign weights file.
        FileNotFoundError: ``pretrained=True`` and the weights are neither cached nor downloadable.
    """
    entry = _entry(name)
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; valid layouts: {list(LAYOUTS)}")
    valid = set(HEAD_OPTIONS) | set(entry.options)
    unknown = set(options) - valid
    if unknown:
        raise ValueError(f"unknown option(s) {sorted(unknown)} for backbone {name!r}; valid: {sorted(valid)}")
    if pretrained and entry.weights is None:
        raise ValueError(f"the {name} backbone has no pretrained weights; use pretrained=None or False")
    heads = {key: options.pop(key) for key in HEAD_OPTIONS if key in options}
    defaults = replace(entry.defaults, **heads)
    width, kernel = defaults.head_width, defaults.head_kernel
    if kernel not in (1, 3) or isinstance(width, bool) or not isinstance(width, int) or width < 1:
        raise ValueError(f"need head_kernel in (1, 3) and a positive integer head_width; got {kernel!r}, {width!r}")
    defaults = replace(defaults, channels_last=bool(defaults.channels_last))
    built = entry.builder(layout=layout, pretrained=pretrained, **options)
    return replace(built, name=name, defaults=defaults)


# --------------------------------------------------------------------------------------------------------------
# ImageNet weights (torchvision's weights API, torch's cache, optional download)


def is_offline() -> bool:
    """Whether ``WSOL_OFFLINE`` forbids downloads (``1``, ``true``, ``yes``, ``on``)."""
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def _weights(name: str) -> Any:
    entry = _entry(name)
    if entry.weights is None:
        raise ValueError(f"the {name} backbone has no pretrained weights")
    import torchvision.models

    enum_name, member = entry.weights.split(".")
    return getattr(getattr(torchvision.models, enum_name), member)


def weights_url(name: str) -> str:
    """URL of backbone ``name``'s ImageNet weights (torchvision's, e.g. ``.../vgg16-397923af.pth``)."""
    return str(_weights(name).url)


def weights_path(name: str) -> Path:
    """Where torchvision caches backbone ``name``'s ImageNet weights: ``<torch.hub.get_dir()>/checkpoints/<file>``.

    ``torch.hub.get_dir()`` is ``$TORCH_HOME/hub`` (default ``~/.cache/torch/hub``).
    """
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(str(_weights(name).url)).name


def vgg16_weights_path() -> Path:
    """Where torchvision caches ``VGG16_Weights.IMAGENET1K_V1`` (``.../checkpoints/vgg16-397923af.pth``)."""
    return weights_path("vgg16")


def _torch_home() -> str:
    value = os.environ.get("TORCH_HOME")
    return f"TORCH_HOME={value}" if value else "TORCH_HOME unset, so torch's cache is ~/.cache/torch"


def _how_to_get(name: str, path: Path) -> str:
    return (
        f"download {weights_url(name)} to {path} (or run once online without WSOL_OFFLINE / --offline, which "
        f"downloads it there), or set TORCH_HOME to a folder whose hub/checkpoints/ holds {path.name} "
        f"({_torch_home()})"
    )


def _missing(name: str, path: Path, reason: str, required: bool) -> None:
    """Raise (``required``) or warn that the weights are missing; returns when it warned."""
    message = f"ImageNet {_DISPLAY.get(name, name)} weights not available: {reason}; {_how_to_get(name, path)}"
    if required:
        raise FileNotFoundError(f"pretrained=True: {message}.")
    warnings.warn(
        f"{message}. The {name} backbone is randomly initialized (pass pretrained=False to silence this).",
        PretrainedWeightsWarning,
        stacklevel=4,
    )


def load_imagenet_state_dict(name: str, *, required: bool) -> dict[str, Tensor] | None:
    """torchvision's ImageNet state dict of backbone ``name`` (all keys, as in the file), on the CPU.

    Reads the cached file, downloading it first unless :func:`is_offline` (``torch.hub.load_state_dict_from_url``,
    what ``weights.get_state_dict()`` calls, with ``model_dir`` = the cache folder).

    Args:
        name: a backbone with weights (``vgg16``, ``resnet50``).
        required: missing weights raise FileNotFoundError (naming the file, the URL, ``TORCH_HOME``) instead of
            warning (:class:`PretrainedWeightsWarning`) and returning ``None``.

    Raises:
        ValueError: the file exists but is not a readable torch state dict (delete it / download it again).
    """
    path, url = weights_path(name), weights_url(name)
    if not path.is_file() and is_offline():
        _missing(name, path, f"{path} does not exist and downloads are off ({OFFLINE_ENV}=1 / --offline)", required)
        return None
    try:
        state = torch.hub.load_state_dict_from_url(
            url,
            model_dir=str(path.parent),
            map_location="cpu",
            progress=sys.stderr.isatty(),
            file_name=path.name,
            weights_only=True,
        )
    except Exception as error:  # network or unpickling errors alike: say which file and what to do
        if not path.is_file():  # the download failed (no file was written)
            _missing(
                name,
                path,
                f"{path} does not exist and downloading {url} failed ({type(error).__name__}: {error})",
                required,
            )
            return None
        raise ValueError(_bad_file(name, path, f"cannot read it ({type(error).__name__}: {error})")) from error
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ValueError(_bad_file(name, path, "it does not hold a state dict of tensors"))
    return state


#: names in messages
_DISPLAY = {"vgg16": "VGG16", "resnet50": "ResNet50"}


def _bad_file(name: str, path: Path, problem: str) -> str:
    return (
        f"{path} is not torchvision's {_DISPLAY.get(name, name)} ImageNet checkpoint: {problem}. Delete it and "
        f"download it again from {weights_url(name)} (a run without WSOL_OFFLINE / --offline does it)."
    )


def _load_pretrained(
    name: str, module: nn.Module, pretrained: bool | None, select: Callable[[dict[str, Tensor]], dict[str, Tensor]]
) -> bool:
    """Load ``select(state)`` of backbone ``name``'s ImageNet weights into ``module`` (strict); whether it did."""
    if pretrained is False:
        return False
    state = load_imagenet_state_dict(name, required=pretrained is True)
    if state is None:
        return False
    try:
        module.load_state_dict(select(state))
    except RuntimeError as error:  # missing / unexpected keys or wrong shapes: another network's file
        summary = str(error).strip().splitlines()
        detail = " ".join(line.strip() for line in summary[:3])[:400]
        raise ValueError(_bad_file(name, weights_path(name), f"its keys or shapes do not match ({detail})")) from error
    return True


# --------------------------------------------------------------------------------------------------------------
# Builders


def _init_kaiming(module: nn.Module) -> None:
    """He init for convolutions trained from scratch (torchvision's VGG init): normal, fan_out, zero bias."""
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d):
            nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu")
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)


def _stage_sizes(depth: int, stages: int) -> list[int]:
    """Split ``depth`` convolutions over ``stages`` stages as evenly as possible, extra ones at the end."""
    base, extra = divmod(depth, stages)
    return [base + (1 if stage >= stages - extra else 0) for stage in range(stages)]


def small_backbone(
    depth: int = 3, width: int = 8, downsamples: int = 2, pooling: str = "max", feature_pool: bool = False
) -> nn.Sequential:
    """A small VGG-like CNN for CPU work on the synthetic data set (64 px images).

    ``depth`` 3x3 convolutions (pad 1, ReLU) in ``downsamples + 1`` stages separated by 2x2 stride-2 pools;
    stage ``s`` has ``width * 2**s`` channels. A max pool comes *before* the ReLU of its stage's last conv:
    ``maxpool(relu(x)) == relu(maxpool(x))`` exactly, forward and backward (ReLU is monotone; where a window's
    maximum is <= 0 both orders give a zero gradient), and the ReLU then runs on a 4x smaller tensor.
    The defaults give 64 px -> 16x16 features with 32 channels and a receptive field of 18 px (conv, pool, conv,
    pool, conv). Each extra conv in the last stage adds 8 px; see ``wsol_utils.nets.models.receptive_field`` and
    docs/methods.md §3.2 for why the field should stay close to the size of the object's parts.

    Args:
        depth: number of convolutions (>= ``downsamples + 1``).
        width: channels of the first stage.
        downsamples: number of stride-2 pools (total stride ``2**downsamples``).
        pooling: ``"max"`` or ``"avg"`` for those pools.
        feature_pool: append the VGG design's 3x3 stride-1 average pool (adds ``2 * stride`` px to the field).

    Returns:
        ``nn.Sequential`` ``(B, 3, H, W) -> (B, width * 2**downsamples, H / 2**downsamples, W / 2**downsamples)``.
    """
    for key, value, low in (("depth", depth, downsamples + 1), ("width", width, 1), ("downsamples", downsamples, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"small backbone: `{key}` must be an integer >= {low}; got {value!r}")
    if pooling not in ("max", "avg"):
        raise ValueError(f"small backbone: `pooling` must be 'max' or 'avg'; got {pooling!r}")
    pool = nn.MaxPool2d if pooling == "max" else nn.AvgPool2d
    layers: list[nn.Module] = []
    channels = 3
    for stage, convs in enumerate(_stage_sizes(depth, downsamples + 1)):
        if stage > 0:
            layers.insert(len(layers) - 1 if pooling == "max" else len(layers), pool(kernel_size=2, stride=2))
        for _ in range(convs):
            layers += [nn.Conv2d(channels, width * 2**stage, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            channels = width * 2**stage
    if feature_pool:
        layers.append(nn.AvgPool2d(kernel_size=3, stride=1, padding=1))
    features = nn.Sequential(*layers)
    _init_kaiming(features)
    return features


def vgg16_backbone(layout: str = "14x14", pretrained: bool | None = None) -> tuple[nn.Sequential, bool]:
    """VGG16 up to conv5_3 in one of the papers' layouts, then a 3x3 stride-1 average pool (docs/methods.md §1.2).

    Layers and indices are torchvision's ``vgg16().features`` (so its ImageNet state dict loads), with:
    ``14x14``: pool5 (index 30) becomes a 3x3 stride-1 pad-1 max pool (total stride 16, 224 px -> 14x14);
    ``28x28``: pool4 (23) and pool5 (30) both become 3x3 stride-1 pad-1 max pools (stride 8, 224 -> 28x28).
    Index 31 is the 3x3 stride-1 pad-1 average pool (zero padding counted, as ``F.avg_pool2d`` in wsoleval).
    The other pools stay torchvision's 2x2 stride 2 (wsoleval's ACoL uses 3x3 stride-2 pad-1 ones: same sizes).

    Args:
        layout: ``"14x14"`` or ``"28x28"``.
        pretrained: see :func:`create_backbone`; random init is He (as torchvision).

    Returns:
        ``(features, loaded)``: the module ``(B, 3, H, W) -> (B, 512, H/16 or H/8, ...)`` and whether ImageNet
        weights were loaded.
    """
    from torchvision.models.vgg import make_layers

    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; valid layouts: {list(LAYOUTS)}")
    features = make_layers(_VGG16_CONFIG, batch_norm=False)
    features[_VGG_POOL5] = nn.MaxPool2d(kernel_size=3, stride=1, padding=1)
    if layout == "28x28":
        features[_VGG_POOL4] = nn.MaxPool2d(kernel_size=3, stride=1, padding=1)
    features.append(nn.AvgPool2d(kernel_size=3, stride=1, padding=1))
    _init_kaiming(features)

    def select(state: dict[str, Tensor]) -> dict[str, Tensor]:
        return {key.removeprefix("features."): value for key, value in state.items() if key.startswith("features.")}

    return features, _load_pretrained("vgg16", features, pretrained, select)


def _set_stride_one(layer: nn.Sequential) -> None:
    """Make a ResNet stage keep the resolution: its first bottleneck's ``conv2`` and ``downsample`` get stride 1."""
    from torchvision.models.resnet import Bottleneck

    block = layer[0]
    assert isinstance(block, Bottleneck)
    block.conv2.stride = (1, 1)
    if block.downsample is not None:
        downsample = block.downsample[0]
        assert isinstance(downsample, nn.Conv2d)
        downsample.stride = (1, 1)
    block.stride = 1


def resnet50_backbone(layout: str = "14x14", pretrained: bool | None = None) -> tuple[nn.Sequential, bool]:
    """wsoleval's ResNet50 trunk: torchvision ``resnet50`` up to ``layer4``, ``layer4`` at stride 1.

    Children ``conv1, bn1, relu, maxpool, layer1..layer4`` keep torchvision's names, so its ImageNet state dict
    (without ``fc.*``) loads strictly. ``14x14`` (wsoleval's default): total stride 16, 224 px -> 14x14;
    ``28x28`` (wsoleval's ``large_feature_map``): ``layer3`` at stride 1 too, total stride 8, 224 px -> 28x28.
    Output ``(B, 2048, H / stride, W / stride)`` (for ``H`` a multiple of 32). Random init: torchvision's (He
    fan_out for convolutions, BatchNorm weight 1 and bias 0).
    """
    from torchvision.models.resnet import Bottleneck, ResNet

    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; valid layouts: {list(LAYOUTS)}")
    net = ResNet(Bottleneck, [3, 4, 6, 3])
    _set_stride_one(net.layer4)
    if layout == "28x28":
        _set_stride_one(net.layer3)
    names = ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4")
    features = nn.Sequential(OrderedDict((key, getattr(net, key)) for key in names))

    def select(state: dict[str, Tensor]) -> dict[str, Tensor]:
        return {key: value for key, value in state.items() if not key.startswith("fc.")}

    return features, _load_pretrained("resnet50", features, pretrained, select)


def _out_channels(features: nn.Module) -> int:
    """Output channels of a plain convolution stack (its last ``Conv2d``)."""
    convs = [layer for layer in features.modules() if isinstance(layer, nn.Conv2d)]
    return convs[-1].out_channels


def _unset() -> BackboneDefaults:
    return BackboneDefaults(0, 0, False)  # create_backbone fills in the registered defaults


@register_backbone(head_width=32, head_kernel=1, channels_last=True)
def small(
    *,
    layout: str,
    pretrained: bool | None,
    depth: int = 3,
    width: int = 8,
    downsamples: int = 2,
    pooling: str = "max",
    feature_pool: bool = False,
) -> Backbone:
    """The small CPU backbone (:func:`small_backbone`); no pretrained weights, ``layout`` is ignored.

    Heads: 1x1 convolutions of width 32 (the receptive field stays the backbone's 18 px).
    """
    features = small_backbone(depth, width, downsamples, pooling, feature_pool)
    return Backbone("small", features, _out_channels(features), 2**downsamples, False, _unset())


@register_backbone(head_width=1024, head_kernel=3, channels_last=False, weights="VGG16_Weights.IMAGENET1K_V1")
def vgg16(*, layout: str, pretrained: bool | None) -> Backbone:
    """The papers' VGG16 (:func:`vgg16_backbone`), 512 channels, stride 16 (``14x14``) or 8 (``28x28``).

    Heads: the papers' branch, 3x3 convolutions 512 -> 1024 -> 1024 (docs/methods.md §1.2).
    """
    features, loaded = vgg16_backbone(layout, pretrained)
    return Backbone("vgg16", features, 512, 16 if layout == "14x14" else 8, loaded, _unset())


@register_backbone(head_width=1024, head_kernel=3, channels_last=False, weights="ResNet50_Weights.IMAGENET1K_V1")
def resnet50(*, layout: str, pretrained: bool | None) -> Backbone:
    """wsoleval's ResNet50 (:func:`resnet50_backbone`), 2048 channels, stride 16 (``14x14``) or 8 (``28x28``).

    Heads: wsoleval's ResNet50-ACoL classifiers, 3x3 convolutions 2048 -> 1024 -> 1024 then the 1x1 class
    convolution, used here for all three methods (wsoleval's ResNet CAM has no branch convolutions, only the FC;
    ``head_kernel=1`` comes closer to it).
    """
    features, loaded = resnet50_backbone(layout, pretrained)
    return Backbone("resnet50", features, 2048, 16 if layout == "14x14" else 8, loaded, _unset())


def is_residual(module: nn.Module) -> bool:
    """Whether ``module`` contains torchvision residual blocks (whose geometry is not a plain layer stack)."""
    if "torchvision.models.resnet" not in sys.modules:  # nothing can hold one: skip importing torchvision
        return False
    from torchvision.models.resnet import BasicBlock, Bottleneck

    return any(isinstance(layer, (BasicBlock, Bottleneck)) for layer in module.modules())
