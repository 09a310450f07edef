"""Messages between the bot and the runtime process (JSON over HTTP, NDJSON events).

Torch-free: the bot imports this module and the client, never the model code. A
request carries everything the runtime needs (reference bytes or the cached
embedding), and the result carries the new embedding back, so the runtime keeps
no state between jobs and a crash loses nothing.
"""

from __future__ import annotations

import base64
from dataclasses import asdict, dataclass, field

API_VERSION = 1
# The header that carries runtime.shared_secret from the bot to the runtime.
SECRET_HEADER = "X-Seal-Secret"


def b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


def unb64(text: str | None) -> bytes | None:
    return None if text is None else base64.b64decode(text)


@dataclass(frozen=True)
class JobRequest:
    job_id: str
    reference_png: bytes
    prompts: tuple[str, ...]
    seeds: tuple[int, ...]
    adaptation: dict  # AdaptationSettings as a dict
    generation: dict  # GenerationSettings as a dict
    mask_png: bytes | None = None
    embedding: bytes | None = None  # cached learned_embeds.safetensors; skips adaptation
    # Cached LoRA weights that belong with `embedding` when adaptation.method is "lora".
    adapter_weights: bytes | None = None
    # Which claim of the bot's job this is (1, 2, …): names the attempt in Redis, where the
    # same attempt sent twice must run once. The runtime itself ignores it.
    attempt: int = 0

    def to_json(self) -> dict:
        data = asdict(self)
        data.update(reference_png=b64(self.reference_png), mask_png=b64(self.mask_png),
                    embedding=b64(self.embedding), adapter_weights=b64(self.adapter_weights),
                    prompts=list(self.prompts), seeds=list(self.seeds))
        return data

    @classmethod
    def from_json(cls, data: dict) -> "JobRequest":
        return cls(
            job_id=str(data["job_id"]),
            reference_png=unb64(data["reference_png"]) or b"",
            prompts=tuple(data["prompts"]),
            seeds=tuple(int(s) for s in data["seeds"]),
            adaptation=dict(data.get("adaptation") or {}),
            generation=dict(data.get("generation") or {}),
            mask_png=unb64(data.get("mask_png")),
            embedding=unb64(data.get("embedding")),
            adapter_weights=unb64(data.get("adapter_weights")),
            attempt=int(data.get("attempt") or 0),
        )


@dataclass(frozen=True)
class ProgressEvent:
    """stage: 'queued' (step = position), 'adapting' (step i of n), 'generating' (step j of m)."""

    job_id: str
    stage: str
    step: int = 0
    total: int = 0
    image: int = 0  # which image of the request is being sampled
    loss: float | None = None


@dataclass(frozen=True)
class JobResult:
    job_id: str
    model_id: str
    settings_hash: str
    embedding: bytes
    images_png: tuple[bytes, ...]
    mask_png: bytes | None = None  # the subject mask the runtime used (to cache with the reference)
    mask_source: str | None = None
    adapted: bool = False  # False when the cached embedding was used
    timings: dict = field(default_factory=dict)
    # LoRA weights (safetensors) of the second TTF base; cache them with the embedding.
    adapter_weights: bytes | None = None

    def to_json(self) -> dict:
        return {
            "job_id": self.job_id,
            "model_id": self.model_id,
            "settings_hash": self.settings_hash,
            "embedding": b64(self.embedding),
            "images_png": [b64(i) for i in self.images_png],
            "mask_png": b64(self.mask_png),
            "mask_source": self.mask_source,
            "adapted": self.adapted,
            "timings": self.timings,
            "adapter_weights": b64(self.adapter_weights),
        }

    @classmethod
    def from_json(cls, data: dict) -> "JobResult":
        return cls(
            job_id=data["job_id"],
            model_id=data["model_id"],
            settings_hash=data["settings_hash"],
            embedding=unb64(data["embedding"]) or b"",
            images_png=tuple(unb64(i) or b"" for i in data["images_png"]),
            mask_png=unb64(data.get("mask_png")),
            mask_source=data.get("mask_source"),
            adapted=bool(data.get("adapted")),
            timings=dict(data.get("timings") or {}),
            adapter_weights=unb64(data.get("adapter_weights")),
        )


class RuntimeJobError(Exception):
    """The runtime could not do the job; `retryable` is False for bad requests."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable
