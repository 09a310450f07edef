"""segment-anything without torchvision.

`segment_anything` imports torchvision in two places: `utils/transforms.py` (for
`resize` and `to_pil_image`, used by `SamPredictor`) and `automatic_mask_generator.py`
(`batched_nms`, `box_area`), which its package `__init__` imports. On a machine where
torchvision imports (a GPU box with matching wheels) nothing here is used. Where it
does not — e.g. next to a CPU-only torch, where the available torchvision wheels fail
with `operator torchvision::nms does not exist` — `import_segment_anything()` puts a
small stand-in for exactly those four functions into `sys.modules` while
segment_anything is imported, and takes it out again afterwards, so no other library
ever sees a fake torchvision.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import sys
import types
from contextlib import contextmanager

import numpy as np
import torch
from PIL import Image

_STAND_IN_MODULES = (
    "torchvision",
    "torchvision.transforms",
    "torchvision.transforms.functional",
    "torchvision.ops",
    "torchvision.ops.boxes",
)


def torchvision_works() -> bool:
    try:
        importlib.import_module("torchvision.transforms.functional")
        importlib.import_module("torchvision.ops.boxes")
    except Exception:  # ImportError, or RuntimeError from a wheel built for another torch
        return False
    return True


# -- the four functions segment_anything uses -------------------------------------------
def to_pil_image(image: np.ndarray) -> Image.Image:
    """HxWxC uint8 array -> PIL image (what SamPredictor passes)."""
    return Image.fromarray(np.asarray(image))


def resize(image: Image.Image, size) -> Image.Image:
    """torchvision's `resize` on a PIL image with an (h, w) size: bilinear, as its default."""
    height, width = (size, size) if isinstance(size, int) else size
    return image.resize((int(width), int(height)), Image.Resampling.BILINEAR)


def box_area(boxes: torch.Tensor) -> torch.Tensor:
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def _box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    top_left = torch.max(a[:, None, :2], b[None, :, :2])
    bottom_right = torch.min(a[:, None, 2:], b[None, :, 2:])
    inter = (bottom_right - top_left).clamp(min=0).prod(-1)
    return inter / (box_area(a)[:, None] + box_area(b)[None, :] - inter).clamp_min(1e-12)


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    order = scores.argsort(descending=True)
    keep = []
    while order.numel():
        best = order[0]
        keep.append(int(best))
        if order.numel() == 1:
            break
        ious = _box_iou(boxes[best][None], boxes[order[1:]])[0]
        order = order[1:][ious <= iou_threshold]
    return torch.tensor(keep, dtype=torch.long, device=boxes.device)


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, idxs: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """NMS per category, by the usual offset trick (boxes of different idxs never overlap)."""
    if boxes.numel() == 0:
        return torch.empty((0,), dtype=torch.long, device=boxes.device)
    offsets = idxs.to(boxes) * (boxes.max() + 1)
    return nms(boxes + offsets[:, None], scores, iou_threshold)


@contextmanager
def torchvision_stand_in():
    """While active, `import torchvision.transforms.functional` / `torchvision.ops.boxes`
    give the functions above. Modules already in sys.modules are left alone."""
    added = []
    for name in _STAND_IN_MODULES:
        if name in sys.modules:
            continue
        module = types.ModuleType(name)
        module.__spec__ = importlib.machinery.ModuleSpec(name, loader=None, is_package=True)
        module.__path__ = []
        sys.modules[name] = module
        added.append(name)
    functional, boxes = sys.modules["torchvision.transforms.functional"], sys.modules["torchvision.ops.boxes"]
    functional.resize, functional.to_pil_image = resize, to_pil_image
    boxes.batched_nms, boxes.box_area, boxes.nms = batched_nms, box_area, nms
    try:
        yield
    finally:
        for name in added:
            sys.modules.pop(name, None)


def import_segment_anything():
    """The `segment_anything` package, with the torchvision stand-in only if needed."""
    if "segment_anything" in sys.modules or torchvision_works():
        return importlib.import_module("segment_anything")
    with torchvision_stand_in():
        return importlib.import_module("segment_anything")
