"""A few-step LoRA (LCM-LoRA) for generation only, never during adaptation.

`runtime.lcm_lora` names a local LoRA file (or its folder), e.g. LCM-LoRA for SD 1.5. It
is read once at start through diffusers' own loader (`StableDiffusionPipeline.lora_state_dict`,
which also converts Kohya-style files) into per-module weight deltas
`delta = B @ A * alpha / rank`. While `applied(backbone)` is active (a generation with the
`lcm` scheduler) the deltas are added to the U-Net's weights; afterwards the exact original
weights come back (kept aside, not subtracted, so fp16 rounding cannot drift). So a
concept is always learned on the plain model, and the concept's own LoRA (ttf/lora.py)
is unaffected: it wraps modules, this changes weights in place.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from pathlib import Path

import torch

log = logging.getLogger(__name__)


class SpeedLora:
    def __init__(self, deltas: dict[str, torch.Tensor], source: str) -> None:
        self.deltas = deltas  # U-Net module path -> weight delta (fp32, CPU)
        self.source = source

    @classmethod
    def load(cls, path: str | Path, unet) -> SpeedLora:
        from diffusers import StableDiffusionPipeline

        path = Path(path).expanduser()
        if not path.exists():
            raise RuntimeError(f"runtime.lcm_lora {path} does not exist (nothing is downloaded: put the file there)")
        state, alphas = StableDiffusionPipeline.lora_state_dict(str(path))
        return cls(lora_deltas(state, alphas or {}, unet), str(path))

    @contextmanager
    def applied(self, unet):
        originals = {}
        try:
            with torch.no_grad():
                for name, delta in self.deltas.items():
                    weight = unet.get_submodule(name).weight
                    originals[name] = weight.detach().clone()
                    weight.add_(delta.to(weight.device, weight.dtype))
            yield
        finally:
            with torch.no_grad():
                for name, original in originals.items():
                    unet.get_submodule(name).weight.copy_(original)


def lora_deltas(state: dict[str, torch.Tensor], alphas: dict, unet) -> dict[str, torch.Tensor]:
    """Weight deltas per U-Net module from a diffusers/peft-format LoRA state dict
    (`unet.<module>.lora_A.weight` / `lora_B.weight`, or `.lora.down` / `.lora.up`)."""
    pairs: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in state.items():
        name = key.removeprefix("unet.")
        if key.startswith("text_encoder"):
            continue
        for down, up in (("lora_A", "lora_B"), ("lora.down", "lora.up")):
            for part, role in ((down, "A"), (up, "B")):
                suffix = f".{part}.weight"
                if name.endswith(suffix):
                    pairs.setdefault(name[: -len(suffix)], {})[role] = tensor.float()
    deltas = {}
    for name, parts in pairs.items():
        if set(parts) != {"A", "B"}:
            raise ValueError(f"LoRA module {name} lacks its A or B matrix")
        module = unet.get_submodule(name)
        a, b = parts["A"], parts["B"]
        rank = a.shape[0]
        alpha = float(alphas.get(f"unet.{name}.alpha", alphas.get(f"{name}.alpha", rank)))
        if a.ndim == 4:  # a convolution: B (out, r, 1, 1) after A (r, in, kh, kw)
            delta = torch.einsum("or,rikl->oikl", b.flatten(1), a)
        else:
            delta = b @ a
        delta = delta * (alpha / rank)
        if delta.shape != module.weight.shape:
            raise ValueError(f"LoRA delta for {name} has shape {tuple(delta.shape)}, "
                             f"the U-Net's weight {tuple(module.weight.shape)}: made for another model?")
        deltas[name] = delta
    if not deltas:
        raise ValueError("no U-Net LoRA weights found")
    log.info("speed LoRA loaded", extra={"modules": len(deltas)})
    return deltas
