"""The builtin model: a small text-to-image model made of SD-1.5's component types.

It has the same parts as Stable Diffusion 1.5 — a CLIP text encoder with a BPE
tokenizer, a `UNet2DConditionModel` with cross-attention in down, mid and up
blocks, a DDPM noise schedule — so the SEAL code runs on it unchanged. It works
in pixel space (no VAE) at a small resolution so it trains and samples on a laptop
CPU. Its tokenizer ships with the weights (`builtin_model/tokenizer`); it is trained
by `stickerworld.tokenizer_training`, the only place that trains.
"""

from __future__ import annotations

from pathlib import Path

import torch
from diffusers import DDPMScheduler, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, PreTrainedTokenizerFast

BUILTIN_DIR = Path(__file__).parent / "builtin_model"

# Sizes of the builtin model; the trained weights shipped in seal_runtime/builtin_model
# carry their own configs, these are used to build it from scratch.
BUILTIN_RESOLUTION = 64
PIXEL_SHUFFLE = 4
# Training captions name the subject "a <identity words> character" (bot.schema.prompt_builder
# with stickerworld's subject words); the learned concept takes the same slot.
CONCEPT_PHRASE = "a {} character"
TEXT_HIDDEN = 128
MAX_PROMPT_TOKENS = 48


def text_encoder_config(vocab_size: int) -> CLIPTextConfig:
    return CLIPTextConfig(
        vocab_size=vocab_size,
        hidden_size=TEXT_HIDDEN,
        intermediate_size=TEXT_HIDDEN * 4,
        num_hidden_layers=3,
        num_attention_heads=4,
        max_position_embeddings=MAX_PROMPT_TOKENS,
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=1,
    )


def unet_config() -> dict:
    """SD 1.5's block layout, scaled down: cross-attention in the two upper levels and the
    mid block, a plain level at the bottom, working on 16 x 16 x 48 "latents" (64-px
    pixels folded 4 x 4 into channels, see DiffusionBackbone.pixel_shuffle).

    Self-attention on full 64 x 64 pixels cost 2.8 s per adaptation step on this CPU;
    at 16 x 16 it costs milliseconds. The shallowest cross-attention layers are the
    16 x 16 ones (`down_blocks.0`, `up_blocks.2`), SEAL's "Layer 0" of this model."""
    side = BUILTIN_RESOLUTION // PIXEL_SHUFFLE
    return dict(
        sample_size=side,
        in_channels=3 * PIXEL_SHUFFLE**2,
        out_channels=3 * PIXEL_SHUFFLE**2,
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        block_out_channels=(48, 96, 96),
        layers_per_block=1,
        attention_head_dim=24,
        cross_attention_dim=TEXT_HIDDEN,
        norm_num_groups=16,
    )


def noise_scheduler() -> DDPMScheduler:
    """v-prediction: an under-trained small model then draws blurry shapes rather than
    noise, and a cosine schedule suits small images."""
    return DDPMScheduler(
        num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", prediction_type="v_prediction", clip_sample=False
    )


def shipped_tokenizer() -> PreTrainedTokenizerFast:
    """The project's BPE tokenizer, in CLIP's format, as shipped with the builtin weights."""
    return PreTrainedTokenizerFast.from_pretrained(BUILTIN_DIR / "tokenizer")


def build_random_builtin(seed: int = 0):
    """Untrained builtin components from configs (tests and the pre-training fallback)."""
    torch.manual_seed(seed)
    tokenizer = shipped_tokenizer()
    text_encoder = CLIPTextModel(text_encoder_config(len(tokenizer)))
    unet = UNet2DConditionModel(**unet_config())
    return tokenizer, text_encoder, unet, noise_scheduler()


# -- v4: a latent miniature of SD 1.5 (docs/builtin_model.md, "v4") ---------------------------------
# A diffusers pipeline folder (model_index.json, vae/, unet/, text_encoder/, tokenizer/, scheduler/)
# loaded by the same code as an operator's SD 1.5 folder (loader.load_stable_diffusion); its
# `seal_model.json` carries the hints any folder may carry (concept phrase, adaptation profile).
BUILTIN_V4_DIR = Path(__file__).parent / "builtin_model_v4"
V4_RESOLUTION = 128
V4_MODEL_NAME = "builtin-stickerworld-v4"
# What runtime.model = "builtin" loads: v4 since its second run beat v3 on every attribute of the
# gate (docs/builtin_model.md); "builtin-v4" and "builtin-v3" name each one explicitly.
SHIPPED_BUILTIN = BUILTIN_V4_DIR
BUILTIN_NAMES = {"builtin": SHIPPED_BUILTIN, "builtin-v3": BUILTIN_DIR, "builtin-v4": BUILTIN_V4_DIR}


def vae_config_v4(resolution: int = V4_RESOLUTION) -> dict:
    """SD's AutoencoderKL with three levels, so two downsamplings: 4 x (SD: 8 x), 4 latent
    channels. At 8 x (16 x 16 latents at 128 px) the small faces, marks and patterns did not
    survive the round trip (docs/builtin_model.md). No mid-block attention: it is SD's option
    and costs most at full resolution on this CPU."""
    return {
        "in_channels": 3,
        "out_channels": 3,
        "latent_channels": 4,
        "layers_per_block": 1,
        "block_out_channels": (32, 64, 64),
        "down_block_types": ("DownEncoderBlock2D",) * 3,
        "up_block_types": ("UpDecoderBlock2D",) * 3,
        "norm_num_groups": 16,
        "mid_block_add_attention": False,
        "sample_size": resolution,
        "scaling_factor": 1.0,  # set from the trained encoder's latents (train_builtin_v4)
    }


def unet_config_v4(resolution: int = V4_RESOLUTION) -> dict:
    """SD 1.5's layout, four levels: SD has cross-attention at 64, 32 and 16 and a plain 8 x 8
    level plus the mid block; here the 32 x 32 latents (128 px) go through a plain level first
    and cross-attention sits at 16, 8 and 4 and in the mid block. Self-attention at 32 x 32
    (1,024 positions) cost 4 x the step time on this CPU (docs/builtin_model.md). SEAL's
    "shallow, highest-resolution" layers are then the 16 x 16 ones (down_blocks.1, up_blocks.2)."""
    return {
        "sample_size": resolution // 4,
        "in_channels": 4,
        "out_channels": 4,
        "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        "up_block_types": ("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        "block_out_channels": (32, 64, 96, 96),
        "layers_per_block": 1,
        "attention_head_dim": 32,
        "cross_attention_dim": TEXT_HIDDEN,
        "norm_num_groups": 16,
    }


def v4_manifest(model_id: str = V4_MODEL_NAME) -> dict:
    """The project's hints beside a diffusers folder (`seal_model.json`); see loader.py."""
    return {"format": "diffusers", "model_id": model_id, "concept_phrase": CONCEPT_PHRASE,
            "adaptation_profile": "builtin", "default_negative_prompt": ""}


def v4_scheduler() -> DDPMScheduler:
    """v3's schedule (cosine, v-prediction) with SD's `steps_offset` of 1, which
    StableDiffusionPipeline would otherwise rewrite (with a warning) when it loads the folder."""
    return DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", prediction_type="v_prediction",
                         clip_sample=False, steps_offset=1)


def v4_pipeline(tokenizer, text_encoder, unet, vae, scheduler=None):
    from diffusers import StableDiffusionPipeline

    return StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                   scheduler=scheduler or v4_scheduler(), safety_checker=None,
                                   feature_extractor=None, requires_safety_checker=False)


def save_v4_folder(folder: Path, tokenizer, text_encoder, unet, vae, manifest: dict, *, half: bool = True) -> Path:
    """Write the pipeline folder (fp16 weights unless `half` is off) and its manifest."""
    import copy
    import json

    parts = [text_encoder, unet, vae]
    if half:
        parts = [copy.deepcopy(p).half() for p in parts]
    folder = Path(folder)
    v4_pipeline(tokenizer, *parts).save_pretrained(folder, safe_serialization=True)
    (folder / "seal_model.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return folder


def random_v4_components(seed: int = 0, tokenizer=None, resolution: int = V4_RESOLUTION):
    """Untrained v4 parts from configs (tests build a v4 folder from these)."""
    from diffusers import AutoencoderKL

    torch.manual_seed(seed)
    tokenizer = tokenizer or shipped_tokenizer()
    text_encoder = CLIPTextModel(text_encoder_config(len(tokenizer)))
    unet = UNet2DConditionModel(**unet_config_v4(resolution))
    vae = AutoencoderKL(**vae_config_v4(resolution))
    return tokenizer, text_encoder.eval(), unet.eval(), vae.eval()


def save_random_v4(folder: Path, seed: int = 0, resolution: int = V4_RESOLUTION) -> Path:
    """A random v4 folder. Its VAE's scaling factor is set as training sets it (latents of unit
    variance), or the noise schedule would drown the random encoder's small latents."""
    tokenizer, text_encoder, unet, vae = random_v4_components(seed, resolution=resolution)
    ramp = torch.linspace(-1, 1, resolution)
    picture = torch.stack([ramp[None].expand(resolution, -1), ramp[:, None].expand(-1, resolution),
                           (ramp[None] * ramp[:, None])])[None]
    with torch.no_grad():
        spread = vae.encode(picture).latent_dist.mean.std()
    vae.register_to_config(scaling_factor=float(1.0 / spread))
    return save_v4_folder(folder, tokenizer, text_encoder, unet, vae, v4_manifest("builtin-random-v4"), half=False)
