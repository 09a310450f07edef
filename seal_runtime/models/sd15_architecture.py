"""Stable Diffusion 1.5's architecture with random weights, built from configs in code.

For timing only (`stickerbot bench seal` on a GPU): how long a step takes does not depend
on the weights' values, so SEAL's overhead at SD-1.5 scale (512 px, 64 x 64 latents,
16 cross-attention layers) can be measured without downloading a model. Real stickers
need real weights: `runtime.model` pointing at a diffusers folder (model_loader.py).

`width` scales every channel count; 1.0 is SD 1.5 (860M-parameter U-Net, 123M text
encoder, 84M VAE). The tests build it at width 1/40 on the CPU.
"""

from __future__ import annotations

import torch


def _channels(values: tuple[int, ...], width: float, groups: int) -> tuple[int, ...]:
    return tuple(max(groups, int(round(v * width / groups)) * groups) for v in values)


def sd15_random_backbone(device: torch.device, dtype: torch.dtype, *, width: float = 1.0, seed: int = 0):
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from seal_runtime.models.backbone import DiffusionBackbone
    from seal_runtime.models.builtin_architecture import shipped_tokenizer

    torch.manual_seed(seed)
    groups = 32 if width >= 1 else 4
    text_width = _channels((768,), width, 64)[0]
    heads = 12 if width >= 1 else 2
    tokenizer = shipped_tokenizer()
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=text_width, intermediate_size=4 * text_width,
        num_hidden_layers=12 if width >= 1 else 2, num_attention_heads=heads, max_position_embeddings=77,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id))
    unet = UNet2DConditionModel(
        sample_size=64,
        in_channels=4,
        out_channels=4,
        block_out_channels=_channels((320, 640, 1280, 1280), width, groups),
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        layers_per_block=2,
        cross_attention_dim=text_width,
        attention_head_dim=8 if width >= 1 else 2,
        norm_num_groups=groups,
    )
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2,
        block_out_channels=_channels((128, 256, 512, 512), width, groups), norm_num_groups=groups,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        scaling_factor=0.18215,
    )
    scheduler = DDPMScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012,
                              beta_schedule="scaled_linear", clip_sample=False, prediction_type="epsilon")
    return DiffusionBackbone(
        model_id=f"sd15-architecture-random-w{width:g}",
        tokenizer=tokenizer,
        text_encoder=text_encoder.to(device, dtype).eval(),
        unet=unet.to(device, dtype).eval(),
        noise_scheduler=scheduler,
        vae=vae.to(device, dtype).eval(),
        resolution=512,
        device=device,
        dtype=dtype,
    )
