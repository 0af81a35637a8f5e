"""Backbones and their ImageNet weights (wsol_utils.nets.backbones, docs/methods.md §1.2), and the engine's refusal of a
random VGG16 / ResNet50 on real data.

Never touches the network: every test runs with an empty temporary ``TORCH_HOME`` and either ``WSOL_OFFLINE=1``,
a mocked ``torch.hub.load_state_dict_from_url`` or a local ``file://`` URL. Fake checkpoints have torchvision's
exact keys and shapes (read from ``torchvision.models.vgg16()`` / ``resnet50()`` built on the meta device) and
random values; they are written once per session.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
import torchvision
from fake_weights import RESNET50_FILE, VGG16_FILE
from torch import nn

from wsol_utils.engine import CheckpointError, RunConfig, load_run, train
from wsol_utils.engine import checkpoint as ckpt
from wsol_utils.nets import backbones
from wsol_utils.nets.backbones import PretrainedWeightsWarning, create_backbone, vgg16_backbone
from wsol_utils.nets.models import create_model, feature_stride, receptive_field

# --------------------------------------------------------------------------------------------------------------
# fixtures (the session's fake ImageNet files: the ``fake_weights`` fixture of conftest.py, tests/fake_weights.py)


@pytest.fixture
def torch_home(tmp_path, monkeypatch) -> Path:
    """An empty ``TORCH_HOME``; downloads allowed but the network is never reached (``download_url_to_file`` fails
    the test unless a test replaces it or uses a file:// URL)."""
    home = tmp_path / "torch_home"
    monkeypatch.setenv("TORCH_HOME", str(home))
    monkeypatch.delenv(backbones.OFFLINE_ENV, raising=False)
    assert Path(torch.hub.get_dir()) == home / "hub"
    real_download = torch.hub.download_url_to_file

    def no_network(url, *args, **kwargs):
        if not str(url).startswith("file://"):
            raise AssertionError(f"test tried to download {url}")
        return real_download(url, *args, **kwargs)

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    return home


@pytest.fixture
def offline(torch_home, monkeypatch) -> Path:
    monkeypatch.setenv(backbones.OFFLINE_ENV, "1")
    return torch_home


def _cache(name: str, source: Path) -> Path:
    """Put a fake file where torchvision caches ``name``'s weights (a symlink: no copy of the 60-100 MB)."""
    target = backbones.weights_path(name)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.symlink_to(source)
    return target


# --------------------------------------------------------------------------------------------------------------
# registry


def test_registry_lists_the_backbones_and_their_defaults():
    assert backbones.list_backbones() == ["small", "vgg16", "resnet50"]
    assert backbones.backbone_defaults("small") == {
        "head_width": 32,
        "head_kernel": 1,
        "channels_last": True,
        "depth": 3,
        "width": 8,
        "downsamples": 2,
        "pooling": "max",
        "feature_pool": False,
    }
    assert backbones.backbone_defaults("vgg16") == {"head_width": 1024, "head_kernel": 3, "channels_last": False}
    assert backbones.backbone_defaults("resnet50") == {"head_width": 1024, "head_kernel": 3, "channels_last": False}
    assert [backbones.has_pretrained_weights(n) for n in backbones.list_backbones()] == [False, True, True]
    assert backbones.weights_path("vgg16").name == VGG16_FILE
    assert backbones.weights_path("resnet50").name == RESNET50_FILE
    assert backbones.weights_url("resnet50") == torchvision.models.ResNet50_Weights.IMAGENET1K_V1.url


def test_register_backbone_adds_a_builder_and_refuses_duplicates(monkeypatch):
    monkeypatch.setattr(backbones, "_REGISTRY", backbones._REGISTRY.copy())

    @backbones.register_backbone(head_width=4, head_kernel=1)
    def tiny(*, layout, pretrained, channels: int = 2):
        conv = nn.Conv2d(3, channels, 3, stride=2, padding=1)
        return backbones.Backbone("tiny", conv, channels, 2, False, backbones.BackboneDefaults(0, 0, False))

    assert "tiny" in backbones.list_backbones()
    assert backbones.backbone_defaults("tiny") == {
        "head_width": 4,
        "head_kernel": 1,
        "channels_last": False,
        "channels": 2,
    }
    built = create_backbone("tiny", channels=5, head_width=7)
    assert (built.out_channels, built.stride, built.defaults.head_width) == (5, 2, 7)
    with pytest.raises(ValueError, match="already registered"):
        backbones.register_backbone("tiny", head_width=1, head_kernel=1)(tiny)


@pytest.mark.parametrize(
    ("name", "kwargs", "match"),
    [
        ("resnet", {}, "unknown backbone"),
        ("vgg16", {"layout": "7x7"}, "unknown layout"),
        ("resnet50", {"depth": 3}, r"unknown option\(s\) \['depth'\]"),
        ("small", {"pretrained": True}, "no pretrained"),
        ("small", {"head_kernel": 5}, "head_kernel"),
        ("small", {"head_width": 0}, "head_width"),
    ],
)
def test_bad_arguments(name, kwargs, match):
    with pytest.raises(ValueError, match=match):
        create_backbone(name, **kwargs)


@pytest.mark.parametrize(
    ("name", "layout", "stride", "channels"),
    [
        ("small", "14x14", 4, 32),
        ("vgg16", "14x14", 16, 512),
        ("vgg16", "28x28", 8, 512),
        ("resnet50", "14x14", 16, 2048),
        ("resnet50", "28x28", 8, 2048),
    ],
)
def test_declared_geometry_matches_the_features_at_224(name, layout, stride, channels):
    with torch.device("meta"):  # shapes only
        built = create_backbone(name, layout=layout, pretrained=False)
        out = built.features(torch.empty(1, 3, 224, 224))
    assert (built.stride, built.out_channels, built.pretrained) == (stride, channels, False)
    assert out.shape == (1, channels, 224 // stride, 224 // stride)
    if name != "resnet50":  # a plain layer stack: the walked stride agrees with the declared one
        assert feature_stride(built.features) == stride


def test_small_defaults_and_overrides():
    built = create_backbone("small", width=4, head_width=16, channels_last=0)
    assert built.out_channels == 16 and built.stride == 4
    assert built.defaults == backbones.BackboneDefaults(head_width=16, head_kernel=1, channels_last=False)


@pytest.mark.parametrize("channels_last", [False, True])
def test_small_max_pool_before_relu_is_exact(channels_last: bool):
    """The small backbone max-pools before its stage's last ReLU; against the textbook order (ReLU, then pool) on the
    same weights, outputs and every gradient are bit-identical, ties and all-negative windows included."""
    from wsol_utils.nets.backbones import small_backbone

    torch.manual_seed(0)
    ours = small_backbone(depth=3, width=4, downsamples=2)
    kinds = [type(layer).__name__ for layer in ours]
    assert kinds == ["Conv2d", "MaxPool2d", "ReLU", "Conv2d", "MaxPool2d", "ReLU", "Conv2d", "ReLU"]
    textbook = nn.Sequential(*[ours[i] for i in (0, 2, 1, 3, 5, 4, 6, 7)])
    images = torch.randn(6, 3, 16, 16)
    images[0] = -1.0  # every first-conv window ties (and its maximum may be <= 0)
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    grads = []
    for net in (ours, textbook):
        net.zero_grad()
        x = images.clone().requires_grad_()
        out = net(x)
        (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
        grads.append([out.detach(), x.grad] + [torch.clone(p.grad) for p in net.parameters() if p.grad is not None])
    assert len(grads[0]) == len(grads[1]) == 2 + len(list(ours.parameters()))
    assert all(torch.equal(a, b) for a, b in zip(*grads, strict=True))
    avg = small_backbone(depth=2, width=4, downsamples=1, pooling="avg")
    assert [type(layer).__name__ for layer in avg] == ["Conv2d", "ReLU", "AvgPool2d", "Conv2d", "ReLU"]


# --------------------------------------------------------------------------------------------------------------
# VGG16 layers (moved from test_models.py)


def test_vgg16_layers_follow_spec():
    with torch.device("meta"):
        features, loaded = vgg16_backbone("14x14", pretrained=False)
        features_28, _ = vgg16_backbone("28x28", pretrained=False)
    assert not loaded
    pool4, pool5, avg = features[23], features[30], features[31]
    assert (pool4.kernel_size, pool4.stride) == (2, 2)
    assert (pool5.kernel_size, pool5.stride, pool5.padding) == (3, 1, 1) and isinstance(pool5, nn.MaxPool2d)
    assert (avg.kernel_size, avg.stride, avg.padding) == (3, 1, 1) and isinstance(avg, nn.AvgPool2d)
    assert sum(isinstance(layer, nn.Conv2d) for layer in features) == 13
    assert feature_stride(features) == 16
    assert receptive_field(features[:30]) == 196  # VGG16 conv5_3, the classic number
    assert (features_28[23].kernel_size, features_28[23].stride) == (3, 1)
    assert feature_stride(features_28) == 8


# --------------------------------------------------------------------------------------------------------------
# ResNet50 (wsoleval's layout)


def test_resnet50_layout_follows_wsoleval():
    with torch.device("meta"):
        wsoleval = create_backbone("resnet50", layout="14x14", pretrained=False).features
        large = create_backbone("resnet50", layout="28x28", pretrained=False).features
    assert [name for name, _ in wsoleval.named_children()] == [
        "conv1",
        "bn1",
        "relu",
        "maxpool",
        "layer1",
        "layer2",
        "layer3",
        "layer4",
    ]
    for features, layer3_stride in ((wsoleval, 2), (large, 1)):
        layer = features.get_submodule  # "layer4.0.conv2" is features.layer4[0].conv2
        assert layer("layer4.0.conv2").stride == (1, 1) and layer("layer4.0.downsample.0").stride == (1, 1)
        assert layer("layer3.0.conv2").stride == (layer3_stride,) * 2
        assert layer("layer3.0.downsample.0").stride == (layer3_stride,) * 2
        assert layer("layer2.0.conv2").stride == (2, 2)
    with torch.device("meta"):
        reference = {k for k in torchvision.models.resnet50().state_dict() if not k.startswith("fc.")}
    assert set(wsoleval.state_dict()) == reference  # torchvision's names: the ImageNet file loads strictly


@pytest.mark.parametrize(("layout", "size"), [("14x14", 14), ("28x28", 28)])
@pytest.mark.parametrize("method", ["cam", "acol", "hclnet"])
def test_resnet50_models_give_wsolevals_map_sizes_at_224(method, layout, size):
    with torch.device("meta"):  # shapes only
        model = create_model(method, num_classes=200, backbone="resnet50", layout=layout, pretrained=False)
        out = model(torch.empty(1, 3, 224, 224))
    assert out.maps_a.shape == (1, 200, size, size) and out.features.shape == (1, 2048, size, size)
    assert model.branch_a.body[0].in_channels == 2048 and model.branch_a.body[0].out_channels == 1024
    assert model.branch_a.body[0].kernel_size == (3, 3)  # wsoleval's ResNet50-ACoL classifier
    if method != "cam":
        assert out.maps_b.shape == (1, 200, size, size) and out.erased.shape == (1, 2048, size, size)


@pytest.mark.parametrize("method", ["cam", "acol", "hclnet"])
def test_resnet50_models_run_forward_and_backward_on_cpu(method):
    torch.manual_seed(0)
    model = create_model(method, num_classes=3, backbone="resnet50", layout="28x28", pretrained=False, head_width=16)
    assert not model.pretrained_backbone and model.backbone_name == "resnet50"
    assert feature_stride(model) == model.feature_stride_px == 8
    out = model(torch.randn(1, 3, 64, 64), torch.tensor([2]))  # 64 px -> 8x8 (224 px -> 28x28)
    assert out.maps_a.shape == (1, 3, 8, 8) and out.features.shape == (1, 2048, 8, 8)
    assert (out.maps_b is None) == (method == "cam")
    loss = out.logits_a.sum() if out.logits_b is None else out.logits_a.sum() + out.logits_b.sum()
    loss.backward()
    conv1, conv3 = model.features.get_submodule("conv1"), model.features.get_submodule("layer4.2.conv3")
    assert conv1.weight.grad is not None and conv3.weight.grad is not None
    with pytest.raises(ValueError, match="at least 8x8"):
        model(torch.randn(1, 3, 4, 4))


def test_receptive_field_refuses_residual_backbones_clearly():
    with torch.device("meta"):
        model = create_model("acol", num_classes=3, backbone="resnet50", pretrained=False, head_width=8)
    with pytest.raises(ValueError, match="not computed for residual backbones"):
        receptive_field(model)
    with pytest.raises(ValueError, match="not computed for residual backbones"):
        receptive_field(model.features)
    assert feature_stride(model) == 16  # the declared stride


# --------------------------------------------------------------------------------------------------------------
# ImageNet weights: cache, offline switch, download, corrupt and foreign files


@pytest.mark.parametrize("name", ["vgg16", "resnet50"])
def test_cached_file_is_used_without_network(torch_home, fake_weights, name):
    _cache(name, fake_weights[name])
    saved = torch.load(fake_weights[name], weights_only=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        built = create_backbone(name, layout="28x28", pretrained=True)
    assert built.pretrained
    loaded = built.features.state_dict()
    if name == "vgg16":
        torch.testing.assert_close(loaded["28.weight"], saved["features.28.weight"], rtol=0, atol=0)
        torch.testing.assert_close(loaded["0.bias"], saved["features.0.bias"], rtol=0, atol=0)
    else:
        assert set(loaded) == {k for k in saved if not k.startswith("fc.")}
        for key in ("conv1.weight", "layer4.0.downsample.0.weight", "layer3.5.bn3.running_var"):
            torch.testing.assert_close(loaded[key], saved[key], rtol=0, atol=0)


def test_offline_cached_file_is_used_and_pretrained_resnet_counts_as_pretrained(offline, fake_weights):
    _cache("resnet50", fake_weights["resnet50"])
    model = create_model("acol", num_classes=3, backbone="resnet50", head_width=8)  # pretrained=None
    assert model.pretrained_backbone
    lrs = {group["name"]: group["lr"] for group in model.parameter_groups(0.1)}
    assert lrs == pytest.approx(
        {"backbone_weights": 0.1, "backbone_biases": 0.2, "new_weights": 1.0, "new_biases": 2.0}
    )


@pytest.mark.parametrize("name", ["vgg16", "resnet50"])
def test_offline_and_missing_is_a_clear_error(offline, name):
    path, url = backbones.weights_path(name), backbones.weights_url(name)
    with pytest.raises(FileNotFoundError) as info:
        create_backbone(name, pretrained=True)
    message = str(info.value)
    assert str(path) in message and url in message and f"TORCH_HOME={offline}" in message
    assert "WSOL_OFFLINE" in message
    with pytest.warns(PretrainedWeightsWarning, match=path.name):
        assert not create_backbone(name, pretrained=None).pretrained
    assert not path.exists()


def test_download_lands_in_torch_home_and_is_loaded(torch_home, fake_weights, monkeypatch):
    source = fake_weights["vgg16"]
    monkeypatch.setattr(backbones, "weights_url", lambda name: source.as_uri())  # file:// instead of the network
    built = create_backbone("vgg16", pretrained=True)
    target = torch_home / "hub" / "checkpoints" / VGG16_FILE
    assert built.pretrained and target.is_file() and not target.is_symlink()
    assert target.read_bytes() == source.read_bytes()
    saved = torch.load(source, weights_only=True)
    assert isinstance(built.features, nn.Sequential)
    torch.testing.assert_close(built.features[2].weight, saved["features.2.weight"], rtol=0, atol=0)


def test_download_goes_through_the_weights_url_into_the_cache(torch_home, fake_weights, monkeypatch):
    calls = []

    def fake_load(
        url, model_dir=None, map_location=None, progress=True, check_hash=False, file_name=None, weights_only=False
    ):
        calls.append((url, model_dir, file_name, weights_only))
        target = Path(model_dir) / file_name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(fake_weights["resnet50"].read_bytes())
        return torch.load(target, map_location=map_location, weights_only=weights_only)

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", fake_load)
    assert create_backbone("resnet50", pretrained=None).pretrained
    assert calls == [
        (
            torchvision.models.ResNet50_Weights.IMAGENET1K_V1.url,
            str(torch_home / "hub" / "checkpoints"),
            RESNET50_FILE,
            True,
        )
    ]


def test_failed_download_is_an_error_or_a_warning(torch_home, tmp_path, monkeypatch):
    missing = (tmp_path / "nowhere" / VGG16_FILE).as_uri()
    monkeypatch.setattr(backbones, "weights_url", lambda name: missing)
    with pytest.raises(FileNotFoundError, match=r"downloading .* failed"):
        create_backbone("vgg16", pretrained=True)
    with pytest.warns(PretrainedWeightsWarning, match="randomly initialized"):
        assert not create_backbone("vgg16", pretrained=None).pretrained
    assert not backbones.weights_path("vgg16").exists()


@pytest.mark.parametrize("pretrained", [True, None])
def test_corrupt_file_is_a_clear_error(offline, pretrained):
    path = backbones.weights_path("resnet50")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"<html>captive portal</html>")
    with pytest.raises(ValueError, match="cannot read") as info:
        create_backbone("resnet50", pretrained=pretrained)
    assert str(path) in str(info.value) and "Delete it and download it again" in str(info.value)


@pytest.mark.parametrize(("name", "other"), [("vgg16", "resnet50"), ("resnet50", "vgg16")])
def test_foreign_file_is_a_clear_error(offline, fake_weights, name, other):
    path = _cache(name, fake_weights[other])  # e.g. a ResNet50 checkpoint saved under VGG16's name
    with pytest.raises(ValueError, match="keys or shapes do not match") as info:
        create_backbone(name, pretrained=None)
    assert str(path) in str(info.value) and backbones.weights_url(name) in str(info.value)
    path.unlink()
    torch.save(torch.zeros(3), path)  # a torch file that is not a state dict
    with pytest.raises(ValueError, match="state dict"):
        create_backbone(name, pretrained=True)


# --------------------------------------------------------------------------------------------------------------
# pretrained weights through create_model (moved from test_models.py; offline so nothing is downloaded)


@pytest.fixture
def empty_hub(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.setenv(backbones.OFFLINE_ENV, "1")
    return tmp_path


def test_pretrained_none_warns_and_builds_offline(empty_hub):
    with pytest.warns(PretrainedWeightsWarning, match="vgg16-397923af.pth"):
        model = create_model("cam", num_classes=3, backbone="vgg16", pretrained=None, head_width=8)
    assert not model.pretrained_backbone
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        create_model("cam", num_classes=3, backbone="vgg16", pretrained=False, head_width=8)


def test_pretrained_true_without_weights_names_the_path(empty_hub):
    with pytest.raises(FileNotFoundError, match=str(empty_hub / "checkpoints")):
        create_model("cam", num_classes=3, backbone="vgg16", pretrained=True)
    (empty_hub / "checkpoints").mkdir()
    (empty_hub / "checkpoints" / "vgg16-397923af.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot read"):
        create_model("cam", num_classes=3, backbone="vgg16", pretrained=True)
    torch.save({"features.0.weight": torch.zeros(1)}, empty_hub / "checkpoints" / "vgg16-397923af.pth")
    with pytest.raises(ValueError, match="not torchvision's VGG16"):
        create_model("cam", num_classes=3, backbone="vgg16", pretrained=True)


def test_cached_torchvision_weights_are_loaded(empty_hub):
    torch.manual_seed(1)
    reference, _ = vgg16_backbone(pretrained=False)
    state = {f"features.{key}": value for key, value in reference.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(2, 2)  # torchvision's file also holds the classifier: ignored
    (empty_hub / "checkpoints").mkdir()
    torch.save(state, empty_hub / "checkpoints" / "vgg16-397923af.pth")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = create_model("acol", num_classes=3, backbone="vgg16", layout="28x28", head_width=8)
    assert model.pretrained_backbone and isinstance(model.features, nn.Sequential)
    torch.testing.assert_close(model.features[28].weight, reference[28].weight, rtol=0, atol=0)
    torch.testing.assert_close(model.features[0].bias, reference[0].bias, rtol=0, atol=0)


# --------------------------------------------------------------------------------------------------------------
# the engine: no random backbone on real data, what the run directory records, foreign checkpoints


def _cub_config(tiny_cub: Path, **changes) -> RunConfig:
    base: dict[str, Any] = dict(
        method="cam",
        backbone="vgg16",
        layout="28x28",
        dataset="cub",
        data_root=str(tiny_cub),
        image_size=32,
        epochs=1,
        batch_size=2,
        device="cpu",
        val_split=None,
        schedule="constant",
        model_kwargs={"head_width": 8},
    )
    base.update(changes)
    return RunConfig(**base)


def test_training_on_real_data_refuses_a_random_backbone(offline, tiny_cub, tmp_path):
    config = _cub_config(tiny_cub)
    with pytest.warns(PretrainedWeightsWarning), pytest.raises(ValueError) as info:
        train(config, runs_dir=tmp_path / "runs", progress=False)
    message = str(info.value)
    assert str(backbones.weights_path("vgg16")) in message and backbones.weights_url("vgg16") in message
    assert "--allow-random-init" in message and "refusing to train" in message
    assert not (tmp_path / "runs" / config.run_name() / "checkpoint.pt").exists()
    with pytest.raises(ValueError, match="pretrained=False"):
        train(
            _cub_config(tiny_cub, model_kwargs={"head_width": 8, "pretrained": False}),
            runs_dir=tmp_path / "runs",
            progress=False,
        )


def test_allow_random_init_trains_and_done_json_records_it(offline, tiny_cub, tmp_path):
    config = _cub_config(tiny_cub, allow_random_init=True)
    assert config.key() != _cub_config(tiny_cub).key()  # a random-init run never fills a paper run's cache slot
    with pytest.warns(PretrainedWeightsWarning):
        run_dir = train(config, runs_dir=tmp_path / "runs", progress=False)
    done = json.loads((run_dir / "done.json").read_text())
    assert (done["backbone"], done["pretrained_backbone"]) == ("vgg16", False)
    assert ckpt.load_checkpoint(run_dir / "checkpoint.pt")["pretrained_backbone"] is False
    _, model = load_run(run_dir)
    assert not model.pretrained_backbone and model.backbone_name == "vgg16"


def test_pretrained_run_on_real_data_records_the_weights(offline, fake_weights, tiny_cub, tmp_path):
    _cache("resnet50", fake_weights["resnet50"])
    config = _cub_config(tiny_cub, backbone="resnet50", method="acol", layout="14x14")
    with warnings.catch_warnings():
        warnings.simplefilter("error", PretrainedWeightsWarning)
        run_dir = train(config, runs_dir=tmp_path / "runs", progress=False)
    done = json.loads((run_dir / "done.json").read_text())
    assert (done["backbone"], done["pretrained_backbone"]) == ("resnet50", True)
    os.remove(backbones.weights_path("resnet50"))  # load_run never needs the ImageNet file
    _, model = load_run(run_dir)
    assert model.pretrained_backbone and model.backbone_name == "resnet50"


def test_synthetic_data_allows_a_random_vgg16(offline, tmp_path):
    config = RunConfig(
        method="cam",
        backbone="vgg16",
        layout="28x28",
        image_size=32,
        epochs=1,
        batch_size=16,
        device="cpu",
        val_split=None,
        data_root=str(tmp_path / "data"),
        dataset_kwargs={"num_train": 16, "num_val": 8, "num_test": 8},
        model_kwargs={"head_width": 8},
    )
    with pytest.warns(PretrainedWeightsWarning):
        run_dir = train(config, runs_dir=tmp_path / "runs", progress=False)
    assert json.loads((run_dir / "done.json").read_text())["pretrained_backbone"] is False


def test_load_run_names_a_checkpoint_of_another_backbone(tmp_path):
    small = RunConfig(method="acol", device="cpu")
    other = small.replace(backbone="vgg16", model_kwargs={"head_width": 8})
    run_dir = tmp_path / "run"
    ckpt.prepare_run_dir(run_dir, small)
    with torch.device("meta"):
        foreign = create_model("acol", num_classes=5, backbone="vgg16", pretrained=False, head_width=8)
    state = {key: torch.zeros(value.shape, dtype=value.dtype) for key, value in foreign.state_dict().items()}
    ckpt.save_checkpoint(
        run_dir / "checkpoint.pt", {"model": state, "epoch": 1, "num_classes": 5, "config": other.to_dict()}
    )
    with pytest.raises(CheckpointError) as info:
        load_run(run_dir)
    message = str(info.value)
    assert str(run_dir / "checkpoint.pt") in message and "backbone='vgg16'" in message
    assert "another architecture" in message and "backbone='small'" in message


# --------------------------------------------------------------------------------------------------------------
# command lines: --offline, --allow-random-init; the GPU benchmark without CUDA


def test_train_cli_flags(monkeypatch):
    from wsol_utils.ui import train_cli as cli

    parser = cli.build_parser()
    args = parser.parse_args(["--allow-random-init", "--offline", "--backbone", "resnet50"])
    config = cli.config_from_args(args)
    assert args.offline and config.allow_random_init and config.backbone == "resnet50"
    assert cli.config_from_args(parser.parse_args(["--allow-random-init", "false"])).allow_random_init is False
    assert cli.config_from_args(parser.parse_args([])).allow_random_init is False
    monkeypatch.setenv(backbones.OFFLINE_ENV, "0")
    assert cli.main(["--offline", "--method", "no-such-method"]) == 2  # stops at the config, after the flag
    assert os.environ[backbones.OFFLINE_ENV] == "1" and backbones.is_offline()


def test_reproduce_cli_flags_set_the_environment(monkeypatch):
    from wsol_utils.ui import reproduce

    monkeypatch.delenv(backbones.OFFLINE_ENV, raising=False)
    monkeypatch.delenv("WSOL_ALLOW_RANDOM_INIT", raising=False)
    args = reproduce.build_parser().parse_args([])
    assert not args.offline and not args.allow_random_init
    with pytest.raises(SystemExit):  # an unknown notebook stops the run before anything executes
        reproduce.main(["--offline", "--allow-random-init", "--only", "no-such-notebook"])
    assert os.environ[backbones.OFFLINE_ENV] == "1" and os.environ["WSOL_ALLOW_RANDOM_INIT"] == "1"


def test_bench_gpu_exits_clearly_without_cuda(monkeypatch, capsys, load_benchmark):
    module = load_benchmark("bench_gpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert module.main([]) == 2
    assert "no CUDA device" in capsys.readouterr().err
