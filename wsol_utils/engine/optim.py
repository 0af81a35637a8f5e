"""Optimizer parameter groups and lr schedules (docs/methods.md §4).

``"acol"`` (official ACoL): SGD, Nesterov, momentum 0.9, weight decay 5e-4; four groups
``backbone weights lr, backbone biases 2*lr, new-layer weights 10*lr, new-layer biases 20*lr``
(:func:`wsol_utils.nets.models.acol_parameter_groups`, the one rule).
``"wsoleval"``: SGD momentum 0.9, two groups ``backbone lr, new layers 10*lr``.
"""

from __future__ import annotations

import math
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn

from wsol_utils.engine.config import RunConfig
from wsol_utils.nets.models import NEW_LAYER_SCALE, acol_parameter_groups

#: lr multipliers of the ``"wsoleval"`` groups (the ``"acol"`` rule is
#: :func:`wsol_utils.nets.models.acol_parameter_groups`).
WSOLEVAL_MULTIPLIERS: dict[str, float] = {"backbone": 1.0, "new": NEW_LAYER_SCALE}


@runtime_checkable
class _HasNewParameters(Protocol):
    """A model that names its new (not pretrained) layers' parameters, like :class:`WSOLModel`."""

    def new_parameters(self) -> list[nn.Parameter]: ...


@runtime_checkable
class _HasParameterGroups(Protocol):
    """A model that builds its own ``"acol"`` optimizer groups, like :class:`WSOLModel`."""

    def parameter_groups(self, lr: float) -> list[dict[str, Any]]: ...


def _split_new_and_backbone(
    model: nn.Module,
) -> tuple[list[tuple[str, nn.Parameter]], list[tuple[str, nn.Parameter]]]:
    """``(new, backbone)`` named trainable parameters; every trainable parameter lands in exactly one list."""
    trainable = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    new_ids = {id(p) for p in model.new_parameters()} if isinstance(model, _HasNewParameters) else set()
    new = [(name, p) for name, p in trainable if id(p) in new_ids]
    backbone = [(name, p) for name, p in trainable if id(p) not in new_ids]
    return new, backbone


def parameter_groups(model: nn.Module, optimizer: str, lr: float) -> list[dict]:
    """Optimizer param groups with absolute lrs (``initial_lr`` is their base); empty groups are dropped.

    ``"acol"``: the model's own ``parameter_groups(lr)`` when it has one (:class:`WSOLModel` gives a backbone
    trained from scratch -- the small one, or VGG16 without ImageNet weights -- the new layers' 10x / 20x, since
    nothing in it is pretrained); otherwise :func:`~wsol_utils.nets.models.acol_parameter_groups` over the model's
    parameters, the ones of ``new_parameters()`` (when it has one) new at 10x, the rest backbone at 1x.
    ``"wsoleval"``: ``backbone`` at ``lr``, ``new`` at ``10 lr``.
    """
    if optimizer == "acol" and isinstance(model, _HasParameterGroups):
        return model.parameter_groups(lr)  # the model knows which backbone is pretrained (docs/methods.md §4)
    new, backbone = _split_new_and_backbone(model)
    if optimizer == "acol":
        return acol_parameter_groups([("backbone", backbone, 1.0), ("new", new, NEW_LAYER_SCALE)], lr)
    if optimizer != "wsoleval":
        raise ValueError(f"optimizer={optimizer!r} is unknown; choose 'acol' or 'wsoleval'")
    named = {"backbone": [p for _, p in backbone], "new": [p for _, p in new]}
    return [{"params": ps, "lr": lr * WSOLEVAL_MULTIPLIERS[name], "name": name} for name, ps in named.items() if ps]


def build_optimizer(model: nn.Module, config: RunConfig) -> torch.optim.SGD:
    """SGD over :func:`parameter_groups` (Nesterov for ``"acol"``)."""
    groups = parameter_groups(model, config.optimizer, config.lr)
    return torch.optim.SGD(
        groups,
        lr=config.lr,
        momentum=config.momentum,
        weight_decay=config.weight_decay,
        nesterov=config.optimizer == "acol",
    )


def one_cycle_factor(step: int, total: int, warmup: float = 0.25, start: float = 0.1, end: float = 0.001) -> float:
    """One-cycle lr factor in ``[end, 1]``: linear ``start -> 1`` over the first ``warmup`` of ``total`` steps,
    then cosine ``1 -> end`` (robust to tiny ``total``, unlike ``OneCycleLR``)."""
    ramp = max(1, round(warmup * total))
    if step < ramp:
        return start + (1.0 - start) * step / ramp
    progress = min(1.0, (step - ramp) / max(1, total - ramp))
    return end + (1.0 - end) * 0.5 * (1.0 + math.cos(math.pi * progress))


def build_scheduler(
    optimizer: torch.optim.Optimizer, config: RunConfig, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LRScheduler:
    """Per-batch scheduler: one-cycle / cosine over all steps, step decay every ``step_epochs``, or constant."""
    total = config.epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler
    if config.schedule == "onecycle":
        return sched.LambdaLR(optimizer, lambda step: one_cycle_factor(step, total))
    if config.schedule == "cosine":
        return sched.CosineAnnealingLR(optimizer, T_max=total)
    if config.schedule == "step":
        return sched.StepLR(optimizer, step_size=config.step_epochs * steps_per_epoch, gamma=0.1)
    return sched.LambdaLR(optimizer, lambda _: 1.0)
