"""A plain zip of the stickers' PNG masters (512 px, transparent, with the look) and their emoji."""

from __future__ import annotations

import io
import json
import zipfile

from bot.errors import UserError
from bot.exports import ExportSticker

MAX_STICKERS = 200  # the biggest pack any supported platform takes (Signal)


def png_zip(items: list[ExportSticker], title: str, author: str) -> bytes:
    if not items:
        raise UserError(
            "You have no sticker to export yet. Make some with /mysticker or /makepack first.", code="export_too_few"
        )
    names = [f"{n:03d}.png" for n in range(1, len(items) + 1)]
    manifest = {
        "title": title,
        "author": author,
        "stickers": [
            {"file": name, "emoji": item.emoji, "description": item.description}
            for name, item in zip(names, items, strict=True)
        ],
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, item in zip(names, items, strict=True):
            archive.writestr(name, item.png)
        archive.writestr("manifest.json", json.dumps(manifest, ensure_ascii=False, indent=1))
    return buffer.getvalue()
