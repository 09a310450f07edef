"""One job on the loaded model: (cached concept or adapt) -> generate -> cut out.

`run` is the GPU part, synchronous: the server calls it in its one GPU thread, so GPU work
never overlaps and the event loop stays free. It reports through a JobControl (progress,
the learned concept the moment adaptation ends) and stops at the next step once the
control is cancelled. `finish` is the CPU part (clean-up, cut-out, PNG encoding): the
server runs it in a CPU thread, so the GPU thread moves on to the next job meanwhile.
"""

from __future__ import annotations

import contextlib
import io
import logging
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image

from seal_runtime.api.config import AdaptationSettings, GenerationSettings
from seal_runtime.api.protocol import (
    BAD_CACHED_CONCEPT,
    BAD_REQUEST,
    JobRequest,
    JobResult,
    LearnedConcept,
    ProgressEvent,
    RuntimeJobError,
)
from seal_runtime.imaging.cutout import prepare_sticker
from seal_runtime.imaging.sticker_look import StickerLook
from seal_runtime.imaging.subject_mask import compute_subject_mask
from seal_runtime.job_control import JobControl
from seal_runtime.models.backbone import DiffusionBackbone
from seal_runtime.sampling import median_filter, sample, to_pil_images
from seal_runtime.seal.plugins import build_loss_terms
from seal_runtime.ttf.adaptation import adapt_concept
from seal_runtime.ttf.concept_tokens import (
    ensure_tokens,
    expand_prompt,
    inject_concept,
    placeholder_tokens,
)
from seal_runtime.ttf.embedding_io import embedding_from_bytes, embedding_to_bytes
from seal_runtime.ttf.lora import check_lora_fits, lora_applied, lora_to_bytes

log = logging.getLogger(__name__)

# PNG at a fast level: the bot re-encodes every sticker for its platform anyway, and
# level 6 costs several times the CPU of level 1 for a file a few percent smaller.
PNG_COMPRESS_LEVEL = 1


def pad_to_square(image: Image.Image, fill) -> Image.Image:
    """Centre `image` on a square canvas of `fill`: a wide or tall reference keeps its
    proportions instead of being squashed (the character would be learned squashed)."""
    side = max(image.size)
    if image.width == image.height:
        return image
    canvas = Image.new(image.mode, (side, side), fill)
    canvas.paste(image, ((side - image.width) // 2, (side - image.height) // 2))
    return canvas


def image_to_tensor(image: Image.Image, size: int) -> torch.Tensor:
    """RGBA reference -> (1, 3, size, size) in [-1, 1], padded to a square; transparency
    (and the padding) becomes white, as the StickerWorld training images have it."""
    rgba = pad_to_square(image.convert("RGBA"), (255, 255, 255, 0)).resize((size, size), Image.Resampling.LANCZOS)
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    rgb = Image.alpha_composite(white, rgba).convert("RGB")
    array = torch.from_numpy(np.asarray(rgb, dtype=np.float32) / 127.5 - 1.0)
    return array.permute(2, 0, 1).unsqueeze(0)


def mask_to_tensor(mask: Image.Image, size: int) -> torch.Tensor:
    """The subject mask, padded like the reference (the padding is background)."""
    resized = pad_to_square(mask.convert("L"), 0).resize((size, size), Image.Resampling.BILINEAR)
    return torch.from_numpy(np.asarray(resized, dtype=np.float32) / 255.0)[None, None]


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buffer.getvalue()


def finish_image(image: Image.Image, denoise_size: int = 0, *, background: str = "auto",
                 look: StickerLook | None = None, masker=None) -> bytes:
    """One raw generation -> the sticker PNG: clean-up (a median filter of `denoise_size`,
    GenerationSettings.denoise_size), then a plain background is cut out, outlined and
    shadowed (`look`); a requested scene (beach, city...) is kept whole, as asked for, and
    framed. `masker`: the segmenter that cuts out, else the flood fill. CPU only."""
    return png_bytes(prepare_sticker(median_filter(image, denoise_size), background=background,
                                     look=look, masker=masker))


@dataclass
class Generated:
    """What the GPU part hands to the CPU part."""

    concept: LearnedConcept
    adapted: bool
    images: list[Image.Image]
    timings: dict[str, float] = field(default_factory=dict)


class StickerEngine:
    def __init__(self, backbone: DiffusionBackbone, sam_predictor=None, *, segment_stickers: bool = False) -> None:
        self.backbone = backbone
        self.sam_predictor = sam_predictor  # the segmenter (SAM or rembg), or None
        # Cut stickers out with it too (else the classical flood fill does).
        self.sticker_masker = sam_predictor if segment_stickers else None

    @property
    def model_id(self) -> str:
        return self.backbone.model_id

    @property
    def device(self) -> str:
        return str(self.backbone.device)

    @property
    def adaptation_profile(self) -> str:
        return self.backbone.adaptation_profile

    def run(self, request: JobRequest, control: JobControl | None = None) -> Generated:
        """The GPU part: the concept (cached, or learned and reported at once), then the images."""
        control = control or JobControl(request.job_id)
        backbone = self.backbone
        try:
            adaptation = AdaptationSettings.from_dict(request.adaptation).resolved(backbone.adaptation_profile).check()
            GenerationSettings.from_dict(request.generation).check()
        except (TypeError, ValueError) as exc:
            raise RuntimeJobError(str(exc), retryable=False, code=BAD_REQUEST) from exc
        settings_hash = adaptation.settings_hash(backbone.model_id, backbone.adaptation_profile)
        timings: dict[str, float] = {}
        try:
            reference = Image.open(io.BytesIO(request.reference_png))
            reference.load()
        except Exception as exc:  # a bad request is not worth retrying
            raise RuntimeJobError(f"reference is not a readable image: {exc}", retryable=False,
                                  code=BAD_REQUEST) from exc

        cached = request.embedding
        if cached is not None and adaptation.method == "lora" and request.adapter_weights is None:
            # A LoRA concept is the embedding *and* its U-Net weights; half of it is a miss.
            log.warning("cached LoRA concept came without its adapter weights; adapting again")
            cached = None
        if cached is not None:
            vectors = self._cached_vectors(cached, request.adapter_weights if adaptation.method == "lora" else None)
            concept = LearnedConcept(request.job_id, backbone.model_id, settings_hash, cached,
                                     request.adapter_weights if adaptation.method == "lora" else None)
            adapted = False
        else:
            concept, vectors = self._adapt(request, reference, adaptation, settings_hash, timings, control)
            control.concept(concept)
            adapted = True

        started = time.perf_counter()
        with lora_applied(backbone, concept.adapter_weights):
            images = self.generate(request, vectors, control)
        timings["generate_s"] = time.perf_counter() - started
        return Generated(concept, adapted, images, timings)

    def finish(self, request: JobRequest, generated: Generated) -> JobResult:
        """The CPU part: clean-up, cut-out and PNG encoding of each image."""
        generation = GenerationSettings.from_dict(request.generation)
        started = time.perf_counter()
        size = generation.denoise_size(pixel_space=self.backbone.vae is None)
        look = StickerLook.from_generation(generation)
        pngs = tuple(finish_image(image, size, background=request.background, look=look, masker=self.sticker_masker)
                     for image in generated.images)
        timings = dict(generated.timings)
        timings["finish_s"] = time.perf_counter() - started
        timings["generate_per_image_s"] = (timings["generate_s"] + timings["finish_s"]) / max(1, len(pngs))
        concept = generated.concept
        return JobResult(
            job_id=request.job_id, model_id=concept.model_id, settings_hash=concept.settings_hash,
            embedding=concept.embedding, images_png=pngs, mask_png=concept.mask_png,
            mask_source=concept.mask_source, adapted=generated.adapted, timings=timings,
            adapter_weights=concept.adapter_weights,
        )

    def _cached_vectors(self, embedding: bytes, adapter_weights: bytes | None) -> torch.Tensor:
        """The cached concept's vectors, after checking it fits this model: a cache entry
        that cannot be used is reported as such (the bot drops it and learns again)."""
        backbone = self.backbone
        try:
            vectors, meta = embedding_from_bytes(embedding)
        except Exception as exc:
            raise _bad_cached(f"the cached embedding does not load: {exc}") from exc
        if meta.get("model_id") not in (None, backbone.model_id):
            raise _bad_cached("the cached embedding was made for another model")
        width = backbone.text_encoder.get_input_embeddings().weight.shape[1]
        if vectors.ndim != 2 or vectors.shape[1] != width or not 1 <= vectors.shape[0] <= 16:
            raise _bad_cached(f"the cached embedding has shape {tuple(vectors.shape)}, this model needs (k, {width})")
        if not torch.isfinite(vectors).all():
            raise _bad_cached("the cached embedding holds NaN or infinite values")
        if adapter_weights is not None:
            try:
                check_lora_fits(backbone, adapter_weights)
            except Exception as exc:
                raise _bad_cached(f"the cached LoRA weights do not fit this model: {exc}") from exc
        return vectors

    def _adapt(self, request, reference, adaptation, settings_hash, timings, control):
        backbone = self.backbone
        mask_png, mask_source = request.mask_png, None
        if mask_png is None:
            started = time.perf_counter()
            mask_image, mask_source = compute_subject_mask(reference.convert("RGBA"), self.sam_predictor)
            mask_png = png_bytes(mask_image)
            timings["mask_s"] = time.perf_counter() - started
        mask = Image.open(io.BytesIO(mask_png))
        result = adapt_concept(
            backbone,
            image_to_tensor(reference, backbone.resolution),
            mask_to_tensor(mask, backbone.resolution),
            adaptation,
            loss_terms=build_loss_terms(adaptation, backbone),
            on_step=lambda i, n, loss: control.emit(ProgressEvent(request.job_id, "adapting", i, n, loss=loss)),
        )
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
        adapter_weights = None
        if "lora" in result.extra_state:
            adapter_weights = lora_to_bytes(
                result.extra_state["lora"],
                {"model_id": backbone.model_id, "settings_hash": settings_hash, "rank": result.extra_state["lora_rank"]},
            )
        concept = LearnedConcept(request.job_id, backbone.model_id, settings_hash,
                                 embedding_to_bytes(result.vectors, meta), adapter_weights,
                                 mask_png if mask_source else None, mask_source,
                                 {k: v for k, v in timings.items()})
        return concept, result.vectors

    def generate(self, request: JobRequest, vectors: torch.Tensor, control: JobControl) -> list[Image.Image]:
        """All of the request's images in one batch, each from its own seed."""
        backbone = self.backbone
        generation = GenerationSettings.from_dict(request.generation)
        tokens = placeholder_tokens(vectors.shape[0])
        token_ids = ensure_tokens(backbone, tokens)
        vectors = vectors.to(backbone.device, backbone.dtype)
        generators = [torch.Generator("cpu").manual_seed(int(seed)) for seed in request.seeds]
        negative = generation.negative_prompt
        # The LCM-LoRA makes the model a few-step one: only with the LCM scheduler.
        speed = backbone.lcm_lora.applied(backbone.unet) if (
            backbone.lcm_lora is not None and generation.scheduler == "lcm") else contextlib.nullcontext()
        with inject_concept(backbone, token_ids, vectors), speed:
            pixels = sample(
                backbone,
                [expand_prompt(prompt, backbone, tokens) for prompt in request.prompts],
                steps=generation.steps,
                guidance_scale=generation.guidance_scale,
                generator=generators,
                on_step=lambda j, m: control.emit(ProgressEvent(request.job_id, "generating", j, m)),
                negative_prompt=backbone.default_negative_prompt if negative is None else negative,
                scheduler=generation.scheduler,
            )
        return to_pil_images(pixels)

    def warm_up(self) -> float:
        """One small generation at start (compiles the U-Net when runtime.compile is on), so
        the first user does not pay for it. Returns the seconds it took."""
        started = time.perf_counter()
        with torch.no_grad():
            sample(self.backbone, ["a sticker"], steps=2, guidance_scale=1.0,
                   generator=torch.Generator("cpu").manual_seed(0))
        return time.perf_counter() - started


def _bad_cached(message: str) -> RuntimeJobError:
    return RuntimeJobError(message, retryable=False, code=BAD_CACHED_CONCEPT)
