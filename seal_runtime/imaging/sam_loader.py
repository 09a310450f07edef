"""The segment-anything step of the subject mask, when a SAM checkpoint is configured.

`load_sam_predictor(settings, device)` returns a `SamMasker` (or None when
`runtime.sam_checkpoint` is unset). `compute_subject_mask` calls
`masker.mask(image)`: a PIL image in, an "L" mask of the same size out (255 =
subject), or None when SAM found nothing usable, so the classical fallback runs.
Attributes the masker does not have (`set_image`, `predict`, `model`) reach the
wrapped `SamPredictor`, so code written for a bare predictor also works.

SAM is prompted the way a sticker reference is framed: one positive point at the
centre, three candidate masks, the best-scored one that covers a plausible share of
the picture; if none does, a whole-image box.

torchvision: segment_anything needs it only for two resize helpers (and NMS in the
automatic generator); `seal_runtime.imaging.torchvision_compat` stands in for them when
torchvision does not import, and the real one is used when it does.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from PIL import Image

from seal_runtime.api.config import RuntimeSettings
from seal_runtime.imaging.torchvision_compat import import_segment_anything

log = logging.getLogger(__name__)

# A subject mask outside this share of the picture is taken as SAM missing the subject
# (a speck, or the whole frame).
MIN_AREA = 0.02
MAX_AREA = 0.95


class SamMasker:
    """Subject mask of a reference picture with a `SamPredictor`."""

    source = "sam"

    def __init__(self, predictor) -> None:
        self.predictor = predictor

    def __getattr__(self, name):
        # Only called for attributes SamMasker lacks: delegate to the predictor.
        if name == "predictor":
            raise AttributeError(name)
        return getattr(self.predictor, name)

    @torch.no_grad()
    def mask(self, image: Image.Image) -> Image.Image | None:
        rgb = np.asarray(image.convert("RGB"))
        height, width = rgb.shape[:2]
        self.predictor.set_image(rgb)
        masks, scores, _ = self.predictor.predict(
            point_coords=np.array([[width / 2, height / 2]]), point_labels=np.array([1]), multimask_output=True
        )
        chosen = _best(masks, scores)
        if chosen is None:
            masks, scores, _ = self.predictor.predict(box=np.array([0, 0, width - 1, height - 1]), multimask_output=False)
            chosen = _best(masks, scores)
        if chosen is None:
            return None
        return Image.fromarray(chosen.astype(np.uint8) * 255, mode="L")

    __call__ = mask


def _best(masks: np.ndarray, scores: np.ndarray) -> np.ndarray | None:
    """Highest-scored mask of plausible size; else the highest-scored non-empty, non-full one."""
    areas = masks.reshape(len(masks), -1).mean(axis=1)
    order = np.argsort(-np.asarray(scores))
    plausible = [i for i in order if MIN_AREA <= areas[i] <= MAX_AREA]
    usable = [i for i in order if 0.0 < areas[i] < 1.0]
    pick = plausible or usable
    return masks[pick[0]] if pick else None


def load_sam_predictor(settings: RuntimeSettings, device) -> SamMasker | None:
    if not settings.sam_checkpoint:
        return None
    segment_anything = import_segment_anything()
    # Build without weights, then load them mapped to the CPU: checkpoints saved from a
    # GPU then load anywhere, and torch.load stays weights-only.
    sam = segment_anything.sam_model_registry[settings.sam_model_type]()
    state = torch.load(settings.sam_checkpoint, map_location="cpu", weights_only=True)
    sam.load_state_dict(state)
    sam.to(device).eval()
    log.info("SAM loaded", extra={"checkpoint": settings.sam_checkpoint, "model_type": settings.sam_model_type})
    return SamMasker(segment_anything.SamPredictor(sam))


def load_segmenter(settings: RuntimeSettings, device):
    """The configured segmenter: rembg from its ONNX file, else SAM from its checkpoint, else None."""
    from seal_runtime.imaging.rembg_loader import load_rembg_masker

    return load_rembg_masker(settings) or load_sam_predictor(settings, device)
