"""stickers: every finished sticker as an RGBA PNG master, plus the platforms' file ids.

Platform files (Telegram WebP, Discord PNG...) are made from the master on demand by
`bot.sticker_spec`; once uploaded, the platform's file id is kept to resend cheaply.
"""

from __future__ import annotations

import json

import sqlite_utils

from storage.records import Sticker
from storage.transactions import now as _now


def _at(now: float | None) -> float:
    return now if now is not None else _now()


def save_sticker(
    db: sqlite_utils.Database,
    user_id: int,
    job_id: str | None,
    image_png: bytes,
    emoji: str | None,
    request: dict | None = None,
    *,
    position: int | None = None,
    now: float | None = None,
) -> Sticker:
    """Store a sticker. With `position` (its index in the job's output), saving the same job's
    sticker again replaces it, so a job that ran twice does not leave duplicates."""
    at = _at(now)
    params = [user_id, job_id, position, json.dumps(request or {}), emoji, image_png, at, at]
    if position is not None and job_id is not None:
        db.execute(
            "INSERT INTO stickers (user_id, job_id, position, request, emoji, image, created_at, last_used_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (job_id, position) DO UPDATE SET "
            "request = excluded.request, emoji = excluded.emoji, image = excluded.image",
            params,
        )
        sticker_id = db.execute(
            "SELECT id FROM stickers WHERE job_id = ? AND position = ? AND user_id = ?", [job_id, position, user_id]
        ).fetchone()[0]
    else:
        sticker_id = db.execute(
            "INSERT INTO stickers (user_id, job_id, position, request, emoji, image, created_at, last_used_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            params,
        ).lastrowid
    sticker = get_sticker(db, user_id, sticker_id)
    assert sticker is not None
    return sticker


def get_sticker(db: sqlite_utils.Database, user_id: int, sticker_id: int) -> Sticker | None:
    rows = list(db.query("SELECT * FROM stickers WHERE id = ? AND user_id = ?", [sticker_id, user_id]))
    return Sticker.from_row(rows[0]) if rows else None


def stickers_for_job(db: sqlite_utils.Database, user_id: int, job_id: str) -> list[Sticker]:
    return [
        Sticker.from_row(r)
        for r in db.query(
            "SELECT * FROM stickers WHERE job_id = ? AND user_id = ? ORDER BY position, id", [job_id, user_id]
        )
    ]


def stickers_for_user(db: sqlite_utils.Database, user_id: int, *, limit: int = 50) -> list[Sticker]:
    """Newest first."""
    return [
        Sticker.from_row(r)
        for r in db.query(
            "SELECT * FROM stickers WHERE user_id = ? ORDER BY created_at DESC, id DESC LIMIT ?", [user_id, limit]
        )
    ]


def touch_sticker(db: sqlite_utils.Database, user_id: int, sticker_id: int, *, now: float | None = None) -> bool:
    return (
        db.execute(
            "UPDATE stickers SET last_used_at = ? WHERE id = ? AND user_id = ?", [_at(now), sticker_id, user_id]
        ).rowcount
        == 1
    )


def use_sticker(
    db: sqlite_utils.Database, user_id: int, sticker_id: int | None = None, *, now: float | None = None
) -> Sticker | None:
    """The sticker its owner is doing something with (a button under it, adding it to a pack
    or a server; None: their newest), marked as used now so retention keeps it. None when
    it is not theirs or gone."""
    if sticker_id is None:
        newest = stickers_for_user(db, user_id, limit=1)
        if not newest:
            return None
        sticker_id = newest[0].id
    if not touch_sticker(db, user_id, sticker_id, now=now):
        return None
    return get_sticker(db, user_id, sticker_id)


def record_sent(
    db: sqlite_utils.Database, user_id: int, sticker_id: int, message_id: str | int | None, *, now: float | None = None
) -> bool:
    """The platform accepted this sticker's message (the delivery record of one sticker)."""
    return (
        db.execute(
            "UPDATE stickers SET sent_at = ?, sent_message_id = ? WHERE id = ? AND user_id = ?",
            [_at(now), None if message_id is None else str(message_id), sticker_id, user_id],
        ).rowcount
        == 1
    )


def sent_sticker_ids(db: sqlite_utils.Database, user_id: int, job_id: str) -> set[int]:
    """Which of the job's stickers were already sent (a retried delivery skips them)."""
    return {
        r[0]
        for r in db.execute(
            "SELECT id FROM stickers WHERE job_id = ? AND user_id = ? AND sent_at IS NOT NULL", [job_id, user_id]
        ).fetchall()
    }


def set_platform_file_id(db: sqlite_utils.Database, user_id: int, sticker_id: int, platform: str, file_id: str) -> bool:
    """Remember the id the platform gave the uploaded file (e.g. platform="telegram")."""
    sticker = get_sticker(db, user_id, sticker_id)
    if sticker is None:
        return False
    ids = {**sticker.platform_file_ids, platform: file_id}
    return (
        db.execute(
            "UPDATE stickers SET platform_file_ids = ? WHERE id = ? AND user_id = ?",
            [json.dumps(ids), sticker_id, user_id],
        ).rowcount
        == 1
    )


def delete_sticker(db: sqlite_utils.Database, user_id: int, sticker_id: int) -> bool:
    with db.atomic():
        if get_sticker(db, user_id, sticker_id) is None:
            return False
        db.execute("DELETE FROM pack_stickers WHERE sticker_id = ?", [sticker_id])
        db.execute("DELETE FROM stickers WHERE id = ? AND user_id = ?", [sticker_id, user_id])
    return True


def delete_unused_since(db: sqlite_utils.Database, cutoff: float) -> int:
    """Retention: drop sticker masters not used since `cutoff` (Unix seconds). Packs on the
    platforms keep their copies; only our pack membership rows go. Returns how many."""
    with db.atomic():
        db.execute(
            "DELETE FROM pack_stickers WHERE sticker_id IN (SELECT id FROM stickers WHERE last_used_at < ?)", [cutoff]
        )
        return db.execute("DELETE FROM stickers WHERE last_used_at < ?", [cutoff]).rowcount


def count_for_user(db: sqlite_utils.Database, user_id: int) -> int:
    return db.execute("SELECT COUNT(*) FROM stickers WHERE user_id = ?", [user_id]).fetchone()[0]
