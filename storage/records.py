"""Typed rows: what the storage functions return. Timestamps are Unix seconds."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

RUNNING_STATES = ("adapting", "generating")
FINAL_STATES = ("done", "failed", "cancelled")
JOB_STATES = ("queued", *RUNNING_STATES, *FINAL_STATES)


def _json(value: str | None, default: Any = None) -> Any:
    return default if value is None else json.loads(value)


@dataclass(frozen=True)
class User:
    id: int
    platform: str
    platform_user_id: str
    display_name: str | None
    created_at: float
    banned: bool
    daily_quota: int | None  # None: the configured default applies
    forgotten_at: float | None = None  # /forget left this row as a tombstone (no personal data)

    @classmethod
    def from_row(cls, row: dict) -> User:
        return cls(
            row["id"],
            row["platform"],
            row["platform_user_id"],
            row["display_name"],
            row["created_at"],
            bool(row["banned"]),
            row["daily_quota"],
            row.get("forgotten_at"),
        )


@dataclass(frozen=True)
class Reference:
    id: int
    user_id: int
    sha256: str
    image: bytes = field(repr=False)  # normalised RGBA PNG
    mask: bytes | None = field(repr=False)  # L PNG, 255 = subject
    mask_source: str | None  # alpha | sam | flood_fill | center_prior
    width: int
    height: int
    created_at: float
    active: bool

    @classmethod
    def from_row(cls, row: dict) -> Reference:
        return cls(
            row["id"],
            row["user_id"],
            row["sha256"],
            row["image"],
            row["mask"],
            row["mask_source"],
            row["width"],
            row["height"],
            row["created_at"],
            bool(row["active"]),
        )


@dataclass(frozen=True)
class Embedding:
    id: int
    reference_sha256: str
    model_id: str
    settings_hash: str
    data: bytes = field(repr=False)  # safetensors bytes
    meta: dict
    created_at: float
    last_used_at: float
    adapter_weights: bytes | None = field(default=None, repr=False)  # safetensors, LoRA-style methods

    @classmethod
    def from_row(cls, row: dict) -> Embedding:
        return cls(
            row["id"],
            row["reference_sha256"],
            row["model_id"],
            row["settings_hash"],
            row["data"],
            _json(row["meta"], {}),
            row["created_at"],
            row["last_used_at"],
            row.get("adapter_weights"),
        )


@dataclass(frozen=True)
class Job:
    id: str
    user_id: int
    kind: str
    request: dict
    state: str
    attempts: int  # claims so far, including the current one
    max_attempts: int
    progress: dict | None
    error: str | None
    result: dict | None
    lease_owner: str | None
    lease_expires_at: float | None
    next_attempt_at: float
    created_at: float
    updated_at: float
    finished_at: float | None
    delivered_at: float | None
    chat: dict | None  # opaque to storage: where the adapter delivers
    claimed_at: float | None = None  # start of the current attempt
    delivery_attempts: int = 0  # claims to send the result (see deliveries.claim_delivery)
    delivery_error: str | None = None  # last failed send; with delivered_at set: given up
    error_code: str | None = None  # the last failed attempt's code (jobs.fail_job), None: unnamed

    @property
    def running(self) -> bool:
        return self.state in RUNNING_STATES

    @property
    def finished(self) -> bool:
        return self.state in FINAL_STATES

    @classmethod
    def from_row(cls, row: dict) -> Job:
        return cls(
            row["id"],
            row["user_id"],
            row["kind"],
            _json(row["request"], {}),
            row["state"],
            row["attempts"],
            row["max_attempts"],
            _json(row["progress"]),
            row["error"],
            _json(row["result"]),
            row["lease_owner"],
            row["lease_expires_at"],
            row["next_attempt_at"],
            row["created_at"],
            row["updated_at"],
            row["finished_at"],
            row["delivered_at"],
            _json(row["chat"]),
            row.get("claimed_at"),
            row.get("delivery_attempts") or 0,
            row.get("delivery_error"),
            row.get("error_code"),
        )


@dataclass(frozen=True)
class Sticker:
    id: int
    user_id: int
    job_id: str | None
    position: int | None
    request: dict  # the request's tags (emotion, action, ...)
    emoji: str | None
    image: bytes = field(repr=False)  # RGBA PNG master; platform formats are made from it
    created_at: float
    last_used_at: float
    platform_file_ids: dict  # e.g. {"telegram": "CAACAg..."}

    @classmethod
    def from_row(cls, row: dict) -> Sticker:
        return cls(
            row["id"],
            row["user_id"],
            row["job_id"],
            row["position"],
            _json(row["request"], {}),
            row["emoji"],
            row["image"],
            row["created_at"],
            row["last_used_at"],
            _json(row["platform_file_ids"], {}),
        )


@dataclass(frozen=True)
class Pack:
    id: int
    user_id: int
    platform: str
    name: str  # the platform's id for the set (Telegram: ends in _by_<bot>)
    title: str
    sticker_count: int
    created_at: float

    @classmethod
    def from_row(cls, row: dict) -> Pack:
        return cls(
            row["id"],
            row["user_id"],
            row["platform"],
            row["name"],
            row["title"],
            row["sticker_count"],
            row["created_at"],
        )


@dataclass(frozen=True)
class PackOrder:
    """A /makepack: `size` sticker jobs (`job_ids`, in pack order) and the pack's delivery."""

    id: str
    user_id: int
    words: str  # what the user added to every prompt
    size: int
    job_ids: tuple[str, ...]
    chat: dict | None  # opaque to storage: where the adapter delivers
    created_at: float
    delivered_at: float | None
    result: dict | None  # what the delivery reported (set name, link, counts)

    @classmethod
    def from_row(cls, row: dict) -> PackOrder:
        return cls(
            row["id"],
            row["user_id"],
            row["words"],
            row["size"],
            tuple(_json(row["job_ids"], [])),
            _json(row["chat"]),
            row["created_at"],
            row["delivered_at"],
            _json(row["result"]),
        )
