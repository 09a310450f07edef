"""Typed messages between the bot layer and the adapters.

Progress travels as the runtime API's own `ProgressEvent` (one progress type from the runtime
to the chat), re-exported here so adapters import `bot/` only."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot import i18n
from bot.i18n import _, _n
from bot.sticker_job import StickerJob
from seal_runtime.api.protocol import ProgressEvent

__all__ = [
    "CancelledRequest",
    "JobView",
    "PackInfo",
    "ProgressEvent",
    "QueuedJob",
    "QueuedPack",
    "ReferenceSaved",
    "StickerOut",
    "UserRef",
    "cancel_message",
    "job_description",
    "language_changed",
    "language_menu",
    "progress_text",
    "wants_everything",
]


def job_description(request: dict) -> str:
    """A job's words in the current language ("feliz, saludando, playa"), from its stored
    payload (bot/sticker_job.py)."""
    return StickerJob.from_json(request).words(i18n.current()) or _("your sticker")


@dataclass(frozen=True)
class UserRef:
    """Who is talking: the platform, the platform's own user id, and the language their app
    reports (Telegram's `language_code`, Discord's `locale`; "" when it says none)."""

    platform: str  # "telegram" | "discord" | "console"
    platform_user_id: str
    display_name: str = ""
    language: str = ""


@dataclass(frozen=True)
class ReferenceSaved:
    reference_id: int
    sha256: str
    width: int
    height: int
    notes: tuple[str, ...] = ()
    unchanged: bool = False  # the same picture was already the active reference

    def user_message(self) -> str:
        lines = [_("Saved your character! Now try /mysticker happy waving beach")]
        if self.unchanged:
            lines = [_("That picture is already your character. Try /mysticker happy waving beach")]
        lines += list(self.notes)
        return "\n".join(lines)


@dataclass(frozen=True)
class QueuedJob:
    job_id: str
    position: int | None  # None only if a worker claimed it in between
    description: str
    cached: bool  # an embedding for this character exists: no adaptation needed

    def user_message(self) -> str:
        if self.cached:
            return _("Queued at position {position}: {what}.", position=self.position, what=self.description)
        return _(
            "Queued at position {position}: {what}. The first sticker takes longer: I learn your character once.",
            position=self.position,
            what=self.description,
        )


def progress_text(update: ProgressEvent) -> str:
    """What the user reads while a job runs, in the current language. The runtime's stages
    (queued, started, adapting, generating), plus the bot's own "pack": step stickers of total done."""
    if update.stage == "queued":
        return _("Queued at position {position}…", position=update.step)
    if update.stage == "adapting":
        return _("Learning your character (step {step}/{total})…", step=update.step, total=update.total)
    if update.stage == "generating":
        return _("Drawing your sticker ({step}/{total})…", step=update.step, total=update.total)
    if update.stage == "pack":
        return _("Drawing your pack: {done}/{total} stickers done…", done=update.step, total=update.total)
    return _("Starting…")


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
    language: str = "en"  # what the user reads (bot/i18n.py); the worker writes in it


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
        if self.words:
            text = _n(
                "Drawing a pack of {n} sticker with “{words}”: 0/{n} done.",
                "Drawing a pack of {n} stickers with “{words}”: 0/{n} done.",
                self.size,
                words=self.words,
            )
        else:
            text = _n(
                "Drawing a pack of {n} sticker: 0/{n} done.", "Drawing a pack of {n} stickers: 0/{n} done.", self.size
            )
        if not self.cached:
            text += " " + _("I learn your character first, so the first one takes longer.")
        return text


@dataclass(frozen=True)
class CancelledRequest:
    """A request /cancel took back: a sticker job, or a whole /makepack (`pack`; then
    `request_id` is the pack order's id, what its progress message is tracked by)."""

    request_id: str
    description: str  # the sticker's words ("" for a pack)
    jobs: int  # jobs stopped: 1, or a pack's stickers not made yet
    running: bool  # one of them was already on the runtime
    pack: bool = False

    def user_message(self) -> str:
        if self.pack:
            return _n(
                "Cancelled your pack: {n} sticker not made yet is back in your daily quota.",
                "Cancelled your pack: {n} stickers not made yet are back in your daily quota.",
                self.jobs,
            )
        return _("Cancelled “{what}”.", what=self.description)


# What `/cancel <word>` takes to mean every request, in each shipped language.
CANCEL_ALL_WORDS = frozenset({"all", "todo", "todos", "todas", "все", "всё"})


def wants_everything(argument: str) -> bool:
    """`/cancel all` (or "todo", "все"): every request, not only the newest."""
    return argument.strip().lower() in CANCEL_ALL_WORDS


def language_menu() -> str:
    """The reply to a bare /language: the language in use, and how to choose another."""
    return _(
        "I speak {language} with you. Choose another with /language CODE: {languages}; "
        "/language auto uses your app's language.",
        language=i18n.LANGUAGES[i18n.current()],
        languages=i18n.language_list(),
    )


def language_changed(code: str) -> str:
    """The reply to /language CODE, in the language just chosen."""
    with i18n.language(code):
        return _("From now on I speak {language} with you.", language=i18n.LANGUAGES[code])


def cancel_message(cancelled: list[CancelledRequest]) -> str:
    """The reply to /cancel."""
    if not cancelled:
        return _("Nothing to cancel: you have no sticker in the queue.")
    return "\n".join(c.user_message() for c in cancelled)
