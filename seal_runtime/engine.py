"""One job on the loaded model: (cached embedding or adapt) -> generate -> cut out.

Synchronous and single-threaded by design: the server runs it in one worker
thread so GPU work never overlaps and the event loop stays free.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable

import numpy as np
import torch
from PIL import Image

from seal_runtime.ttf.adaptation import adapt_concept
from seal_runtime.models.backbone import DiffusionBackbone
from seal_runtime.ttf.concept_tokens import ensure_tokens, expand_prompt, inject_concept, placeholder_tokens
from seal_runtime.api.config import AdaptationSettings, GenerationSettings
from seal_runtime.imaging.cutout import prepare_sticker
from seal_runtime.imaging.sticker_look import StickerLook
from seal_runtime.ttf.embedding_io import embedding_from_bytes, embedding_to_bytes
from seal_runtime.ttf.lora import lora_applied, lora_to_bytes
from seal_runtime.api.protocol import JobRequest, JobResult, ProgressEvent, RuntimeJobError
from seal_runtime.sampling import denoise, sample, to_pil_images
from seal_runtime.seal.plugins import build_loss_terms
from seal_runtime.imaging.subject_mask import compute_subject_mask

log = logging.getLogger(__name__)

Emit = Callable[[ProgressEvent], None]


def image_to_tensor(image: Image.Image, size: int) -> torch.Tensor:
    """RGBA reference -> (1, 3, size, size) in [-1, 1]; transparency becomes white,
    as the StickerWorld training images have it."""
    rgba = image.convert("RGBA").resize((size, size), Image.Resampling.LANCZOS)
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    rgb = Image.alpha_composite(white, rgba).convert("RGB")
    array = torch.from_numpy(np.asarray(rgb, dtype=np.float32) / 127.5 - 1.0)
    return array.permute(2, 0, 1).unsqueeze(0)


def mask_to_tensor(mask: Image.Image, size: int) -> torch.Tensor:
    resized = mask.convert("L").resize((size, size), Image.Resampling.BILINEAR)
    return torch.from_numpy(np.asarray(resized, dtype=np.float32) / 255.0)[None, None]


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


class StickerEngine:
    def __init__(self, backbone: DiffusionBackbone, sam_predictor=None, *, segment_stickers: bool = False) -> None:
        self.backbone = backbone
        self.sam_predictor = sam_predictor  # the segmenter (SAM or rembg), or None
        # Cut stickers out with it too (else the classical flood fill does).
        self.sticker_masker = sam_predictor if segment_stickers else None

    def run(self, request: JobRequest, emit: Emit) -> JobResult:
        backbone = self.backbone
        adaptation = AdaptationSettings.from_dict(request.adaptation)
        generation = GenerationSettings(**request.generation)
        settings_hash = adaptation.settings_hash(backbone.model_id)
        timings: dict[str, float] = {}
        try:
            reference = Image.open(io.BytesIO(request.reference_png))
            reference.load()
        except Exception as exc:  # a bad request is not worth retrying
            raise RuntimeJobError(f"reference is not a readable image: {exc}", retryable=False) from exc

        mask_png, mask_source = request.mask_png, None
        if mask_png is None:
            started = time.perf_counter()
            mask_image, mask_source = compute_subject_mask(reference.convert("RGBA"), self.sam_predictor)
            mask_png = png_bytes(mask_image)
            timings["mask_s"] = time.perf_counter() - started
        mask = Image.open(io.BytesIO(mask_png))

        adapted = False
        adapter_weights = request.adapter_weights
        cached = request.embedding
        if cached is not None and adaptation.method == "lora" and adapter_weights is None:
            # A LoRA concept is the embedding *and* its U-Net weights; half of it is a miss.
            log.warning("cached LoRA concept came without its adapter weights; adapting again")
            cached = None
        if cached is not None:
            vectors, meta = embedding_from_bytes(cached)
            if meta.get("model_id") not in (None, backbone.model_id):
                raise RuntimeJobError("cached embedding was made for another model", retryable=False)
            embedding = cached
        else:
            result = adapt_concept(
                backbone,
                image_to_tensor(reference, backbone.resolution),
                mask_to_tensor(mask, backbone.resolution),
                adaptation,
                loss_terms=build_loss_terms(adaptation, backbone),
                on_step=lambda i, n, loss: emit(ProgressEvent(request.job_id, "adapting", i, n, loss=loss)),
            )
            vectors = result.vectors
            timings["adapt_s"] = result.seconds
            timings["adapt_step_s"] = result.seconds / max(1, result.steps)
            meta = {
                "model_id": backbone.model_id,
                "settings_hash": settings_hash,
                "method": adaptation.method,
                "num_tokens": adaptation.num_tokens,
                "merge_rule": adaptation.merge_rule,
                "steps": result.steps,
                "final_loss": result.losses[-1] if result.losses else None,
            }
            embedding = embedding_to_bytes(vectors, meta)
            adapter_weights = None
            if "lora" in result.extra_state:
                adapter_weights = lora_to_bytes(
                    result.extra_state["lora"],
                    {"model_id": backbone.model_id, "settings_hash": settings_hash, "rank": result.extra_state["lora_rank"]},
                )
            adapted = True

        started = time.perf_counter()
        with lora_applied(backbone, adapter_weights if adaptation.method == "lora" else None):
            images = self.generate(request, vectors, generation, emit)
        timings["generate_s"] = time.perf_counter() - started
        timings["generate_per_image_s"] = timings["generate_s"] / max(1, len(images))
        return JobResult(
            job_id=request.job_id,
            model_id=backbone.model_id,
            settings_hash=settings_hash,
            embedding=embedding,
            images_png=tuple(png_bytes(i) for i in images),
            mask_png=mask_png if mask_source else None,
            mask_source=mask_source,
            adapted=adapted,
            timings=timings,
            adapter_weights=adapter_weights if adaptation.method == "lora" else None,
        )

    def generate(self, request: JobRequest, vectors: torch.Tensor, generation: GenerationSettings, emit: Emit):
        backbone = self.backbone
        tokens = placeholder_tokens(vectors.shape[0])
        token_ids = ensure_tokens(backbone, tokens)
        images = []
        vectors = vectors.to(backbone.device, backbone.dtype)
        for index, (prompt, seed) in enumerate(zip(request.prompts, request.seeds, strict=True)):
            generator = torch.Generator("cpu").manual_seed(int(seed))
            with inject_concept(backbone, token_ids, vectors):
                pixels = sample(
                    backbone,
                    [expand_prompt(prompt, backbone, tokens)],
                    steps=generation.steps,
                    guidance_scale=generation.guidance_scale,
                    generator=generator,
                    on_step=lambda j, m, index=index: emit(
                        ProgressEvent(request.job_id, "generating", j, m, image=index)
                    ),
                )
            image = denoise(to_pil_images(pixels)[0], backbone, generation)
            # A plain background is cut out, outlined and shadowed; a requested scene
            # (beach, city...) is kept whole, as the user asked for it, and framed.
            images.append(prepare_sticker(image, background=request.background,
                                          look=StickerLook.from_generation(generation), masker=self.sticker_masker))
        return images
