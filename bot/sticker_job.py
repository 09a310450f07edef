"""The payload of a sticker job: what /mysticker (or one sticker of a /makepack) stored for
the worker, written in bot/service.py and read by the worker, /again and /status.

Stored as JSON in the job row (`jobs.request`). `from_json` also reads rows written before
this type existed (the same keys as a plain dict; a missing one takes its default), so an
existing database keeps working.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from bot.schema.prompt_builder import build_prompt
from bot.schema.sticker_request import StickerRequest


@dataclass(frozen=True)
class StickerJob:
    text: str  # the user's words, as typed (/again asks for them again)
    tags: dict[str, str] = field(default_factory=dict)  # the six attributes, StickerRequest.as_tags()
    prompt: str = ""  # the model prompt built from them
    description: str = ""  # how the bot names the sticker to the user
    seed: int = 0
    reference_id: int | None = None  # the character (storage.records.Reference) it was asked for
    reference_sha256: str = ""
    # Set by storage/pack_orders.py on each sticker of a /makepack.
    pack_order: str | None = None
    pack_position: int | None = None
    pack_size: int | None = None

    @classmethod
    def new(cls, request: StickerRequest, text: str, reference: Any, seed: int | None = None) -> StickerJob:
        """A job for `request` of the active `reference` (a storage.records.Reference)."""
        return cls(
            text=text,
            tags=request.as_tags(),
            prompt=build_prompt(request),
            description=request.describe(),
            seed=seed if seed is not None else random.randrange(2**31),
            reference_id=reference.id,
            reference_sha256=reference.sha256,
        )

    def to_json(self) -> dict:
        data: dict[str, Any] = {
            "text": self.text,
            "tags": dict(self.tags),
            "prompt": self.prompt,
            "description": self.description,
            "seed": self.seed,
            "reference_id": self.reference_id,
            "reference_sha256": self.reference_sha256,
        }
        if self.pack_order is not None:
            data.update(pack_order=self.pack_order, pack_position=self.pack_position, pack_size=self.pack_size)
        return data

    @classmethod
    def from_json(cls, data: dict | None) -> StickerJob:
        data = data or {}
        return cls(
            text=str(data.get("text") or ""),
            tags=dict(data.get("tags") or {}),
            prompt=str(data.get("prompt") or ""),
            description=str(data.get("description") or ""),
            seed=int(data.get("seed") or 0),
            reference_id=data.get("reference_id"),
            reference_sha256=str(data.get("reference_sha256") or ""),
            pack_order=data.get("pack_order"),
            pack_position=data.get("pack_position"),
            pack_size=data.get("pack_size"),
        )
