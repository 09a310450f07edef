"""A small reference picture and its subject mask for the adaptation tests."""

from __future__ import annotations

import torch


def reference_and_mask():
    generator = torch.Generator().manual_seed(1)
    reference = torch.rand(1, 3, 64, 64, generator=generator) * 2 - 1
    mask = torch.zeros(1, 1, 64, 64)
    mask[..., 16:48, 16:48] = 1
    return reference, mask


def character_on_a_background(size: int = 64):
    """A round orange character on a blue striped background, and its mask, drawn at `size`
    (the same picture at every size: 64 px for the pixel model, 128 px for v4)."""
    scale = size / 64
    ys, xs = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    mask = (((ys - 34 * scale) ** 2 + (xs - 30 * scale) ** 2) < (16 * scale) ** 2).float()
    background = torch.stack([0.2 + 0.3 * torch.sin(xs / (3.0 * scale)), 0.5 + 0.2 * torch.cos(ys / (5.0 * scale)),
                              0.9 + 0 * xs])
    character = torch.stack([0.9 + 0 * xs, 0.4 + 0.3 * torch.sin((xs + ys) / (4.0 * scale)), 0.1 + 0 * xs])
    image = character * mask + background * (1 - mask)
    return (image * 2 - 1).unsqueeze(0).float(), mask[None, None]
