"""Load the configured model into a DiffusionBackbone.

`builtin` names a folder shipped with the project (`builtin_architecture.BUILTIN_NAMES`:
`builtin-v3`, the small pixel-space model in `seal_runtime/models/builtin_model/`, or
`builtin-v4`, a latent SD-1.5-class pipeline folder in `builtin_model_v4/`; before v3 is
trained, its architecture with random weights). A folder is loaded by what it holds, not by
its name: a pixel-space manifest goes to `load_pixel_model`; anything else is a
Stable-Diffusion-1.5-class diffusers pipeline (a local folder, or a model id that the
operator allowed to be fetched), v4 included, through `load_stable_diffusion`.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch

from seal_runtime.api.config import RuntimeSettings
from seal_runtime.models.backbone import DiffusionBackbone
from seal_runtime.models.builtin_architecture import BUILTIN_DIR, BUILTIN_NAMES
from seal_runtime.models.device import pick_device, pick_dtype
from seal_runtime.models.identity import local_model_id

log = logging.getLogger(__name__)

PIXEL_MODEL_MANIFEST = "seal_model.json"
RANDOM_BUILTIN_ID = "builtin-random-v0"


def load_backbone(settings: RuntimeSettings) -> DiffusionBackbone:
    device = pick_device(settings.device)
    dtype = pick_dtype(settings.dtype, device)
    source = str(BUILTIN_NAMES.get(settings.model, settings.model))
    if settings.model in BUILTIN_NAMES and Path(source) == BUILTIN_DIR and not is_pixel_model(BUILTIN_DIR):
        log.warning("builtin model has no trained weights yet; using random weights (it draws noise)")
        backbone = random_builtin(device, dtype)
    elif settings.model in BUILTIN_NAMES and not Path(source).exists():
        raise RuntimeError(f"runtime.model {settings.model!r}: {source} is not shipped in this checkout")
    elif is_pixel_model(Path(source)):
        backbone = load_pixel_model(Path(source), device, dtype)
    else:
        backbone = load_stable_diffusion(source, device, dtype, allow_downloads=settings.allow_downloads)
    if settings.resolution:
        backbone.resolution = settings.resolution
    if settings.concept_phrase:
        if settings.concept_phrase.count("{}") != 1:
            raise ValueError(f"runtime.concept_phrase must contain '{{}}' once (where the concept goes), "
                             f"got {settings.concept_phrase!r}")
        if settings.concept_phrase != backbone.concept_phrase:
            # Embeddings learned with another phrase do not fit this one: a distinct id
            # gives them a distinct cache key.
            backbone.model_id = f"{backbone.model_id} [{settings.concept_phrase}]"
            backbone.concept_phrase = settings.concept_phrase
    backbone.freeze()
    apply_speed_switches(backbone, settings)
    log.info("model loaded", extra={"model_id": backbone.model_id, "device": str(device), "dtype": str(dtype)})
    return backbone


# What SD-class generations are steered away from when a request names no negative prompt:
# a sticker is one clean, centred subject, not a photo with text on it.
STICKER_NEGATIVE_PROMPT = ("photo, photorealistic, blurry, lowres, jpeg artifacts, text, watermark, signature, "
                           "frame, border, cropped, out of frame, multiple characters, busy background")


def apply_speed_switches(backbone: DiffusionBackbone, settings: RuntimeSettings) -> None:
    """TAESD, LCM-LoRA, channels-last and torch.compile, as configured (all local files)."""
    device, dtype = backbone.device, backbone.dtype
    if settings.taesd:
        if backbone.vae is None:
            raise RuntimeError("runtime.taesd needs a latent (VAE) model; the builtin model has no VAE")
        from diffusers import AutoencoderTiny

        folder = Path(settings.taesd).expanduser()
        if not folder.exists():
            raise RuntimeError(f"runtime.taesd {folder} does not exist (nothing is downloaded: put it there)")
        backbone.tiny_vae = AutoencoderTiny.from_pretrained(folder, torch_dtype=dtype).to(device).eval()
        backbone.tiny_vae.requires_grad_(False)
    if settings.lcm_lora:
        from seal_runtime.models.speed_lora import SpeedLora

        backbone.lcm_lora = SpeedLora.load(settings.lcm_lora, backbone.unet)
    if device.type == "cuda":
        if settings.channels_last:
            backbone.unet.to(memory_format=torch.channels_last)
            if backbone.vae is not None:
                backbone.vae.to(memory_format=torch.channels_last)
        if settings.compile:
            # The same module, compiled for generation; adaptation runs it eagerly (backward
            # through a compiled graph with changing hooks would recompile).
            backbone.compiled_unet = torch.compile(backbone.unet, mode="max-autotune-no-cudagraphs")
    elif settings.compile:
        log.warning("runtime.compile is for CUDA; running the U-Net eagerly on %s", device.type)


def random_builtin(device: torch.device, dtype: torch.dtype, seed: int = 0) -> DiffusionBackbone:
    from seal_runtime.models.builtin_architecture import (
        BUILTIN_RESOLUTION,
        CONCEPT_PHRASE,
        PIXEL_SHUFFLE,
        build_random_builtin,
    )

    tokenizer, text_encoder, unet, scheduler = build_random_builtin(seed)
    return DiffusionBackbone(
        model_id=RANDOM_BUILTIN_ID,
        tokenizer=tokenizer,
        text_encoder=_to(text_encoder, device, dtype),
        unet=_to(unet, device, dtype),
        noise_scheduler=scheduler,
        vae=None,
        resolution=BUILTIN_RESOLUTION,
        device=device,
        dtype=dtype,
        pixel_shuffle=PIXEL_SHUFFLE,
        concept_phrase=CONCEPT_PHRASE,
    )


def _to(module, device: torch.device, dtype: torch.dtype):
    """Move, and cast only when needed (diffusers warns on every dtype cast)."""
    module = module.to(device)
    return module if next(module.parameters()).dtype == dtype else module.to(dtype)


def is_pixel_model(folder: Path) -> bool:
    """A folder written by `save_pixel_model` (its manifest says so); a diffusers pipeline
    folder may carry a `seal_model.json` of hints too (`model_hints`)."""
    manifest = folder / PIXEL_MODEL_MANIFEST
    return manifest.exists() and json.loads(manifest.read_text()).get("format", "pixel-diffusion") == "pixel-diffusion"


def model_hints(folder: Path) -> dict:
    """What a diffusers folder's optional `seal_model.json` tells the runtime about the model:
    `model_id` (the prefix of its content-hash id), `concept_phrase`, `adaptation_profile`,
    `default_negative_prompt`. An operator's SD folder has none: SD 1.5's defaults apply."""
    manifest = folder / PIXEL_MODEL_MANIFEST
    return json.loads(manifest.read_text()) if manifest.exists() else {}


def save_pixel_model(folder: Path, backbone: DiffusionBackbone, extra_manifest: dict | None = None) -> None:
    """Write a pixel-space model in diffusers' per-component layout plus a manifest."""
    folder.mkdir(parents=True, exist_ok=True)
    backbone.tokenizer.save_pretrained(folder / "tokenizer")
    backbone.text_encoder.save_pretrained(folder / "text_encoder", safe_serialization=True)
    backbone.unet.save_pretrained(folder / "unet", safe_serialization=True)
    backbone.noise_scheduler.save_pretrained(folder / "scheduler")
    manifest = {"format": "pixel-diffusion", "model_id": backbone.model_id, "resolution": backbone.resolution,
                "pixel_shuffle": backbone.pixel_shuffle, "concept_phrase": backbone.concept_phrase}
    manifest.update(extra_manifest or {})
    (folder / PIXEL_MODEL_MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")


def load_pixel_model(folder: Path, device: torch.device, dtype: torch.dtype) -> DiffusionBackbone:
    from diffusers import DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, PreTrainedTokenizerFast

    manifest = json.loads((folder / PIXEL_MODEL_MANIFEST).read_text())
    return DiffusionBackbone(
        model_id=manifest["model_id"],
        tokenizer=PreTrainedTokenizerFast.from_pretrained(folder / "tokenizer"),
        text_encoder=CLIPTextModel.from_pretrained(folder / "text_encoder", torch_dtype=dtype).to(device),
        unet=UNet2DConditionModel.from_pretrained(folder / "unet", torch_dtype=dtype).to(device),
        noise_scheduler=DDPMScheduler.from_pretrained(folder / "scheduler"),
        vae=None,
        resolution=int(manifest["resolution"]),
        device=device,
        dtype=dtype,
        pixel_shuffle=int(manifest.get("pixel_shuffle", 1)),
        concept_phrase=manifest.get("concept_phrase", "{}"),
        adaptation_profile=manifest.get("adaptation_profile", "builtin"),
    )


def load_stable_diffusion(source: str, device: torch.device, dtype: torch.dtype, *, allow_downloads: bool) -> DiffusionBackbone:
    """An SD-1.5-class pipeline from a local folder, or a model id when downloads are allowed."""
    from diffusers import DDPMScheduler, StableDiffusionPipeline

    local = Path(source).expanduser()
    if not local.exists() and not allow_downloads:
        raise RuntimeError(
            f"model {source!r} is not a local folder and allow_downloads is off; download the model "
            "(e.g. with `huggingface-cli download`) and point `runtime.model` at the folder"
        )
    pipe = StableDiffusionPipeline.from_pretrained(
        str(local) if local.exists() else source,
        torch_dtype=dtype,
        safety_checker=None,
        requires_safety_checker=False,
        local_files_only=not allow_downloads,
    )
    hints = model_hints(local) if local.exists() else {}
    # A hub id names its repository; a local folder is known by its content (models/identity.py).
    model_id = local_model_id(local, hints.get("model_id", "sd")) if local.exists() else source
    log.info("model identified", extra={"model_id": model_id, "folder": local.name if local.exists() else None})
    return DiffusionBackbone(
        model_id=model_id,
        tokenizer=pipe.tokenizer,
        text_encoder=pipe.text_encoder.to(device),
        unet=pipe.unet.to(device),
        noise_scheduler=DDPMScheduler.from_config(pipe.scheduler.config),
        vae=pipe.vae.to(device),
        resolution=pipe.unet.config.sample_size * pipe.vae_scale_factor,
        device=device,
        dtype=dtype,
        concept_phrase=hints.get("concept_phrase", "{}"),
        adaptation_profile=hints.get("adaptation_profile", "sd15"),
        default_negative_prompt=hints.get("default_negative_prompt", STICKER_NEGATIVE_PROMPT),
    )
