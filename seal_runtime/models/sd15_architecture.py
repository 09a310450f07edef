"""Stable Diffusion 1.5's architecture with random weights, built from configs in code.

Two uses:
- timing (`stickerbot bench seal`, `bench gpu`): how long a step takes does not depend on
  the weights' values, so SD-1.5-scale costs (512 px, 64 x 64 latents, 16 cross-attention
  layers) are measured without downloading a model;
- a real diffusers folder for tests (`save_sd15_test_model`, `stickerbot make-test-model`):
  the same component classes as SD 1.5 (`UNet2DConditionModel` with cross-attention at
  three resolutions plus the mid block, `AutoencoderKL` x8, `CLIPTextModel`, a
  `CLIPTokenizer` in CLIP's file layout, SD 1.5's PNDM scheduler config), saved with
  `save_pretrained` and loadable with `StableDiffusionPipeline.from_pretrained(folder)`.
  At a tiny width it runs on a CPU at 512 px and its results are as large as a real
  model's (512 px PNGs, multi-megabyte LoRA weights), so the real path is exercised.

`width` scales every channel count; 1.0 is SD 1.5 (860M-parameter U-Net, 123M text
encoder, 84M VAE). Real stickers need real weights: `runtime.model` pointing at a
diffusers folder (model_loader.py).

    python -m seal_runtime.models.sd15_architecture --save PATH [--width 0.025]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

TEST_MODEL_WIDTH = 1 / 40
# SD 1.5's scheduler/scheduler_config.json (a PNDM scheduler), as shipped with the model.
SD15_SCHEDULER_CONFIG = {
    "beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear", "clip_sample": False,
    "num_train_timesteps": 1000, "set_alpha_to_one": False, "skip_prk_steps": True, "steps_offset": 1,
    "trained_betas": None,
}


def _channels(values: tuple[int, ...], width: float, groups: int) -> tuple[int, ...]:
    return tuple(max(groups, int(round(v * width / groups)) * groups) for v in values)


def sd15_components(width: float = 1.0, seed: int = 0, tokenizer=None):
    """(tokenizer, text_encoder, unet, vae, scheduler) in SD 1.5's layout, random weights."""
    from diffusers import AutoencoderKL, PNDMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    from seal_runtime.models.clip_vocabulary import write_clip_tokenizer

    if tokenizer is None:
        with tempfile.TemporaryDirectory() as folder:
            write_clip_tokenizer(Path(folder))
            tokenizer = CLIPTokenizer.from_pretrained(folder)
    torch.manual_seed(seed)
    groups = 32 if width >= 1 else 4
    text_width = _channels((768,), width, 64)[0]
    heads = 12 if width >= 1 else 2
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=text_width, intermediate_size=4 * text_width,
        num_hidden_layers=12 if width >= 1 else 2, num_attention_heads=heads, max_position_embeddings=77,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, projection_dim=text_width))
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
        in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2, sample_size=512,
        block_out_channels=_channels((128, 256, 512, 512), width, groups), norm_num_groups=groups,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        scaling_factor=0.18215,
    )
    return tokenizer, text_encoder.eval(), unet.eval(), vae.eval(), PNDMScheduler.from_config(SD15_SCHEDULER_CONFIG)


def sd15_random_backbone(device: torch.device, dtype: torch.dtype, *, width: float = 1.0, seed: int = 0):
    from diffusers import DDPMScheduler

    from seal_runtime.models.backbone import DiffusionBackbone

    tokenizer, text_encoder, unet, vae, scheduler = sd15_components(width, seed)
    return DiffusionBackbone(
        model_id=f"sd15-architecture-random-w{width:g}",
        tokenizer=tokenizer,
        text_encoder=text_encoder.to(device, dtype),
        unet=unet.to(device, dtype),
        noise_scheduler=DDPMScheduler.from_config(scheduler.config),
        vae=vae.to(device, dtype),
        resolution=512,
        device=device,
        dtype=dtype,
        adaptation_profile="sd15",
    )


def save_sd15_test_model(folder: Path, *, width: float = TEST_MODEL_WIDTH, seed: int = 0) -> Path:
    """A random SD-1.5-shaped diffusers pipeline in `folder` (offline, seconds at a tiny width)."""
    from diffusers import StableDiffusionPipeline

    from seal_runtime.models.clip_vocabulary import write_clip_tokenizer

    tokenizer, text_encoder, unet, vae, scheduler = sd15_components(width, seed)
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                   scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    folder = Path(folder)
    pipe.save_pretrained(folder, safe_serialization=True)
    # transformers 5 saves only tokenizer.json; SD 1.5's folder has CLIP's own two files too.
    write_clip_tokenizer(folder / "tokenizer")
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m seal_runtime.models.sd15_architecture", description=__doc__.split("\n")[0])
    parser.add_argument("--save", required=True, metavar="PATH", help="folder to write the diffusers pipeline to")
    parser.add_argument("--width", type=float, default=TEST_MODEL_WIDTH, help="channel scale (1.0 = SD 1.5's size)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    folder = save_sd15_test_model(Path(args.save), width=args.width, seed=args.seed)
    print(f"SD-1.5-shaped test model (width {args.width:g}, random weights) written to {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
