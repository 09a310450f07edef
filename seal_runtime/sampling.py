"""Text-to-image sampling with classifier-free guidance, written out like diffusers'
pipelines so that progress can be reported per step and both model kinds share it."""

from __future__ import annotations

from collections.abc import Callable

import torch

from seal_runtime.api.config import GenerationSettings
from seal_runtime.models.backbone import DiffusionBackbone
from seal_runtime.schedulers import make_scheduler

StepCallback = Callable[[int, int], None]


@torch.no_grad()
def sample(
    backbone: DiffusionBackbone,
    prompts: list[str],
    *,
    steps: int = 20,
    guidance_scale: float = 5.0,
    generator: torch.Generator | list[torch.Generator] | None = None,
    on_step: StepCallback | None = None,
    negative_prompt: str = "",
    scheduler: str = "ddim",
) -> torch.Tensor:
    """Returns pixels in [-1, 1], shape (len(prompts), 3, H, W). All prompts are sampled
    in one batch; a list of generators (one per prompt, as in diffusers' pipelines) gives
    each image its own seed, so an image does not depend on what it was batched with."""
    sampler = make_scheduler(scheduler, backbone.noise_scheduler.config)
    sampler.set_timesteps(steps, device=backbone.device)
    cond = backbone.encode_prompts(prompts)
    uncond = backbone.encode_prompts([negative_prompt] * len(prompts))
    shape = (len(prompts), backbone.latent_channels, backbone.latent_size, backbone.latent_size)
    if isinstance(generator, list):
        if len(generator) != len(prompts):
            raise ValueError(f"{len(generator)} generators for {len(prompts)} prompts")
        latents = torch.cat([torch.randn((1, *shape[1:]), generator=g, device="cpu", dtype=torch.float32)
                             for g in generator])
    else:
        latents = torch.randn(shape, generator=generator, device="cpu", dtype=torch.float32)
    latents = (latents * sampler.init_noise_sigma).to(backbone.device, backbone.dtype)
    unet = backbone.generation_unet()
    for i, t in enumerate(sampler.timesteps):
        model_in = sampler.scale_model_input(torch.cat([latents, latents]), t)
        noise = unet(model_in, t, encoder_hidden_states=torch.cat([uncond, cond])).sample
        noise_uncond, noise_cond = noise.chunk(2)
        noise = noise_uncond + guidance_scale * (noise_cond - noise_uncond)
        latents = sampler.step(noise, t, latents).prev_sample.to(backbone.dtype)
        if on_step is not None:
            on_step(i + 1, len(sampler.timesteps))
    return backbone.decode_latents(latents).float()


def to_pil_images(pixels: torch.Tensor):
    from PIL import Image

    arrays = ((pixels.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    return [Image.fromarray(a, "RGB") for a in arrays]


def denoise(image, backbone: DiffusionBackbone, generation: GenerationSettings = GenerationSettings()):
    """The runtime's clean-up of a raw generation (see GenerationSettings.denoise_px)."""
    return median_filter(image, generation.denoise_size(pixel_space=backbone.vae is None))


def median_filter(image, size: int):
    """A `size` x `size` median filter; 0 leaves the image as it is."""
    from PIL import ImageFilter

    return image.filter(ImageFilter.MedianFilter(size)) if size else image
