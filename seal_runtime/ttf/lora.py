"""The second test-time fine-tuning base: DreamBooth-style LoRA on the U-Net attention.

SEAL is plug-and-play: it wraps a TTF method without changing it. Besides textual
inversion (only the concept vectors learn), `adaptation.method = "lora"` also learns
low-rank updates (peft `LoraConfig`, rank `adaptation.lora_rank`) of the query, key,
value and output projections of every U-Net attention layer, jointly with the concept
tokens, in the same loop, with the same SEAL loss terms, token strategy and layer
selection.

The U-Net is shared by every job the runtime serves, so LoRA layers exist only while
they are used: `UnetLora.attach` wraps the projections (B = 0, so the model starts
unchanged), `detach` unwraps them back to the original `nn.Linear` modules and keeps
the trained weights. For generation, `lora_applied(backbone, data)` wraps them again
with saved weights for the duration of a `with` block.

The weights travel as their own safetensors blob (`lora_to_bytes`): putting them
next to the token in `learned_embeds.safetensors` would break diffusers'
`load_textual_inversion`, which expects exactly one tensor there. Keys are
`<module path>.lora_A.weight` / `.lora_B.weight` (peft's layout without adapter name).
"""

from __future__ import annotations

import json
from contextlib import contextmanager

import torch
from safetensors.torch import load as load_bytes
from safetensors.torch import save as save_bytes

ADAPTER_NAME = "seal_concept"
# Every attention projection of the U-Net's transformer blocks (self- and cross-attention).
TARGET_MODULES = r".*attn[12]\.(to_q|to_k|to_v|to_out\.0)"


def _tuner_layers(unet):
    from peft.tuners.tuners_utils import BaseTunerLayer

    return [(name, module) for name, module in unet.named_modules() if isinstance(module, BaseTunerLayer)]


class UnetLora:
    """Trainable LoRA layers on the U-Net attention projections, attached for one adaptation."""

    def __init__(self, rank: int, seed: int = 0) -> None:
        if rank < 1:
            raise ValueError(f"lora_rank must be >= 1, got {rank}")
        self.rank = rank
        self.seed = seed
        self._unet = None

    def attach(self, backbone) -> list[torch.nn.Parameter]:
        from peft import LoraConfig, inject_adapter_in_model

        if _tuner_layers(backbone.unet):
            raise RuntimeError("the U-Net already carries LoRA layers")
        config = LoraConfig(r=self.rank, lora_alpha=self.rank, target_modules=TARGET_MODULES, init_lora_weights=True)
        # peft draws lora_A from the global generator: fork it so the seed decides, and
        # nothing else in the process sees a changed random state.
        self._unet = backbone.unet  # set first, so detach() also cleans up a failed attach
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            inject_adapter_in_model(config, backbone.unet, adapter_name=ADAPTER_NAME)
        params = []
        for _, module in _tuner_layers(backbone.unet):
            for part in (module.lora_A[ADAPTER_NAME], module.lora_B[ADAPTER_NAME]):
                part.float()  # learn in fp32 even on an fp16 model (peft casts the input)
                part.weight.requires_grad_(True)
                params.append(part.weight)
        return params

    @property
    def attached(self) -> bool:
        return self._unet is not None

    def state_dict(self) -> dict[str, torch.Tensor]:
        state = {}
        for name, module in _tuner_layers(self._unet):
            state[f"{name}.lora_A.weight"] = module.lora_A[ADAPTER_NAME].weight.detach().float().cpu().clone()
            state[f"{name}.lora_B.weight"] = module.lora_B[ADAPTER_NAME].weight.detach().float().cpu().clone()
        return state

    def detach(self) -> None:
        if self._unet is not None:
            remove_lora(self._unet)
            self._unet = None


def remove_lora(unet) -> None:
    """Put the original projection modules back in place of peft's LoRA wrappers."""
    for name, module in _tuner_layers(unet):
        parent_name, _, child = name.rpartition(".")
        parent = unet.get_submodule(parent_name) if parent_name else unet
        setattr(parent, child, module.get_base_layer())
    config = getattr(unet, "peft_config", None)
    if isinstance(config, dict):
        config.pop(ADAPTER_NAME, None)
        if not config:
            del unet.peft_config


def lora_to_bytes(state: dict[str, torch.Tensor], meta: dict) -> bytes:
    tensors = {key: value.contiguous() for key, value in state.items()}
    return save_bytes(tensors, metadata={key: json.dumps(value) for key, value in meta.items()})


def lora_from_bytes(data: bytes) -> tuple[dict[str, torch.Tensor], dict]:
    header_len = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + header_len])
    meta = {k: json.loads(v) for k, v in header.get("__metadata__", {}).items()}
    return load_bytes(data), meta


def check_lora_fits(backbone, data: bytes) -> None:
    """Raise ValueError unless `data` holds LoRA weights for exactly this U-Net's attention
    projections (names and shapes), so a cache entry made elsewhere is caught before use."""
    import re

    state, meta = lora_from_bytes(data)
    rank = int(meta.get("rank", 4))
    pattern = re.compile(TARGET_MODULES)
    expected = {}
    for name, module in backbone.unet.named_modules():
        if pattern.fullmatch(name) and isinstance(module, torch.nn.Linear):
            expected[f"{name}.lora_A.weight"] = (rank, module.in_features)
            expected[f"{name}.lora_B.weight"] = (module.out_features, rank)
    if set(state) != set(expected):
        missing, extra = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
        raise ValueError(f"{len(missing)} LoRA tensors missing, {len(extra)} unexpected "
                         f"(e.g. {(missing or extra)[0]})")
    for key, shape in expected.items():
        if tuple(state[key].shape) != shape:
            raise ValueError(f"{key} has shape {tuple(state[key].shape)}, expected {shape}")


@contextmanager
def lora_applied(backbone, data: bytes | None):
    """While active, the U-Net carries the LoRA weights in `data` (no-op for None)."""
    if data is None:
        yield
        return
    state, meta = lora_from_bytes(data)
    lora = UnetLora(int(meta.get("rank", 4)))
    lora.attach(backbone)
    try:
        with torch.no_grad():
            for name, module in _tuner_layers(backbone.unet):
                for part in ("lora_A", "lora_B"):
                    key = f"{name}.{part}.weight"
                    if key not in state:
                        raise ValueError(f"LoRA weights lack {key}: made for another model?")
                    weight = getattr(module, part)[ADAPTER_NAME].weight
                    weight.copy_(state[key].to(weight.device, weight.dtype))
                    weight.requires_grad_(False)
        yield
    finally:
        lora.detach()
