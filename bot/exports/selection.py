"""Which of a user's stickers an export takes: "your pack".

The stickers of the user's latest /makepack, in pack order, when it made any; otherwise
their newest stickers, oldest first. At most the format's maximum: the rest is counted as
left out, so the user is told.
"""

from __future__ import annotations

import sqlite_utils

from bot.exports import ExportSticker
from bot.schema.vocabulary import emoji_for_emotion
from storage import pack_orders, stickers
from storage.records import Sticker

LATEST_PACK = "your latest /makepack"
NEWEST = "your newest stickers"


def pack_stickers(db: sqlite_utils.Database, user_id: int, limit: int) -> tuple[list[ExportSticker], int, str]:
    """(stickers, how many were left out, where they came from)."""
    chosen: list[Sticker] = []
    source = NEWEST
    order = pack_orders.last_order(db, user_id)
    if order is not None:
        for job in pack_orders.member_jobs(db, order):
            chosen += stickers.stickers_for_job(db, user_id, job.id)
        source = LATEST_PACK if chosen else NEWEST
    if not chosen:
        newest = list(reversed(stickers.stickers_for_user(db, user_id, limit=limit)))
        return [_export(s) for s in newest], stickers.count_for_user(db, user_id) - len(newest), source
    return [_export(s) for s in chosen[:limit]], max(0, len(chosen) - limit), source


def _export(sticker: Sticker) -> ExportSticker:
    emoji = sticker.emoji or emoji_for_emotion((sticker.request or {}).get("emotion", ""))
    tags = sticker.request or {}
    description = ", ".join(t for t in (tags.get("emotion"), tags.get("action"), tags.get("background")) if t)
    return ExportSticker(sticker.id, sticker.image, emoji, description)
