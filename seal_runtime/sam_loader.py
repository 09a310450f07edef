"""segment-anything predictor, when a SAM checkpoint is configured (else None)."""

from __future__ import annotations

import logging

from seal_runtime.config import RuntimeSettings

log = logging.getLogger(__name__)


def load_sam_predictor(settings: RuntimeSettings, device):
    if not settings.sam_checkpoint:
        return None
    from segment_anything import SamPredictor, sam_model_registry

    sam = sam_model_registry[settings.sam_model_type](checkpoint=settings.sam_checkpoint)
    sam.to(device)
    log.info("SAM loaded", extra={"checkpoint": settings.sam_checkpoint})
    return SamPredictor(sam)
