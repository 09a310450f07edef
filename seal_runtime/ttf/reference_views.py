"""More than one picture from one: views of the reference for test-time adaptation.

With one reference, everything in it is equally "the concept" to the diffusion loss: the
character, but also its background, its framing and its size. Textual inversion's own
answer is a random flip. Here, before the loop, `count` extra views are made from the
reference and its subject mask, the way single-image methods augment (random crops and
scales, and the masked subject pasted on other backgrounds):

- the subject is rescaled (zoomed in up to `max_zoom`, toward its upper part, where a
  close-up or an upper-body shot would frame it, or out to `min_zoom`) and moved;
- it is pasted on a plain background of a random colour, so no background is the
  concept's, and the framing differs from view to view.

Each view is encoded once; every step then draws its batch among the reference and its
views. Nothing here knows what the picture shows beyond its mask.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def subject_box(mask: torch.Tensor) -> tuple[float, float, float, float] | None:
    """(top, left, bottom, right) of the mask's subject in [-1, 1] coordinates, or None."""
    rows = torch.nonzero(mask[0, 0] > 0.5)
    if rows.shape[0] == 0:
        return None
    height, width = mask.shape[-2:]
    top, left = rows.min(dim=0).values.tolist()
    bottom, right = rows.max(dim=0).values.tolist()
    return (2 * top / (height - 1) - 1, 2 * left / (width - 1) - 1,
            2 * bottom / (height - 1) - 1, 2 * right / (width - 1) - 1)


def _uniform(generator: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand((), generator=generator))


def make_views(reference: torch.Tensor, mask: torch.Tensor, count: int, generator: torch.Generator,
               min_zoom: float = 0.7, max_zoom: float = 1.8) -> tuple[torch.Tensor, torch.Tensor]:
    """(1 + count views (V, 3, H, W) in [-1, 1], their masks (V, 1, H, W)); the first is the
    reference itself. Without a subject in the mask there is nothing to move: the reference alone."""
    box = subject_box(mask)
    if count <= 0 or box is None:
        return reference, mask
    top, left, bottom, right = box
    images, masks = [reference], [mask]
    for _ in range(count):
        zoom = _uniform(generator, min_zoom, max_zoom)
        # The point of the subject the view centres on: its middle when zoomed out; toward
        # its upper part when zoomed in (a face-first framing).
        centre_y = _uniform(generator, top, (top + bottom) / 2) if zoom > 1 else (top + bottom) / 2
        centre_x = (left + right) / 2 + _uniform(generator, -0.25, 0.25) * (right - left)
        # Where that point lands in the view: anywhere that keeps most of the subject inside.
        shift_y = _uniform(generator, -0.2, 0.2)
        shift_x = _uniform(generator, -0.3, 0.3)
        # grid_sample reads output pixel p from input position theta @ p: a zoom of z maps the
        # view's [-1, 1] onto 1/z of the reference around the centre.
        theta = torch.tensor([[1 / zoom, 0.0, centre_x - shift_x / zoom],
                              [0.0, 1 / zoom, centre_y - shift_y / zoom]], dtype=reference.dtype)[None]
        grid = F.affine_grid(theta, list(reference.shape), align_corners=False).to(reference.device)
        image = F.grid_sample(reference, grid, mode="bilinear", padding_mode="border", align_corners=False)
        subject = F.grid_sample(mask.to(reference.dtype), grid, mode="bilinear", padding_mode="zeros",
                                align_corners=False)
        colour = (torch.rand(1, 3, 1, 1, generator=generator) * 2 - 1).to(reference.device, reference.dtype)
        images.append(image * subject + colour * (1 - subject))
        masks.append(subject.to(mask.dtype))
    return torch.cat(images), torch.cat(masks)
