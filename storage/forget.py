"""/forget: delete everything stored for one user, in one transaction.

Embeddings are keyed by picture, not by user: those of the user's references are
deleted unless another user saved the very same picture (then it is theirs too).

What was decided about the user is not theirs to delete: a ban, a quota set by an admin,
today's sticker count and the recent requests the rate limits count. When any of these
applies, the user row stays as a *tombstone*: their name is removed, `forgotten_at` is
set, and only the platform's id remains, so the same person is recognised when they come
back. Housekeeping deletes the tombstone once nothing on it counts (`users.delete_spent_tombstones`).
"""

from __future__ import annotations

import sqlite_utils

from storage.transactions import immediate_transaction
from storage.transactions import now as _now
from storage.usage import utc_day


def forget_user(
    db: sqlite_utils.Database, user_id: int, *, now: float | None = None, counted_since: float | None = None
) -> dict[str, int]:
    """Delete the user's references, their embeddings, jobs, pack orders, stickers, packs and user row
    (or leave the row as a tombstone, see the module docstring; requests before
    `counted_since` count for no limit any more). Returns how many rows of each kind went."""
    at = now if now is not None else _now()
    counts: dict[str, int] = {}
    with immediate_transaction(db):
        shas = [
            r[0]
            for r in db.execute(
                "SELECT DISTINCT sha256 FROM reference_images WHERE user_id = ? AND sha256 NOT IN "
                "(SELECT sha256 FROM reference_images WHERE user_id != ?)",
                [user_id, user_id],
            ).fetchall()
        ]
        marks = ",".join("?" * len(shas)) or "NULL"
        counts["embeddings"] = db.execute(f"DELETE FROM embeddings WHERE reference_sha256 IN ({marks})", shas).rowcount
        counts["pack_stickers"] = db.execute(
            "DELETE FROM pack_stickers WHERE pack_id IN (SELECT id FROM packs WHERE user_id = ?) "
            "OR sticker_id IN (SELECT id FROM stickers WHERE user_id = ?)",
            [user_id, user_id],
        ).rowcount
        counts["packs"] = db.execute("DELETE FROM packs WHERE user_id = ?", [user_id]).rowcount
        counts["stickers"] = db.execute("DELETE FROM stickers WHERE user_id = ?", [user_id]).rowcount
        counts["pack_orders"] = db.execute("DELETE FROM pack_orders WHERE user_id = ?", [user_id]).rowcount
        counts["jobs"] = db.execute("DELETE FROM jobs WHERE user_id = ?", [user_id]).rowcount
        counts["references"] = db.execute("DELETE FROM reference_images WHERE user_id = ?", [user_id]).rowcount
        keep = db.execute(
            "SELECT 1 FROM users WHERE id = :id AND (banned = 1 OR daily_quota IS NOT NULL "
            "OR (quota_day = :today AND quota_used > 0) "
            "OR EXISTS (SELECT 1 FROM usage_events WHERE user_id = :id AND at >= :since))",
            {"id": user_id, "today": utc_day(at), "since": counted_since if counted_since is not None else 0.0},
        ).fetchone()
        if keep:
            db.execute("UPDATE users SET display_name = NULL, forgotten_at = ? WHERE id = ?", [at, user_id])
            counts["users"] = 0
        else:
            db.execute("DELETE FROM usage_events WHERE user_id = ?", [user_id])
            counts["users"] = db.execute("DELETE FROM users WHERE id = ?", [user_id]).rowcount
    return counts
