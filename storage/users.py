"""users: one row per (platform, platform user id)."""

from __future__ import annotations

import sqlite3

import sqlite_utils

from storage.records import User
from storage.transactions import now


def find_user(db: sqlite_utils.Database, platform: str, platform_user_id: str) -> User | None:
    rows = list(
        db.query("SELECT * FROM users WHERE platform = ? AND platform_user_id = ?", [platform, str(platform_user_id)])
    )
    return User.from_row(rows[0]) if rows else None


def get_user(db: sqlite_utils.Database, user_id: int) -> User | None:
    rows = list(db.query("SELECT * FROM users WHERE id = ?", [user_id]))
    return User.from_row(rows[0]) if rows else None


def get_or_create_user(
    db: sqlite_utils.Database, platform: str, platform_user_id: str, display_name: str | None = None
) -> User:
    """The user's row, created on first contact; a changed display name is updated."""
    platform_user_id = str(platform_user_id)
    user = find_user(db, platform, platform_user_id)
    if user is None:
        try:
            db.execute(
                "INSERT INTO users (platform, platform_user_id, display_name, created_at, banned) "
                "VALUES (?, ?, ?, ?, 0)",
                [platform, platform_user_id, display_name, now()],
            )
        except sqlite3.IntegrityError:
            pass  # another connection created it first: use theirs
        user = find_user(db, platform, platform_user_id)
        assert user is not None
        return user
    if user.forgotten_at is not None or (display_name and display_name != user.display_name):
        # A forgotten user who comes back is the same user again (their limits still apply).
        db.execute(
            "UPDATE users SET display_name = COALESCE(?, display_name), forgotten_at = NULL WHERE id = ?",
            [display_name or None, user.id],
        )
        user = get_user(db, user.id)
        assert user is not None
    return user


def set_banned(db: sqlite_utils.Database, user_id: int, banned: bool = True) -> bool:
    """True when the user exists."""
    return db.execute("UPDATE users SET banned = ? WHERE id = ?", [int(banned), user_id]).rowcount == 1


def set_daily_quota(db: sqlite_utils.Database, user_id: int, quota: int | None) -> bool:
    """A per-user override of the configured daily quota; None goes back to the default."""
    return db.execute("UPDATE users SET daily_quota = ? WHERE id = ?", [quota, user_id]).rowcount == 1


def banned_users(db: sqlite_utils.Database) -> list[User]:
    return [User.from_row(r) for r in db.query("SELECT * FROM users WHERE banned = 1 ORDER BY id")]


def delete_spent_tombstones(db: sqlite_utils.Database, today: str) -> int:
    """Drop rows /forget left behind once nothing on them counts any more: no ban, no quota
    set by an admin, no sticker counted today (`today` as `usage.utc_day`) and no recent
    request left in `usage_events`. Returns how many."""
    return db.execute(
        "DELETE FROM users WHERE forgotten_at IS NOT NULL AND banned = 0 AND daily_quota IS NULL "
        "AND (quota_day IS NOT ? OR quota_used = 0) "
        "AND NOT EXISTS (SELECT 1 FROM usage_events e WHERE e.user_id = users.id)",
        [today],
    ).rowcount
