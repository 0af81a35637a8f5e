"""Fake torchvision ImageNet checkpoints for tests that must never touch the network.

A fake file has torchvision's exact keys and shapes (read from ``torchvision.models.vgg16()`` / ``resnet50()`` built
on the meta device, so nothing is allocated) and small random values; ``wsol_utils.nets.backbones`` loads it as the real
one. The ``fake_weights`` fixture of ``tests/conftest.py`` writes them once per session; :func:`install` puts them
where torchvision's cache of a ``TORCH_HOME`` expects them (as symlinks: no copy of the 60-100 MB).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import torch
import torchvision

VGG16_FILE = "vgg16-397923af.pth"
RESNET50_FILE = "resnet50-0676ba61.pth"
FILES: dict[str, str] = {"vgg16": VGG16_FILE, "resnet50": RESNET50_FILE}


def fake_state(
    model_fn: Callable[[], torch.nn.Module], keep: Callable[[str], bool], seed: int
) -> dict[str, torch.Tensor]:
    """Random tensors under torchvision's exact keys and shapes (read on the meta device: nothing allocated)."""
    with torch.device("meta"):
        shapes = {key: (value.shape, value.dtype) for key, value in model_fn().state_dict().items() if keep(key)}
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, (shape, dtype) in shapes.items():
        if not dtype.is_floating_point:
            state[key] = torch.zeros(shape, dtype=dtype)  # BatchNorm's num_batches_tracked
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=generator) + 0.5
        else:
            state[key] = torch.randn(shape, generator=generator) * 0.02
    return state


def write_fake_weights(folder: Path) -> dict[str, Path]:
    """Write the fake ImageNet files into ``folder``: VGG16's ``features.*`` (the only keys the loader reads; the real
    file's classifier is 412 MB) plus one small classifier tensor, and ResNet50's full state dict (``fc.*``
    included). Returns ``{"vgg16": path, "resnet50": path}``."""
    folder.mkdir(parents=True, exist_ok=True)
    vgg = fake_state(
        torchvision.models.vgg16, lambda key: key.startswith("features.") or key == "classifier.6.bias", seed=0
    )
    resnet = fake_state(torchvision.models.resnet50, lambda key: True, seed=1)
    paths = {name: folder / file for name, file in FILES.items()}
    torch.save(vgg, paths["vgg16"])
    torch.save(resnet, paths["resnet50"])
    return paths


def install(torch_home: Path, weights: dict[str, Path], names: Iterable[str] = tuple(FILES)) -> list[Path]:
    """Symlink ``weights[name]`` as ``<torch_home>/hub/checkpoints/<torchvision's file name>`` for each of ``names``
    (where ``torch.hub.get_dir()`` looks when ``TORCH_HOME=torch_home``). Returns the links."""
    folder = torch_home / "hub" / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    links = []
    for name in names:
        link = folder / FILES[name]
        if not link.exists():
            link.symlink_to(weights[name])
        links.append(link)
    return links
