"""Typed messages between the bot layer and the adapters.

Progress travels as the runtime API's own `ProgressEvent` (one progress type from the runtime
to the chat), re-exported here so adapters import `bot/` only."""

from __future__ import annotations

from dataclasses import dataclass, field

from seal_runtime.api.protocol import ProgressEvent

__all__ = [
    "JobView",
    "PackInfo",
    "ProgressEvent",
    "QueuedJob",
    "QueuedPack",
    "ReferenceSaved",
    "StickerOut",
    "UserRef",
    "progress_text",
]


@dataclass(frozen=True)
class UserRef:
    """Who is talking: the platform and the platform's own user id."""

    platform: str  # "telegram" | "discord" | "console"
    platform_user_id: str
    display_name: str = ""


@dataclass(frozen=True)
class ReferenceSaved:
    reference_id: int
    sha256: str
    width: int
    height: int
    notes: tuple[str, ...] = ()
    unchanged: bool = False  # the same picture was already the active reference

    def user_message(self) -> str:
        lines = ["Saved your character! Now try /mysticker happy waving beach"]
        if self.unchanged:
            lines = ["That picture is already your character. Try /mysticker happy waving beach"]
        lines += list(self.notes)
        return "\n".join(lines)


@dataclass(frozen=True)
class QueuedJob:
    job_id: str
    position: int | None  # None only if a worker claimed it in between
    description: str
    cached: bool  # an embedding for this character exists: no adaptation needed

    def user_message(self) -> str:
        first = "" if self.cached else " The first sticker takes longer: I learn your character once."
        return f"Queued at position {self.position}: {self.description}.{first}"


def progress_text(update: ProgressEvent) -> str:
    """What the user reads while a job runs. The runtime's stages (queued, started, adapting,
    generating), plus the bot's own "pack": step stickers of total done."""
    if update.stage == "queued":
        return f"Queued at position {update.step}…"
    if update.stage == "adapting":
        return f"Learning your character (step {update.step}/{update.total})…"
    if update.stage == "generating":
        return f"Drawing your sticker ({update.step}/{update.total})…"
    if update.stage == "pack":
        return f"Drawing your pack: {update.step}/{update.total} stickers done…"
    return "Starting…"


@dataclass(frozen=True)
class StickerOut:
    """A finished sticker: the RGBA master PNG; adapters format it per platform."""

    sticker_id: int
    job_id: str
    png: bytes
    emoji: str
    description: str
    tags: dict = field(default_factory=dict)


@dataclass(frozen=True)
class PackInfo:
    """A finished /makepack as its adapter sees it: `made` of `size` stickers came out."""

    order_id: str
    size: int
    made: int
    words: str = ""

    @property
    def failed(self) -> int:
        return self.size - self.made


@dataclass(frozen=True)
class JobView:
    """What an adapter needs to know about a job to deliver it. For a whole pack (stage
    "pack" progress, then one `deliver` with all its stickers) `job_id` is the pack order's
    id and `pack` is set."""

    job_id: str
    user: UserRef
    user_id: int
    chat: dict  # adapter-owned delivery context (chat id, message id to edit, ...)
    pack: PackInfo | None = None


@dataclass(frozen=True)
class QueuedPack:
    order_id: str
    size: int
    position: int | None  # the pack's first sticker in the queue
    words: str
    cached: bool

    @property
    def job_id(self) -> str:
        """What adapters track the pack's progress message by (the pack's deliveries use it)."""
        return self.order_id

    def user_message(self) -> str:
        extra = f" with “{self.words}”" if self.words else ""
        first = "" if self.cached else " I learn your character first, so the first one takes longer."
        return f"Drawing a pack of {self.size} stickers{extra}: 0/{self.size} done.{first}"
