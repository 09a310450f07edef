"""packs: a user's sticker sets on a platform, and which stickers went into them.

`name` is the platform's identifier of the set (Telegram: `<something>_by_<bot>`),
unique per platform; `sticker_count` mirrors what the platform reports.
"""

from __future__ import annotations

import sqlite_utils

from storage.records import Pack
from storage.transactions import now as _now


def create_pack(
    db: sqlite_utils.Database, user_id: int, platform: str, name: str, title: str, *, now: float | None = None
) -> Pack:
    pack_id = db.execute(
        "INSERT INTO packs (user_id, platform, name, title, sticker_count, created_at) VALUES (?, ?, ?, ?, 0, ?)",
        [user_id, platform, name, title, now if now is not None else _now()],
    ).lastrowid
    assert pack_id is not None
    pack = get_pack(db, user_id, pack_id)
    assert pack is not None
    return pack


def get_pack(db: sqlite_utils.Database, user_id: int, pack_id: int) -> Pack | None:
    rows = list(db.query("SELECT * FROM packs WHERE id = ? AND user_id = ?", [pack_id, user_id]))
    return Pack.from_row(rows[0]) if rows else None


def find_pack(db: sqlite_utils.Database, user_id: int, platform: str, name: str) -> Pack | None:
    rows = list(
        db.query("SELECT * FROM packs WHERE user_id = ? AND platform = ? AND name = ?", [user_id, platform, name])
    )
    return Pack.from_row(rows[0]) if rows else None


def packs_for_user(db: sqlite_utils.Database, user_id: int, platform: str | None = None) -> list[Pack]:
    sql, params = "SELECT * FROM packs WHERE user_id = ?", [user_id]  # type: str, list[object]
    if platform is not None:
        sql, params = sql + " AND platform = ?", [user_id, platform]
    return [Pack.from_row(r) for r in db.query(sql + " ORDER BY id", params)]


def name_taken(db: sqlite_utils.Database, platform: str, name: str) -> bool:
    """Is this set name used by anyone? (Says nothing about whose it is.)"""
    return db.execute("SELECT 1 FROM packs WHERE platform = ? AND name = ?", [platform, name]).fetchone() is not None


def add_sticker_to_pack(
    db: sqlite_utils.Database,
    user_id: int,
    pack_id: int,
    sticker_id: int,
    *,
    platform_file_id: str | None = None,
    now: float | None = None,
) -> bool:
    """Record that the sticker went into the pack; both must belong to `user_id`.
    False when either is not theirs or it is already in the pack."""
    with db.atomic():
        owned = db.execute(
            "SELECT (SELECT COUNT(*) FROM packs WHERE id = ? AND user_id = ?) + "
            "(SELECT COUNT(*) FROM stickers WHERE id = ? AND user_id = ?)",
            [pack_id, user_id, sticker_id, user_id],
        ).fetchone()[0]
        if owned != 2:
            return False
        cursor = db.execute(
            "INSERT OR IGNORE INTO pack_stickers (pack_id, sticker_id, platform_file_id, added_at) VALUES (?, ?, ?, ?)",
            [pack_id, sticker_id, platform_file_id, now if now is not None else _now()],
        )
        if cursor.rowcount != 1:
            return False
        db.execute("UPDATE packs SET sticker_count = sticker_count + 1 WHERE id = ?", [pack_id])
        # A pack its owner adds to is in use, and so is every sticker in it: retention keeps them.
        db.execute(
            "UPDATE stickers SET last_used_at = ? WHERE user_id = ? AND id IN "
            "(SELECT sticker_id FROM pack_stickers WHERE pack_id = ?)",
            [now if now is not None else _now(), user_id, pack_id],
        )
    return True


def remove_sticker_from_pack(db: sqlite_utils.Database, user_id: int, pack_id: int, sticker_id: int) -> bool:
    with db.atomic():
        if get_pack(db, user_id, pack_id) is None:
            return False
        cursor = db.execute("DELETE FROM pack_stickers WHERE pack_id = ? AND sticker_id = ?", [pack_id, sticker_id])
        if cursor.rowcount != 1:
            return False
        db.execute("UPDATE packs SET sticker_count = MAX(sticker_count - 1, 0) WHERE id = ?", [pack_id])
    return True


def pack_sticker_ids(db: sqlite_utils.Database, user_id: int, pack_id: int) -> list[int]:
    return [
        r[0]
        for r in db.execute(
            "SELECT ps.sticker_id FROM pack_stickers ps JOIN packs p ON p.id = ps.pack_id "
            "WHERE ps.pack_id = ? AND p.user_id = ? ORDER BY ps.added_at, ps.sticker_id",
            [pack_id, user_id],
        ).fetchall()
    ]


def set_sticker_count(db: sqlite_utils.Database, user_id: int, pack_id: int, count: int) -> bool:
    """Sync with the count the platform reports."""
    return (
        db.execute(
            "UPDATE packs SET sticker_count = ? WHERE id = ? AND user_id = ?", [count, pack_id, user_id]
        ).rowcount
        == 1
    )


def delete_pack(db: sqlite_utils.Database, user_id: int, pack_id: int) -> bool:
    with db.atomic():
        if get_pack(db, user_id, pack_id) is None:
            return False
        db.execute("DELETE FROM pack_stickers WHERE pack_id = ?", [pack_id])
        db.execute("DELETE FROM packs WHERE id = ? AND user_id = ?", [pack_id, user_id])
    return True
