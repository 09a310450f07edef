"""`build_export`: a user's pack in the format asked for (the one entry point adapters and the CLI use)."""

from __future__ import annotations

from dataclasses import dataclass

import sqlite_utils

from bot.errors import UserError
from bot.exports import ExportFile, ExportSticker
from bot.exports.png_zip import MAX_STICKERS as PNG_MAX
from bot.exports.png_zip import png_zip
from bot.exports.selection import pack_stickers
from bot.exports.signal import signal_zip
from bot.exports.whatsapp import wastickers
from bot.settings import Settings
from bot.sticker_spec import SIGNAL_PACK, WHATSAPP_PACK

FORMATS = ("whatsapp", "signal", "png-zip")
ALIASES = {"wa": "whatsapp", "wastickers": "whatsapp", "png": "png-zip", "zip": "png-zip"}


def normalise_format(text: str) -> str:
    name = ALIASES.get(text.strip().lower(), text.strip().lower())
    if name not in FORMATS:
        raise UserError(f"I can export as {', '.join(FORMATS)}: e.g. /export whatsapp.", code="export_format")
    return name


@dataclass(frozen=True)
class ExportRequest:
    """What an export is made of, read from the database (`select_export`) so that the slow
    part, encoding (`encode_export`), can run in a thread without touching the connection."""

    format: str
    user_id: int
    items: tuple[ExportSticker, ...]
    left_out: int
    source: str
    title: str
    author: str


def select_export(
    db: sqlite_utils.Database, settings: Settings, user_id: int, display_name: str, fmt: str
) -> ExportRequest:
    fmt = normalise_format(fmt)
    limit = {"whatsapp": WHATSAPP_PACK.max_stickers, "signal": SIGNAL_PACK.max_stickers, "png-zip": PNG_MAX}[fmt]
    items, left_out, source = pack_stickers(db, user_id, limit)
    title = settings.packs.title.format(name=display_name.strip() or "My")
    return ExportRequest(fmt, user_id, tuple(items), left_out, source, title, settings.packs.author)


def encode_export(request: ExportRequest) -> ExportFile:
    items = list(request.items)
    # File names come from our own ids, never from what a user typed.
    stem = f"stickers-{request.user_id}"
    if request.format == "whatsapp":
        data = wastickers(items, request.title, request.author, identifier=f"{stem}-{len(items)}")
        name = f"{stem}.wastickers"
    elif request.format == "signal":
        data = signal_zip(items, request.title, request.author)
        name = f"{stem}-signal.zip"
    else:
        data = png_zip(items, request.title, request.author)
        name = f"{stem}-png.zip"
    return ExportFile(request.format, name, data, "application/zip", len(items), request.left_out, request.source)


def build_export(
    db: sqlite_utils.Database, settings: Settings, user_id: int, display_name: str, fmt: str
) -> ExportFile:
    """Both steps at once (the console and the CLI, where nothing else waits)."""
    return encode_export(select_export(db, settings, user_id, display_name, fmt))
