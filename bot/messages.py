"""Typed messages between the bot layer and the adapters."""

from __future__ import annotations

from dataclasses import dataclass, field


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
    position: int
    description: str
    cached: bool  # an embedding for this character exists: no adaptation needed

    def user_message(self) -> str:
        first = "" if self.cached else " The first sticker takes longer: I learn your character once."
        return f"Queued at position {self.position}: {self.description}.{first}"


@dataclass(frozen=True)
class ProgressUpdate:
    """stage: queued | started | adapting | generating."""

    job_id: str
    stage: str
    step: int = 0
    total: int = 0

    def user_message(self) -> str:
        if self.stage == "queued":
            return f"Queued at position {self.step}…"
        if self.stage == "adapting":
            return f"Learning your character (step {self.step}/{self.total})…"
        if self.stage == "generating":
            return f"Drawing your sticker ({self.step}/{self.total})…"
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
class JobView:
    """What an adapter needs to know about a job to deliver it."""

    job_id: str
    user: UserRef
    user_id: int
    chat: dict  # adapter-owned delivery context (chat id, message id to edit, ...)
