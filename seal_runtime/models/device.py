"""Pick the torch device and dtype from settings (`auto` prefers CUDA, then MPS, then CPU)."""

from __future__ import annotations

import torch

_DTYPES = {"float16": torch.float16, "fp16": torch.float16, "bfloat16": torch.bfloat16,
           "bf16": torch.bfloat16, "float32": torch.float32, "fp32": torch.float32}


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device = 'cuda' is configured but torch sees no CUDA GPU")
    return torch.device(name)


def pick_dtype(name: str, device: torch.device) -> torch.dtype:
    """fp16 on GPUs (half the memory, tensor cores; adaptation scales its loss, see
    ttf.adaptation.loss_scaler); fp32 on CPU, where fp16 is slow. bf16 when asked for."""
    if name == "auto":
        return torch.float16 if device.type in ("cuda", "mps") else torch.float32
    try:
        dtype = _DTYPES[name]
    except KeyError:
        raise ValueError(f"unknown dtype {name!r}; use one of auto, {', '.join(sorted(_DTYPES))}") from None
    # bf16 has fp32's range (no loss scaling needed) but needs Ampere or newer on CUDA.
    if dtype is torch.bfloat16 and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ValueError("dtype bfloat16 is configured but this GPU does not support it; use float16")
    return dtype
