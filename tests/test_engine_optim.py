"""Optimizer groups and schedules (wsol_utils.engine.optim), docs/methods.md §4."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from wsol_utils.engine.config import RunConfig
from wsol_utils.engine.optim import build_optimizer, build_scheduler, one_cycle_factor, parameter_groups
from wsol_utils.nets.models import create_model


class TwoPartNet(nn.Module):
    """A backbone conv and a new head, with the models' parameter-split helper."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Conv2d(3, 4, 3)
        self.head = nn.Conv2d(4, 2, 1)

    def new_parameters(self) -> list[nn.Parameter]:
        return list(self.head.parameters())


def _lr_of(groups: list[dict], param: torch.Tensor | None) -> float:  # a layer's weight or (optional) bias
    (lr,) = [g["lr"] for g in groups if any(p is param for p in g["params"])]
    return lr


def test_acol_groups_are_1_2_10_20_times_lr() -> None:
    net = TwoPartNet()
    groups = parameter_groups(net, "acol", 0.01)
    assert _lr_of(groups, net.backbone.weight) == pytest.approx(0.01)
    assert _lr_of(groups, net.backbone.bias) == pytest.approx(0.02)
    assert _lr_of(groups, net.head.weight) == pytest.approx(0.1)
    assert _lr_of(groups, net.head.bias) == pytest.approx(0.2)
    assert sum(len(g["params"]) for g in groups) == len(list(net.parameters()))


def test_wsoleval_groups_are_1_and_10_times_lr() -> None:
    net = TwoPartNet()
    groups = parameter_groups(net, "wsoleval", 0.01)
    assert _lr_of(groups, net.backbone.bias) == pytest.approx(0.01)
    assert _lr_of(groups, net.head.bias) == pytest.approx(0.1)


def test_acol_optimizer_is_nesterov_sgd_with_the_official_momentum_and_decay() -> None:
    opt = build_optimizer(TwoPartNet(), RunConfig(method="acol", optimizer="acol", lr=0.01))
    assert isinstance(opt, torch.optim.SGD)
    assert opt.defaults["nesterov"] and opt.defaults["momentum"] == 0.9 and opt.defaults["weight_decay"] == 5e-4


def test_onecycle_peaks_at_each_groups_lr_and_step_decays_by_ten() -> None:
    net = TwoPartNet()
    config = RunConfig(lr=0.01, epochs=4, schedule="onecycle")
    opt = build_optimizer(net, config)
    sched = build_scheduler(opt, config, steps_per_epoch=10)
    peaks = [0.0] * len(opt.param_groups)
    for _ in range(40):
        peaks = [max(p, g["lr"]) for p, g in zip(peaks, opt.param_groups)]
        opt.step()
        sched.step()
    assert peaks == pytest.approx([0.01, 0.02, 0.1, 0.2])
    config = RunConfig(lr=0.01, epochs=4, schedule="step", step_epochs=2)
    opt = build_optimizer(net, config)
    sched = build_scheduler(opt, config, steps_per_epoch=10)
    for _ in range(20):
        opt.step()
        sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.001)


def test_one_cycle_factor_endpoints_and_tiny_runs() -> None:
    assert one_cycle_factor(0, 100) == pytest.approx(0.1)
    assert one_cycle_factor(25, 100) == pytest.approx(1.0)
    assert one_cycle_factor(100, 100) == pytest.approx(0.001)
    assert one_cycle_factor(62, 100) > one_cycle_factor(63, 100)  # decreasing after the peak
    assert [round(one_cycle_factor(s, 2), 4) for s in range(3)] == [0.1, 1.0, 0.001]


def test_acol_groups_of_a_small_model_cover_every_parameter_once_at_10_and_20x() -> None:
    model = create_model("acol", num_classes=3)
    groups = parameter_groups(model, "acol", 0.01)
    ids = [id(p) for g in groups for p in g["params"]]
    assert sorted(ids) == sorted(id(p) for p in model.parameters())
    # a backbone trained from scratch is "new" too (WSOLModel.parameter_groups): weights 10x, biases 20x
    assert {round(g["lr"], 6) for g in groups} == {0.1, 0.2}


#: The groups of the small models before the ACoL rule was written once (wsol_utils.nets.models.acol_parameter_groups):
#: ``(name, lr at base lr 0.01, parameter count, element count)``; a backbone from scratch is at the new layers' 10x.
GROUPS_BEFORE = {
    ("cam", False): [
        ("backbone_weights", 0.1, 3, 5976),
        ("backbone_biases", 0.2, 3, 56),
        ("new_weights", 0.1, 3, 2144),
        ("new_biases", 0.2, 3, 67),
    ],
    ("cam", True): [
        ("backbone_weights", 0.01, 3, 5976),
        ("backbone_biases", 0.02, 3, 56),
        ("new_weights", 0.1, 3, 2144),
        ("new_biases", 0.2, 3, 67),
    ],
    **{
        (method, pretrained): [
            ("backbone_weights", 0.01 if pretrained else 0.1, 3, 5976),
            ("backbone_biases", 0.02 if pretrained else 0.2, 3, 56),
            ("new_weights", 0.1, 6, 4288),
            ("new_biases", 0.2, 6, 134),
        ]
        for method in ("acol", "hclnet")
        for pretrained in (False, True)
    },
}


@pytest.mark.parametrize(("method", "pretrained"), sorted(GROUPS_BEFORE))
def test_acol_groups_of_the_three_methods_are_unchanged(method: str, pretrained: bool) -> None:
    model = create_model(method, num_classes=3)
    model.pretrained_backbone = pretrained  # as if ImageNet weights were loaded
    groups = build_optimizer(model, RunConfig(method=method, optimizer="acol", lr=0.01)).param_groups
    found = [(g["name"], g["lr"], len(g["params"]), sum(p.numel() for p in g["params"])) for g in groups]
    assert found == GROUPS_BEFORE[(method, pretrained)]  # lrs bit-identical: 0.01 * 10.0 * 2.0 etc.
    biases = {id(p) for g in groups if g["name"].endswith("biases") for p in g["params"]}
    assert biases == {id(p) for name, p in model.named_parameters() if name.endswith("bias")}


def test_a_plain_module_gets_the_same_acol_rule() -> None:
    """Without ``parameter_groups`` the one rule is applied to the model's own names: a 1-D weight (a norm's) is a
    weight, not a bias; without ``new_parameters()`` every parameter is the backbone's."""
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    groups = parameter_groups(net, "acol", 0.01)
    assert [(g["name"], g["lr"], len(g["params"])) for g in groups] == [
        ("backbone_weights", 0.01, 2),
        ("backbone_biases", 0.02, 2),
    ]
    assert groups[0]["params"][1] is net[1].weight
