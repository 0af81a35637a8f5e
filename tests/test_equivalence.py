"""Tests for wsol_utils.engine.equivalence: the CAM / 1x1-conv forms agree at float tolerance (ACoL §3.1)."""

from __future__ import annotations

import pytest
import torch

from wsol_utils.engine import equivalence
from wsol_utils.nets.models import create_model


def test_equivalence_tolerance_and_check_line():
    logits, maps = torch.tensor([[1.0, -2.0]]), torch.arange(8.0).reshape(1, 2, 2, 2)
    same = equivalence.equivalence(logits, maps, logits.clone(), maps + 1e-7)
    assert same.within_tolerance and same.max_logit_diff == 0.0
    assert same.check_line("net") == "net: max |Δlogits|, max |Δmaps| at float tolerance: True"
    off = equivalence.equivalence(logits + torch.tensor([[0.0, 1e-3]]), maps, logits, maps)
    assert not off.within_tolerance and off.max_logit_diff == pytest.approx(1e-3, rel=1e-4)
    with pytest.raises(ValueError, match="shapes differ"):
        equivalence.equivalence(logits, maps, logits, maps[..., :1])


def test_model_equivalence_on_a_random_cam_network():
    torch.manual_seed(0)
    check = equivalence.model_equivalence(create_model("cam", num_classes=4), torch.randn(2, 3, 32, 32))
    assert check.within_tolerance and check.max_map_diff < 1e-5
