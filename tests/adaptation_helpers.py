"""A small reference picture and its subject mask for the adaptation tests."""

from __future__ import annotations

import torch


def reference_and_mask():
    generator = torch.Generator().manual_seed(1)
    reference = torch.rand(1, 3, 64, 64, generator=generator) * 2 - 1
    mask = torch.zeros(1, 1, 64, 64)
    mask[..., 16:48, 16:48] = 1
    return reference, mask
