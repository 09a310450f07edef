"""usage: what the per-user limits count — a daily sticker counter and recent requests.

The daily counter lives on the user row (`quota_used` for the UTC day `quota_day`).
A scheduler resets every counter at midnight UTC (`reset_daily_quotas`); a counter
whose day is not today also reads as zero, so a bot that was down at midnight still
starts the new day fresh.

Recent requests (a sticker asked, a character saved) are `usage_events` rows, apart from
the jobs and references /forget deletes, so the rate limits still count them afterwards;
housekeeping drops those older than the longest window (`prune_events`).
"""

from __future__ import annotations

import time

import sqlite_utils

from storage.transactions import now as _now


def utc_day(at: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(at))


def _at(now: float | None) -> float:
    return now if now is not None else _now()


def quota_used(db: sqlite_utils.Database, user_id: int, *, now: float | None = None) -> int:
    row = db.execute("SELECT quota_used, quota_day FROM users WHERE id = ?", [user_id]).fetchone()
    if row is None or row[1] != utc_day(_at(now)):
        return 0
    return row[0] or 0


def take_quota(
    db: sqlite_utils.Database, user_id: int, limit: int, *, count: int = 1, now: float | None = None
) -> bool:
    """Count `count` stickers (a pack counts each of its stickers) against today's quota,
    atomically; False (nothing counted) when they would go past `limit`."""
    if limit <= 0 or count > limit:
        return False
    day = utc_day(_at(now))
    cursor = db.execute(
        "UPDATE users SET quota_used = CASE WHEN quota_day = :day THEN quota_used + :count ELSE :count END, "
        "quota_day = :day WHERE id = :id AND (quota_day IS NOT :day OR quota_used + :count <= :limit)",
        {"day": day, "id": user_id, "limit": limit, "count": count},
    )
    return cursor.rowcount == 1


def refund_quota(db: sqlite_utils.Database, user_id: int, *, count: int = 1, now: float | None = None) -> None:
    """Give back `count` counted stickers (the request was not queued after all)."""
    db.execute(
        "UPDATE users SET quota_used = MAX(quota_used - ?, 0) WHERE id = ? AND quota_day = ?",
        [count, user_id, utc_day(_at(now))],
    )


def reset_daily_quotas(db: sqlite_utils.Database, *, now: float | None = None) -> int:
    """Midnight: every user starts the day at zero. Returns how many counters changed."""
    return db.execute(
        "UPDATE users SET quota_used = 0, quota_day = ? WHERE quota_used != 0 OR quota_day IS NOT ?",
        [utc_day(_at(now)), utc_day(_at(now))],
    ).rowcount


STICKER = "sticker"  # a /mysticker or /again that was queued
REFERENCE = "reference"  # a /setref that stored a picture


def record_event(db: sqlite_utils.Database, user_id: int, kind: str, *, now: float | None = None) -> int:
    """Count one request of `kind` at `now`; returns its id (for `remove_event`)."""
    event_id = db.execute(
        "INSERT INTO usage_events (user_id, kind, at) VALUES (?, ?, ?)", [user_id, kind, _at(now)]
    ).lastrowid
    assert event_id is not None
    return event_id


def remove_event(db: sqlite_utils.Database, event_id: int) -> None:
    """Un-count a request that did not happen after all."""
    db.execute("DELETE FROM usage_events WHERE id = ?", [event_id])


def event_times_since(db: sqlite_utils.Database, user_id: int, kind: str, since: float) -> list[float]:
    """When the user's requests of `kind` after `since` were made, oldest first."""
    return [
        r[0]
        for r in db.execute(
            "SELECT at FROM usage_events WHERE user_id = ? AND kind = ? AND at > ? ORDER BY at", [user_id, kind, since]
        ).fetchall()
    ]


def request_times_since(db: sqlite_utils.Database, user_id: int, since: float) -> list[float]:
    """When the user's stickers after `since` were asked for, oldest first (for the rate limit)."""
    return event_times_since(db, user_id, STICKER, since)


def prune_events(db: sqlite_utils.Database, before: float) -> int:
    """Housekeeping: drop requests older than any window counts. Returns how many."""
    return db.execute("DELETE FROM usage_events WHERE at < ?", [before]).rowcount
