"""Learned concepts as `learned_embeds.safetensors`, the format diffusers'
`load_textual_inversion` reads: a single {token: tensor (vectors, dim)} entry plus
string metadata (model id, settings hash, k, steps)."""

from __future__ import annotations

import json

import torch
from safetensors.torch import load as load_bytes
from safetensors.torch import save as save_bytes

from seal_runtime.ttf.concept_tokens import CONCEPT_PLACEHOLDER


def embedding_to_bytes(vectors: torch.Tensor, meta: dict) -> bytes:
    tensors = {CONCEPT_PLACEHOLDER: vectors.detach().float().cpu().contiguous()}
    return save_bytes(tensors, metadata={k: json.dumps(v) for k, v in meta.items()})


def read_metadata(data: bytes) -> dict:
    header_len = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + header_len])
    return {k: json.loads(v) for k, v in header.get("__metadata__", {}).items()}


def embedding_from_bytes(data: bytes) -> tuple[torch.Tensor, dict]:
    return load_bytes(data)[CONCEPT_PLACEHOLDER], read_metadata(data)
