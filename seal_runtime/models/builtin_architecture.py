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
