"""Samplers an operator can choose (`generation.scheduler`), all diffusers schedulers built
from the model's own noise schedule (`DiffusionBackbone.noise_scheduler.config`).

- `ddim`: DDIM, deterministic; 20 steps is the default.
- `dpmpp_2m_karras`: DPM-Solver++ (2M) with Karras sigmas; 15-25 steps for SD 1.5.
- `unipc`: UniPC; about the quality of DPM++ at 10-20 steps.
- `lcm`: the LCM scheduler, 2-8 steps, for a latent-consistency model or with an
  LCM-LoRA (`runtime.lcm_lora`); use guidance_scale 1-2 with it.
"""

from __future__ import annotations


def make_scheduler(name: str, base_config):
    from diffusers import (
        DDIMScheduler,
        DPMSolverMultistepScheduler,
        LCMScheduler,
        UniPCMultistepScheduler,
    )

    if name == "ddim":
        return DDIMScheduler.from_config(base_config)
    if name == "dpmpp_2m_karras":
        return DPMSolverMultistepScheduler.from_config(base_config, algorithm_type="dpmsolver++", solver_order=2,
                                                       use_karras_sigmas=True)
    if name == "unipc":
        return UniPCMultistepScheduler.from_config(base_config)
    if name == "lcm":
        return LCMScheduler.from_config(base_config)
    raise ValueError(f"unknown scheduler {name!r}")
