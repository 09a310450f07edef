"""A zip for Signal Desktop's sticker pack creator (File → Create/upload sticker pack).

The creator takes the pictures themselves (512 × 512, at most 300 KiB each, 1 to 200) and
asks for one emoji per sticker, a cover, a title and an author in its own screens; this
zip holds the numbered PNGs, `cover.png`, and `README.txt` / `stickers.json` saying which
emoji goes with which picture. Limits: bot.sticker_spec.SIGNAL_PACK (from Signal's
Signal-Art-Creator constants).
"""

from __future__ import annotations

import io
import json
import zipfile

from bot.errors import UserError
from bot.exports import ExportSticker
from bot.sticker_spec import SIGNAL_PACK, SIGNAL_STICKER, to_signal, validate_sticker

COVER_FILE = "cover.png"


def signal_zip(items: list[ExportSticker], title: str, author: str) -> bytes:
    rules = SIGNAL_PACK
    if len(items) < rules.min_stickers:
        raise UserError(
            "You have no sticker to export yet. Make some with /mysticker or /makepack first.", code="export_too_few"
        )
    items = items[: rules.max_stickers]
    files = {
        f"{n:03d}.png": validate_sticker(to_signal(item.png), rules.sticker) for n, item in enumerate(items, start=1)
    }
    cover = validate_sticker(to_signal(items[0].png), SIGNAL_STICKER)
    manifest = {
        "title": title[: rules.max_title_chars],
        "author": author[: rules.max_author_chars],
        "cover": COVER_FILE,
        "stickers": [{"file": name, "emoji": item.emoji} for name, item in zip(files, items, strict=True)],
    }
    readme = "\n".join(
        [
            f"{manifest['title']} by {manifest['author']}: {len(files)} stickers for Signal.",
            "",
            "In Signal Desktop: File > Create/upload sticker pack. Drop in the numbered pictures, give each the",
            "emoji below, choose cover.png as the cover, then type the title and author above.",
            "",
            *(f"{name}  {item.emoji}" for name, item in zip(files, items, strict=True)),
            "",
        ]
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
        archive.writestr(COVER_FILE, cover)
        archive.writestr("stickers.json", json.dumps(manifest, ensure_ascii=False, indent=1))
        archive.writestr("README.txt", readme)
    return buffer.getvalue()
