"""The console adapter: the same commands as the chat platforms, in a terminal.

`stickerbot demo` and `stickerbot chat` use it. Stickers are written as
Telegram-spec WebP files (what a Telegram user would receive) under out_dir; a
/makepack's stickers as `pack-<n>-sticker-<id>.webp`, and /export's file under the
export's own name (`stickers-<user id>.wastickers`...), all named by our ids.
"""

from __future__ import annotations

import shlex
import time
from pathlib import Path

from bot.errors import UserError
from bot.exports.builder import build_export
from bot.messages import JobView, ProgressEvent, StickerOut, UserRef, progress_text
from bot.pack_service import PackService
from bot.service import StickerService, help_text
from bot.sticker_spec import to_telegram_sticker


class ConsoleSink:
    """Prints progress on one updating line and writes finished stickers to files."""

    def __init__(self, out_dir: Path, print_fn=print) -> None:
        self.out_dir = out_dir
        self.print = print_fn
        self.delivered: dict[str, list[Path]] = {}
        self.failures: dict[str, str] = {}
        self.format_seconds: dict[str, float] = {}  # job id -> time spent making platform files
        self.packs: dict[str, int] = {}  # pack order id -> its number in this session's output
        self._last_line = ""

    async def progress(self, job: JobView, update: ProgressEvent) -> None:
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
            self.print(f"  ✓ {sticker.emoji} {sticker.description} -> {path} "
                       f"({path.stat().st_size // 1024} KiB, formatted in {elapsed:.3f}s)")
            paths.append(path)
        self.delivered[job.job_id] = paths
        if job.pack is not None:
            missing = f" ({job.pack.failed} could not be made)" if job.pack.failed else ""
            self.print(f"  ✓ your pack: {job.pack.made}/{job.pack.size} stickers{missing} in {self.out_dir}. "
                       "Send /export whatsapp or /export signal to take it elsewhere.")

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

    def __init__(self, service: StickerService, user: UserRef, out_dir: Path = Path("out")) -> None:
        self.service = service
        self.user = user
        self.out_dir = out_dir
        self.packs = PackService(service.db, service.settings, service)

    def handle(self, line: str) -> str | None:
        """Returns the reply text; queued jobs are picked up by the worker."""
        line = line.strip()
        if not line:
            return None
        command, _, rest = line.partition(" ")
        command = command.lower()
        try:
            if command in ("/start", "/help"):
                return help_text()
            if command == "/setref":
                if not rest.strip():
                    return "Usage: /setref PATH-TO-PICTURE"
                path = Path(shlex.split(rest)[0]).expanduser()
                try:
                    data = path.read_bytes()
                except OSError as exc:
                    return f"Cannot read {path}: {exc.strerror}"
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
            if command == "/forget":
                counts = self.service.forget(self.user)
                return "Deleted your character and everything I stored for you." if counts else "I had nothing stored for you."
            return f"I don't know {command}. Send /help to see what I can do."
        except UserError as exc:
            return exc.user_message

    def _export(self, fmt: str) -> str:
        export = build_export(self.service.db, self.service.settings, self.service.user_id(self.user),
                              self.user.display_name, fmt)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        path = self.out_dir / export.name  # "stickers-<our user id>…": ours, not the user's
        path.write_bytes(export.data)
        return f"Wrote {path} ({len(export.data) // 1024} KiB). {export.user_message()}"
