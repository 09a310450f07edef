"""`.wastickers`: a WhatsApp pack for sticker-maker apps.

WhatsApp itself takes packs only from apps (github.com/WhatsApp/stickers); sticker-maker apps
import a `.wastickers` file, a zip of `title.txt`, `author.txt`, the tray icon (a 96 × 96 PNG)
and the stickers (512 × 512 WebP). Emoji (at most 3 per sticker) are not in that layout, so
the zip also carries `contents.json` in WhatsApp's own sample-app format
(Android/app/src/main/assets/contents.json: sticker_packs → stickers → image_file, emojis),
which apps that read it use. Limits: bot.sticker_spec.WHATSAPP_PACK.
"""

from __future__ import annotations

import io
import json
import zipfile

from bot.errors import UserError
from bot.exports import ExportSticker
from bot.sticker_spec import (
    WHATSAPP_PACK,
    WHATSAPP_TRAY,
    to_whatsapp,
    to_whatsapp_tray_icon,
    validate_sticker,
)

TRAY_FILE = "tray.png"


def wastickers(items: list[ExportSticker], title: str, author: str, identifier: str) -> bytes:
    rules = WHATSAPP_PACK
    if len(items) < rules.min_stickers:
        raise UserError(
            f"A WhatsApp pack needs at least {rules.min_stickers} stickers and you have {len(items)}. "
            "Make a few more (or a whole pack with /makepack), then export again.",
            code="export_too_few",
        )
    items = items[: rules.max_stickers]
    title, author = title[: rules.max_title_chars], author[: rules.max_author_chars]
    files = {
        f"{n:02d}.webp": validate_sticker(to_whatsapp(item.png), rules.sticker) for n, item in enumerate(items, start=1)
    }
    tray = validate_sticker(to_whatsapp_tray_icon(items[0].png), WHATSAPP_TRAY)
    contents = {
        "sticker_packs": [
            {
                "identifier": identifier[:128],
                "name": title,
                "publisher": author,
                "tray_image_file": TRAY_FILE,
                "image_data_version": "1",
                "avoid_cache": False,
                "stickers": [
                    {"image_file": name, "emojis": [item.emoji][: rules.max_emoji]}
                    for name, item in zip(files, items, strict=True)
                ],
            }
        ]
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("title.txt", title)
        archive.writestr("author.txt", author)
        archive.writestr(TRAY_FILE, tray)
        for name, data in files.items():
            archive.writestr(name, data)
        archive.writestr("contents.json", json.dumps(contents, ensure_ascii=False, indent=1))
    return buffer.getvalue()
