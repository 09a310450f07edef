"""The console adapter: the same commands as the chat platforms, in a terminal.

`stickerbot demo` and `stickerbot chat` use it. Stickers are written as
Telegram-spec WebP files (what a Telegram user would receive) under out_dir; a
/makepack's stickers as `pack-<n>-sticker-<id>.webp`, and /export's file under the
export's own name (`stickers-<user id>.wastickers`...), all named by our ids.

The console's "platform language" is the terminal's (`--language`, else $LC_ALL,
$LC_MESSAGES or $LANG); `/language` overrides it like on the chat platforms.
"""

from __future__ import annotations

import os
import shlex
import time
from pathlib import Path

from bot import i18n
from bot.errors import UserError
from bot.exports.builder import build_export
from bot.i18n import N_, _
from bot.messages import (
    JobView,
    ProgressEvent,
    StickerOut,
    UserRef,
    cancel_message,
    language_changed,
    language_menu,
    progress_text,
    wants_everything,
)
from bot.pack_service import PackService
from bot.service import StickerService, help_text
from bot.sticker_spec import to_telegram_sticker


def terminal_language() -> str:
    """The terminal's language, as the locale variables name it ("es_ES.UTF-8" -> "es_ES")."""
    for variable in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(variable, "")
        if value and value not in ("C", "POSIX"):
            return value.split(".")[0]
    return ""


class ConsoleSink:
    """Prints progress on one updating line and writes finished stickers to files."""

    def __init__(self, out_dir: Path, print_fn=print) -> None:
        self.out_dir = out_dir
        self.print = print_fn
        self.delivered: dict[str, list[Path]] = {}
        self.failures: dict[str, str] = {}
        self.format_seconds: dict[str, float] = {}  # job id -> time spent making platform files
        self.packs: dict[str, int] = {}  # pack order id -> its number in this session's output
        self.cancelled: set[str] = set()  # requests /cancel took back: no more lines about them
        self._last_line = ""

    def cancel(self, request_id: str) -> None:
        """The request was cancelled: its progress line says so, and then nothing more."""
        self.cancelled.add(request_id)
        self.print("  ✗ " + _("Cancelled."))

    async def progress(self, job: JobView, update: ProgressEvent) -> None:
        if job.job_id in self.cancelled:
            return
        line = progress_text(update)
        if line != self._last_line and (update.step in (1, update.total) or update.stage in ("queued", "started", "pack")):
            self.print(f"  … {line}")
            self._last_line = line

    async def deliver(self, job: JobView, stickers: list[StickerOut]) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        prefix = ""
        if job.pack is not None:
            number = self.packs.setdefault(job.job_id, len(self.packs) + 1)
            prefix = f"pack-{number}-"
        paths = []
        for sticker in stickers:
            # File names come from our own ids, never from user input.
            path = self.out_dir / f"{prefix}sticker-{sticker.sticker_id:05d}.webp"
            started = time.perf_counter()
            path.write_bytes(to_telegram_sticker(_open_png(sticker.png)))
            elapsed = time.perf_counter() - started
            self.format_seconds[job.job_id] = self.format_seconds.get(job.job_id, 0.0) + elapsed
            self.print("  ✓ " + _("{emoji} {what} -> {path} ({size} KiB, formatted in {seconds:.3f} s)",
                                  emoji=sticker.emoji, what=sticker.description, path=path,
                                  size=path.stat().st_size // 1024, seconds=elapsed))
            paths.append(path)
        self.delivered[job.job_id] = paths
        if job.pack is not None:
            missing = " " + _("({n} could not be made)", n=job.pack.failed) if job.pack.failed else ""
            self.print("  ✓ " + _("your pack: {made}/{size} stickers{missing} in {folder}. Send /export whatsapp "
                                  "or /export signal to take it elsewhere.", made=job.pack.made, size=job.pack.size,
                                  missing=missing, folder=self.out_dir))

    async def failed(self, job: JobView, message: str) -> None:
        self.failures[job.job_id] = message
        self.print(f"  ✗ {message}")


def _open_png(data: bytes):
    import io

    from PIL import Image

    image = Image.open(io.BytesIO(data))
    image.load()
    return image.convert("RGBA")


class ConsoleSession:
    """Parses console lines like chat messages: /setref PATH, /mysticker words, /help…"""

    def __init__(self, service: StickerService, user: UserRef, out_dir: Path = Path("out"),
                 sink: ConsoleSink | None = None) -> None:
        self.service = service
        self.user = user
        self.out_dir = out_dir
        self.sink = sink  # where /cancel marks a request's progress as cancelled
        self.packs = PackService(service.db, service.settings, service)

    def handle(self, line: str) -> str | None:
        """Returns the reply text, in the user's language; queued jobs are picked up by the worker."""
        line = line.strip()
        if not line:
            return None
        command, _space, rest = line.partition(" ")
        with i18n.language(self.service.language(self.user)):
            return self._command(command.lower(), rest)

    def _command(self, command: str, rest: str) -> str:
        try:
            if command in ("/start", "/help"):
                return help_text(N_SETREF_HOW)
            if command == "/setref":
                if not rest.strip():
                    return _("Usage: /setref PATH-TO-PICTURE")
                path = Path(shlex.split(rest)[0]).expanduser()
                try:
                    data = path.read_bytes()
                except OSError as exc:
                    return _("Cannot read {path}: {error}", path=path, error=exc.strerror)
                return self.service.set_reference(self.user, data).user_message()
            if command == "/mysticker":
                return self.service.request_sticker(self.user, rest, chat={"console": True}).user_message()
            if command == "/again":
                return self.service.again(self.user, chat={"console": True}).user_message()
            if command == "/makepack":
                return self.packs.make_pack(self.user, rest, chat={"console": True}).user_message()
            if command == "/export":
                return self._export(rest or "whatsapp")
            if command == "/status":
                return self.service.status(self.user)
            if command == "/cancel":
                return self._cancel(rest)
            if command == "/language":
                return self._language(rest)
            if command == "/forget":
                counts = self.service.forget(self.user)
                return (_("Deleted your character and everything I stored for you.") if counts
                        else _("I had nothing stored for you."))
            return _("I don't know {command}. Send /help to see what I can do.", command=command)
        except UserError as exc:
            return exc.user_message

    def _cancel(self, rest: str) -> str:
        cancelled = self.service.cancel(self.user, everything=wants_everything(rest))
        if self.sink is not None:
            for request in cancelled:
                self.sink.cancel(request.request_id)
        return cancel_message(cancelled)

    def _language(self, rest: str) -> str:
        if not rest.strip():
            return language_menu()
        return language_changed(self.service.set_language(self.user, rest))

    def _export(self, fmt: str) -> str:
        export = build_export(self.service.db, self.service.settings, self.service.user_id(self.user),
                              self.user.display_name, fmt)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        path = self.out_dir / export.name  # "stickers-<our user id>…": ours, not the user's
        path.write_bytes(export.data)
        return _("Wrote {path} ({size} KiB).", path=path, size=len(export.data) // 1024) + " " + export.user_message()


N_SETREF_HOW = N_("/setref PATH-TO-PICTURE")
