"""The parts of a text-to-image diffusion model that adaptation and sampling use.

One type serves SD-1.5-class pipelines (latent space, with a VAE) and the builtin
pixel-space model (`vae is None`), so the adaptation loop and the sampler are
written once. The builtin model folds each 4 x 4 pixel patch into channels
(`pixel_shuffle = 4`: 64 x 64 x 3 pixels <-> 16 x 16 x 48), a lossless stand-in for a
VAE that lets a small U-Net work at 16 x 16 like SD works at 64 x 64 latents.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL, SchedulerMixin, UNet2DConditionModel
from transformers import CLIPTextModel, PreTrainedTokenizerBase


@dataclass
class DiffusionBackbone:
    model_id: str
    tokenizer: PreTrainedTokenizerBase
    text_encoder: CLIPTextModel
    unet: UNet2DConditionModel
    noise_scheduler: SchedulerMixin
    vae: AutoencoderKL | None
    resolution: int
    device: torch.device
    dtype: torch.dtype
    pixel_shuffle: int = 1  # pixel space only: patch side folded into channels
    # Where the concept tokens sit in a prompt. The builtin model's captions always
    # name the subject "a <shape> <colour> <pattern> character", so its concept goes
    # into that slot ("a {} character"): put bare, the tokens land where the model
    # never saw identity words and its small text encoder does not carry them.
    concept_phrase: str = "{}"
    # Which adaptation defaults suit this model (config.ADAPTATION_PROFILES): the builtin
    # model's tuned set, or the Stable-Diffusion-class set.
    adaptation_profile: str = "builtin"
    # What classifier-free guidance steers from when a request names no negative prompt.
    default_negative_prompt: str = ""
    # Speed switches (RuntimeSettings): a TAESD decoder used instead of the VAE for
    # generation, a torch.compile'd U-Net for generation, LCM-LoRA deltas (speed_lora.py).
    tiny_vae: object | None = None
    compiled_unet: object | None = None
    lcm_lora: object | None = None

    def generation_unet(self):
        """The compiled U-Net when there is one and no LoRA layers are attached (a wrapped
        module would make torch.compile recompile for every concept); else the U-Net."""
        if self.compiled_unet is not None and getattr(self.unet, "peft_config", None) is None:
            return self.compiled_unet
        return self.unet

    def concept_words(self, tokens: list[str]) -> str:
        return self.concept_phrase.format(" ".join(tokens))

    @property
    def latent_channels(self) -> int:
        return self.unet.config.in_channels

    @property
    def latent_size(self) -> int:
        if self.vae is None:
            return self.resolution // self.pixel_shuffle
        return self.resolution // (2 ** (len(self.vae.config.block_out_channels) - 1))

    def tokenize(self, prompts: list[str]) -> torch.Tensor:
        return self.tokenizer(
            prompts,
            padding="max_length",
            max_length=self.tokenizer.model_max_length,
            truncation=True,
            return_tensors="pt",
        ).input_ids.to(self.device)

    def encode_prompts(self, prompts: list[str]) -> torch.Tensor:
        return self.text_encoder(self.tokenize(prompts))[0].to(self.dtype)

    def encode_images(self, pixels: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Pixels in [-1, 1] (B, 3, H, W) -> what the U-Net denoises. A VAE's latent is a
        sample of its posterior: drawn from `generator`, so a seed fixes it."""
        pixels = pixels.to(self.device, self.dtype)
        if self.vae is None:
            return F.pixel_unshuffle(pixels, self.pixel_shuffle) if self.pixel_shuffle > 1 else pixels
        latent = self.vae.encode(pixels).latent_dist.sample(generator=generator)
        return latent * self.vae.config.scaling_factor

    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """The inverse of encode_images; returns pixels in [-1, 1]."""
        if self.vae is None:
            pixels = F.pixel_shuffle(latents, self.pixel_shuffle) if self.pixel_shuffle > 1 else latents
            return pixels.clamp(-1, 1)
        if self.tiny_vae is not None:  # TAESD decodes SD's scaled latents directly
            return self.tiny_vae.decode(latents).sample.clamp(-1, 1)
        pixels = self.vae.decode(latents / self.vae.config.scaling_factor).sample
        return pixels.clamp(-1, 1)

    def freeze(self) -> None:
        """Test-time adaptation trains only what a method asks for; everything else is frozen."""
        for module in (self.unet, self.text_encoder, self.vae):
            if module is not None:
                module.requires_grad_(False)
                module.eval()
