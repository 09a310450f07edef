"""`build_export`: a user's pack in the format asked for (the one entry point adapters and the CLI use)."""

from __future__ import annotations

import sqlite_utils

from bot.errors import UserError
from bot.exports import ExportFile
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


def build_export(db: sqlite_utils.Database, settings: Settings, user_id: int, display_name: str,
                 fmt: str) -> ExportFile:
    fmt = normalise_format(fmt)
    limit = {"whatsapp": WHATSAPP_PACK.max_stickers, "signal": SIGNAL_PACK.max_stickers, "png-zip": PNG_MAX}[fmt]
    items, left_out, source = pack_stickers(db, user_id, limit)
    title = settings.packs.title.format(name=display_name.strip() or "My")
    author = settings.packs.author
    # File names come from our own ids, never from what a user typed.
    stem = f"stickers-{user_id}"
    if fmt == "whatsapp":
        data = wastickers(items, title, author, identifier=f"{stem}-{len(items)}")
        return ExportFile(fmt, f"{stem}.wastickers", data, "application/zip", len(items), left_out, source)
    if fmt == "signal":
        data = signal_zip(items, title, author)
        return ExportFile(fmt, f"{stem}-signal.zip", data, "application/zip", len(items), left_out, source)
    data = png_zip(items, title, author)
    return ExportFile(fmt, f"{stem}-png.zip", data, "application/zip", len(items), left_out, source)

