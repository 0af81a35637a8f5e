"""Backbones, branches and the cam / acol / hclnet models (wsol_utils.nets.models, docs/methods.md §1.1-§1.4)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from wsol_utils.nets.erasing import erase_by_threshold, erase_complementary
from wsol_utils.nets.fusion import fuse_l1, fuse_max
from wsol_utils.nets.maps import normalize_minmax
from wsol_utils.nets.models import (
    Branch,
    WSOLModel,
    cam_to_conv1x1,
    class_map,
    create_model,
    feature_stride,
    receptive_field,
    spatial_mean,
)

NUM_CLASSES = 10


def _batch(batch: int = 4, size: int = 64, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(batch, 3, size, size, generator=generator)
    labels = torch.randint(0, NUM_CLASSES, (batch,), generator=generator)
    return images, labels


def _small(method: str, seed: int = 0, **kwargs) -> WSOLModel:
    torch.manual_seed(seed)
    return create_model(method, num_classes=NUM_CLASSES, **kwargs)


def _rows(batch: int) -> torch.Tensor:
    return torch.arange(batch)


# --------------------------------------------------------------------------------------------------------------
# shapes, forward and backward


@pytest.mark.parametrize("method", ["cam", "acol", "hclnet"])
def test_small_backbone_shapes_and_backward(method):
    model = _small(method)
    images, labels = _batch()
    out = model(images, labels)
    assert out.logits_a.shape == (4, NUM_CLASSES)
    assert out.maps_a.shape == (4, NUM_CLASSES, 16, 16)
    assert out.features.shape == (4, 32, 16, 16)
    two_branches = method != "cam"
    assert (out.maps_b is not None) == two_branches and (out.erased is not None) == two_branches
    loss = nn.functional.cross_entropy(out.logits_a, labels)
    if two_branches:
        assert out.maps_b.shape == out.maps_a.shape and out.erased.shape == out.features.shape
        loss = loss + nn.functional.cross_entropy(out.logits_b, labels)
    loss.backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and torch.count_nonzero(parameter.grad) > 0, name


@pytest.mark.parametrize(("layout", "size"), [("14x14", 14), ("28x28", 28)])
@pytest.mark.parametrize("method", ["cam", "acol", "hclnet"])
def test_vgg16_layouts_give_the_papers_map_sizes_at_224(layout, size, method):
    with torch.device("meta"):  # shapes only: no memory, no compute
        model = create_model(method, num_classes=200, backbone="vgg16", layout=layout, pretrained=False)
        out = model(torch.empty(1, 3, 224, 224))
    assert out.maps_a.shape == (1, 200, size, size) and out.logits_a.shape == (1, 200)
    assert out.features.shape == (1, 512, size, size)
    if method != "cam":
        assert out.maps_b.shape == (1, 200, size, size) and out.erased.shape == (1, 512, size, size)


def test_vgg16_cpu_forward_and_backward():
    torch.manual_seed(0)
    model = create_model("acol", num_classes=3, backbone="vgg16", layout="28x28", pretrained=False, head_width=64)
    images = torch.randn(1, 3, 32, 32)  # batch 1, small input: a 224 px pass is too slow for 2 shared cores
    out = model(images, torch.tensor([2]))
    assert out.maps_a.shape == (1, 3, 4, 4)
    (out.logits_a.sum() + out.logits_b.sum()).backward()
    features, branch_b = model.features, model.branch_b
    assert isinstance(features, nn.Sequential) and branch_b is not None
    assert features[0].weight.grad is not None and branch_b.classifier.weight.grad is not None


# --------------------------------------------------------------------------------------------------------------
# erasing inside the model


@pytest.mark.parametrize("method", ["acol", "hclnet"])
@pytest.mark.parametrize("use_labels", [True, False])
def test_branch_b_sees_exactly_the_erased_features(method, use_labels):
    model = _small(method).eval()
    images, labels = _batch()
    seen = []
    assert model.branch_b is not None
    model.branch_b.register_forward_pre_hook(lambda module, inputs: seen.append(inputs[0]))
    with torch.no_grad():
        out = model(images, labels if use_labels else None)
    chosen = labels if use_labels else out.logits_a.argmax(1)
    chosen_map = out.maps_a[_rows(4), chosen]
    if method == "acol":
        expected = erase_by_threshold(out.features, chosen_map, 0.6)
    else:
        expected = erase_complementary(out.features, chosen_map)
    torch.testing.assert_close(seen[0], expected, rtol=0, atol=0)
    torch.testing.assert_close(out.erased, expected, rtol=0, atol=0)
    assert not torch.equal(out.erased, out.features)


def test_changing_delta_changes_only_branch_b():
    model = _small("acol").eval()
    images, labels = _batch()
    with torch.no_grad():
        before = model(images, labels)
        after = model(images, labels, delta=0.9)
    torch.testing.assert_close(after.logits_a, before.logits_a, rtol=0, atol=0)
    torch.testing.assert_close(after.erased, erase_by_threshold(before.features, before.maps_a[_rows(4), labels], 0.9))
    assert not torch.equal(after.erased, before.erased)
    assert model.delta == 0.6  # a test-time delta is an argument: the model is left as it was built


@pytest.mark.parametrize("method", ["acol", "hclnet"])
def test_delta_argument_equals_a_model_built_with_that_delta(method):
    # parity: forward(..., delta=d) is bit-identical to the same weights in a model created with delta=d
    model, built = _small(method, delta=0.6).eval(), _small(method, seed=1, delta=0.8).eval()
    built.load_state_dict(model.state_dict())
    images, labels = _batch()
    with torch.no_grad():
        for chosen in (labels, None):
            argument, reference = model(images, chosen, delta=0.8), built(images, chosen)
            for name in ("logits_a", "logits_b", "maps_b", "erased"):
                torch.testing.assert_close(getattr(argument, name), getattr(reference, name), rtol=0, atol=0)


@pytest.mark.parametrize(
    ("method", "kwargs", "reaches_branch_a"),
    [("acol", {}, False), ("hclnet", {}, False), ("hclnet", {"detach_complement": False}, True)],
)
def test_branch_b_loss_reaches_branch_a_only_through_an_undetached_complement(method, kwargs, reaches_branch_a):
    model = _small(method, **kwargs)
    images, labels = _batch()
    nn.functional.cross_entropy(model(images, labels).logits_b, labels).backward()
    grads = [p.grad for p in model.branch_a.parameters()]
    reached = any(g is not None and torch.count_nonzero(g) > 0 for g in grads)
    assert reached is reaches_branch_a
    assert isinstance(model.features, nn.Sequential)
    first_conv = model.features[0]
    assert isinstance(first_conv, nn.Conv2d) and first_conv.weight.grad is not None
    assert torch.count_nonzero(first_conv.weight.grad) > 0  # the backbone learns from B either way


# --------------------------------------------------------------------------------------------------------------
# CAM <-> 1x1 conv (ACoL §3.1)


@pytest.mark.parametrize("with_bias", [False, True])
def test_cam_to_conv1x1_keeps_logits_and_maps(with_bias):
    model = _small("cam", width=8, head_kernel=3).eval()
    if with_bias:
        linear = model.branch_a.classifier
        assert isinstance(linear, nn.Linear) and linear.bias is not None
        with torch.no_grad():
            linear.bias.copy_(torch.randn(NUM_CLASSES, generator=torch.Generator().manual_seed(3)))
    converted = cam_to_conv1x1(model)
    assert isinstance(converted.branch_a.classifier, nn.Conv2d) and isinstance(model.branch_a.classifier, nn.Linear)
    images, _ = _batch()
    with torch.no_grad():
        cam, conv = model(images), converted(images)
        hidden = model.branch_a.body(model.features(images))
    torch.testing.assert_close(conv.logits_a, cam.logits_a, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(conv.maps_a, cam.maps_a, rtol=1e-5, atol=1e-5)
    # the CAM maps are A_c = sum_k W[c, k] S_k + b_c, and their spatial mean is the logit
    fc = model.branch_a.classifier
    by_hand = (fc.weight[None, :, :, None, None] * hidden[:, None]).sum(2) + fc.bias[None, :, None, None]
    torch.testing.assert_close(cam.maps_a, by_hand, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(cam.maps_a.mean(dim=(2, 3)), cam.logits_a, rtol=1e-5, atol=1e-5)


def test_cam_to_conv1x1_rejects_two_branch_models():
    with pytest.raises(ValueError, match="cam"):
        cam_to_conv1x1(_small("acol"))


# --------------------------------------------------------------------------------------------------------------
# class_map


def test_class_map_selects_fuses_and_normalizes():
    model = _small("acol").eval()
    images, labels = _batch()
    with torch.no_grad():
        out = model(images, labels)
    rows = _rows(4)
    torch.testing.assert_close(class_map(out, labels, branch="a"), normalize_minmax(out.maps_a[rows, labels]))
    torch.testing.assert_close(class_map(out, labels, branch="b"), normalize_minmax(out.maps_b[rows, labels]))
    torch.testing.assert_close(class_map(out, labels), normalize_minmax(fuse_max(out.maps_a, out.maps_b)[rows, labels]))
    l1 = class_map(out, labels, fusion="l1", block_radius=0, weights="softmax")
    expected = fuse_l1(out.maps_a, out.maps_b, block_radius=0, weights="softmax")[rows, labels]
    torch.testing.assert_close(l1, normalize_minmax(expected))
    add = class_map(out, labels, fusion="add")
    assert add.shape == (4, 16, 16) and add.amin() == 0 and add.amax() == 1


def test_class_map_of_cam_is_branch_a():
    out = _small("cam")(*_batch())
    classes = torch.tensor([1, 2, 3, 4])
    torch.testing.assert_close(class_map(out, classes), normalize_minmax(out.maps_a[_rows(4), classes]))
    with pytest.raises(ValueError, match="two-branch"):
        class_map(out, classes, branch="b")


# --------------------------------------------------------------------------------------------------------------
# receptive field


def test_receptive_field_of_a_hand_built_stack():
    stack = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),  # 1 + 2 = 3
        nn.Conv2d(4, 4, 3, padding=2, dilation=2),  # + 2*2 = 7
        nn.ReLU(),
        nn.MaxPool2d(2, 2),  # + 1 = 8, stride 2
        nn.Conv2d(4, 4, 5, padding=2),  # + 4*2 = 16
        nn.AvgPool2d(3, stride=1, padding=1),  # + 2*2 = 20
    )
    assert receptive_field(stack) == 20 and feature_stride(stack) == 2
    with pytest.raises(ValueError, match="Linear"):
        receptive_field(nn.Sequential(nn.Conv2d(3, 4, 3), nn.Linear(4, 4)))


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, 18),  # conv 3, pool 4 (stride 2), conv 8, pool 10 (stride 4), conv 18; 1x1 head convs add nothing
        ({"head_kernel": 3}, 34),  # two 3x3 head convs at stride 4: + 2 * 8
        ({"depth": 6}, 32),  # stages of 2 convs: 3, 5 | 6, 10, 14 | 16, 24, 32
        ({"feature_pool": True}, 26),  # the VGG-style 3x3 average pool at stride 4: + 8
    ],
)
def test_receptive_field_of_small_models(kwargs, expected):
    assert receptive_field(_small("acol", **kwargs)) == expected


# --------------------------------------------------------------------------------------------------------------
# optimizer groups


def test_parameter_groups_cover_every_parameter_once_with_spec_multipliers():
    model = _small("acol")
    assert {id(p) for p in model.new_parameters()}.isdisjoint(id(p) for p in model.backbone_parameters())
    assert len(model.new_parameters()) + len(model.backbone_parameters()) == len(list(model.parameters()))
    model.pretrained_backbone = (
        True  # as if ImageNet weights were loaded: the 1 / 2 / 10 / 20 groups of docs/methods.md §4
    )
    groups = {group["name"]: group for group in model.parameter_groups(0.5)}
    assert {name: group["lr"] for name, group in groups.items()} == {
        "backbone_weights": 0.5,
        "backbone_biases": 1.0,
        "new_weights": 5.0,
        "new_biases": 10.0,
    }
    grouped = [id(p) for group in groups.values() for p in group["params"]]
    assert sorted(grouped) == sorted(id(p) for p in model.parameters())
    assert all(p.ndim == 1 for p in groups["new_biases"]["params"] + groups["backbone_biases"]["params"])
    model.pretrained_backbone = False  # trained from scratch: the backbone is "new" too
    assert {g["name"]: g["lr"] for g in model.parameter_groups(0.5)}["backbone_weights"] == 5.0


# --------------------------------------------------------------------------------------------------------------
# bad input


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"method": "spg"}, "unknown method"),
        ({"backbone": "resnet"}, "unknown backbone"),
        ({"layout": "7x7"}, "unknown layout"),
        ({"num_classes": 0}, "num_classes"),
        ({"delta": 1.2}, "delta"),
        ({"widht": 8}, "widht"),
        ({"pretrained": True}, "no pretrained"),
        ({"head_kernel": 5}, "head_kernel"),
        ({"depth": 2}, "depth"),
    ],
)
def test_bad_create_model_arguments(kwargs, match):
    arguments = {"method": "acol", "num_classes": NUM_CLASSES, **kwargs}
    with pytest.raises(ValueError, match=match):
        create_model(arguments.pop("method"), **arguments)


@pytest.mark.parametrize(
    ("images", "labels", "match"),
    [
        (torch.randn(2, 1, 64, 64), None, r"\(B, 3, H, W\)"),
        (torch.randn(3, 64, 64), None, r"\(B, 3, H, W\)"),
        (torch.zeros(2, 3, 64, 64, dtype=torch.uint8), None, "float"),
        (torch.randn(2, 3, 2, 64), None, "at least 4x4"),
        (torch.randn(2, 3, 64, 64), torch.tensor([0, NUM_CLASSES]), r"\[0, 10\)"),
        (torch.randn(2, 3, 64, 64), torch.tensor([-1, 0]), r"\[0, 10\)"),
        (torch.randn(2, 3, 64, 64), torch.tensor([0.0, 1.0]), "integer"),
        (torch.randn(2, 3, 64, 64), torch.tensor([0, 1, 2]), r"shape \(2,\)"),
    ],
)
def test_bad_forward_input(images, labels, match):
    with pytest.raises(ValueError, match=match):
        _small("acol")(images, labels)


# --------------------------------------------------------------------------------------------------------------
# the global average pool: PyTorch's mean in value, x's layout in its backward


def _torch_mean(x: torch.Tensor) -> torch.Tensor:
    """PyTorch's own mean (its backward materializes NCHW)."""
    return x.mean(dim=(2, 3))


def _branch_forward_before_issue_19(self: Branch, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Branch.forward as it was before spatial_mean (commit bf9dbf0), verbatim: the reference of the parity tests."""
    hidden = self.body(features)
    if isinstance(self.classifier, nn.Linear):
        logits = self.classifier(hidden.mean(dim=(2, 3)))
        maps = torch.einsum("ck,bkhw->bchw", self.classifier.weight, hidden)
        if self.classifier.bias is not None:
            maps = maps + self.classifier.bias[:, None, None]
        return logits, maps
    maps = self.classifier(hidden)
    return maps.mean(dim=(2, 3)), maps


def _sgd_run(
    method: str,
    monkeypatch,
    before: bool,
    model_kwargs: dict,
    *,
    steps: int = 2,
    backbone: str = "small",
    size: int = 32,
) -> tuple[list, list]:
    """``steps`` engine SGD steps (micro-batches, the acol optimizer) of a seeded model, with the branches of
    before issue 19 (``before``) or today's; its parameters and its logits on a fixed batch after the steps."""
    from wsol_utils.engine.config import RunConfig
    from wsol_utils.engine.distributed import DistContext
    from wsol_utils.engine.optim import build_optimizer
    from wsol_utils.engine.run import build_model
    from wsol_utils.engine.train import backward_batch, micro_batches

    if before:
        monkeypatch.setattr(Branch, "forward", _branch_forward_before_issue_19)
    else:
        monkeypatch.undo()
    config = RunConfig(method=method, backbone=backbone, image_size=size, model_kwargs=model_kwargs)
    torch.manual_seed(0)
    model = build_model(config, NUM_CLASSES)
    optimizer = build_optimizer(model, config)
    images, labels = _batch(batch=2 if config.backbone == "vgg16" else 8, size=size, seed=1)
    chunks = micro_batches(model, DistContext(device=torch.device("cpu")), images)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the engine's workers (train_many, reproduce): one thread
    try:
        for _ in range(steps):
            optimizer.zero_grad(set_to_none=True)
            backward_batch(model, images, labels, chunks)
            optimizer.step()
    finally:
        torch.set_num_threads(threads)
    output = model(images, labels)
    logits = [output.logits_a] + ([] if output.logits_b is None else [output.logits_b])
    return [p.detach().clone() for p in model.parameters()], [t.detach() for t in logits]


def test_spatial_mean_equals_torch_mean_forward_and_backward_bit_for_bit():
    x = torch.randn(3, 5, 7, 6).contiguous(memory_format=torch.channels_last).requires_grad_()
    grad = torch.randn(3, 5)
    ours = spatial_mean(x)
    (ours_grad,) = torch.autograd.grad(ours, x, grad)
    theirs = _torch_mean(x)
    (theirs_grad,) = torch.autograd.grad(theirs, x, grad)
    assert torch.equal(ours, theirs)
    assert torch.equal(ours_grad, theirs_grad)
    assert torch.equal(ours_grad[1, 2], torch.full((7, 6), float(grad[1, 2] / 42)))
    with pytest.raises(ValueError, match=r"\(B, C, h, w\)"):
        spatial_mean(torch.zeros(3, 5))


@pytest.mark.parametrize("method", ["cam", "acol", "hclnet"])
def test_the_pool_gradient_keeps_the_layout_each_head_needs(method):
    """CAM (the layout bug of issue 19): PyTorch's mean sent a contiguous NCHW gradient to the channels_last ReLU
    output before the pool (slow mixed-layout ReLU backward); spatial_mean sends a stride-0 broadcast. ACoL /
    HCLNet: the pool follows the 1x1 class convolution, whose bias gradient is summed in the gradient's layout,
    so it must keep receiving PyTorch's contiguous NCHW gradient (anything else changes the last bits)."""
    model = _small(method)
    seen: list[torch.Tensor] = []
    target = model.branch_a.body if method == "cam" else model.branch_a.classifier  # what the pool reads

    def watch(_module: nn.Module, _inputs: object, out: torch.Tensor) -> None:
        out.register_hook(lambda grad: seen.append(grad))

    target.register_forward_hook(watch)
    images, labels = _batch()
    model(images, labels).logits_a.sum().backward()
    if method == "cam":
        assert seen[0].stride()[2:] == (0, 0), f"the pool's gradient was materialized (strides {seen[0].stride()})"
    else:
        assert seen[0].is_contiguous(), f"the class convolution got strides {seen[0].stride()}"


@pytest.mark.parametrize("field", [5, 8, 12, 18, 34])
@pytest.mark.parametrize("method", ["cam", "acol", "hclnet"])
def test_sgd_steps_are_bit_identical_to_torch_mean_pooling(method, field, monkeypatch):
    """Same seed, same batches, two engine SGD steps: every parameter and the logits equal (torch.equal) with
    spatial_mean and with PyTorch's mean, at every receptive field of the regime map (analysis.RECEPTIVE_FIELDS)."""
    from wsol_utils.studies.analysis import RECEPTIVE_FIELDS

    kwargs = dict(RECEPTIVE_FIELDS[field])
    old_params, old_logits = _sgd_run(method, monkeypatch, True, kwargs)
    new_params, new_logits = _sgd_run(method, monkeypatch, False, kwargs)
    assert len(old_params) == len(new_params)
    assert all(torch.equal(a, b) for a, b in zip(old_params, new_params, strict=True))
    assert all(torch.equal(a, b) for a, b in zip(old_logits, new_logits, strict=True))
    assert not torch.equal(old_params[0], _sgd_run(method, monkeypatch, False, kwargs, steps=0)[0][0])


@pytest.mark.slow  # three VGG16 builds and trainings: ~30 s on the shared 2-core machine
@pytest.mark.parametrize("method", ["cam", "acol", "hclnet"])
def test_vgg16_sgd_steps_are_bit_identical_to_torch_mean_pooling(method, monkeypatch):
    """The same parity for the papers' backbone (NCHW, 3x3 heads; narrow heads and 32 px to stay fast)."""
    kwargs = {"head_width": 8, "pretrained": False}
    old_params, old_logits = _sgd_run(method, monkeypatch, True, kwargs, backbone="vgg16")
    new_params, new_logits = _sgd_run(method, monkeypatch, False, kwargs, backbone="vgg16")
    assert all(torch.equal(a, b) for a, b in zip(old_params, new_params, strict=True))
    assert all(torch.equal(a, b) for a, b in zip(old_logits, new_logits, strict=True))


@pytest.mark.parametrize("classifier", ["fc", "conv"])
def test_branch_gradients_are_bit_identical_to_before_issue_19(classifier):
    """Every parameter gradient of a channels_last branch (the instrument's 32x32 maps, 8-image batches: the case
    where a stride-0 gradient into the class convolution changed its bias gradient with one thread, as the
    engine's workers run) equals the old branch's."""

    def gradients(forward, seed: int) -> list[torch.Tensor]:
        torch.manual_seed(seed)
        branch = Branch(32, 32, NUM_CLASSES, 1, classifier).to(memory_format=torch.channels_last)
        features = torch.randn(8, 32, 32, 32).contiguous(memory_format=torch.channels_last)
        logits, _maps = forward(branch, features)
        logits.backward(torch.randn(8, NUM_CLASSES))
        return [torch.zeros(0) if p.grad is None else p.grad for p in branch.parameters()]

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for seed in range(4):
            before = gradients(_branch_forward_before_issue_19, seed)
            today = gradients(Branch.forward, seed)
            assert all(torch.equal(a, b) for a, b in zip(before, today, strict=True)), f"seed {seed}"
    finally:
        torch.set_num_threads(threads)
