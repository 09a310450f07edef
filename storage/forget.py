"""/forget: delete everything stored for one user, in one transaction.

Embeddings are keyed by picture, not by user: those of the user's references are
deleted unless another user saved the very same picture (then it is theirs too).
A banned user's row is kept, emptied of their name, so /forget cannot lift a ban.
"""

from __future__ import annotations

import sqlite_utils

from storage.transactions import immediate_transaction


def forget_user(db: sqlite_utils.Database, user_id: int) -> dict[str, int]:
    """Delete the user's references, their embeddings, jobs, pack orders, stickers, packs and user row.
    Returns how many rows of each kind went."""
    counts: dict[str, int] = {}
    with immediate_transaction(db):
        shas = [r[0] for r in db.execute(
            "SELECT DISTINCT sha256 FROM reference_images WHERE user_id = ? AND sha256 NOT IN "
            "(SELECT sha256 FROM reference_images WHERE user_id != ?)", [user_id, user_id]).fetchall()]
        marks = ",".join("?" * len(shas)) or "NULL"
        counts["embeddings"] = db.execute(f"DELETE FROM embeddings WHERE reference_sha256 IN ({marks})",
                                          shas).rowcount
        counts["pack_stickers"] = db.execute(
            "DELETE FROM pack_stickers WHERE pack_id IN (SELECT id FROM packs WHERE user_id = ?) "
            "OR sticker_id IN (SELECT id FROM stickers WHERE user_id = ?)", [user_id, user_id]).rowcount
        counts["packs"] = db.execute("DELETE FROM packs WHERE user_id = ?", [user_id]).rowcount
        counts["stickers"] = db.execute("DELETE FROM stickers WHERE user_id = ?", [user_id]).rowcount
        counts["pack_orders"] = db.execute("DELETE FROM pack_orders WHERE user_id = ?", [user_id]).rowcount
        counts["jobs"] = db.execute("DELETE FROM jobs WHERE user_id = ?", [user_id]).rowcount
        counts["references"] = db.execute("DELETE FROM reference_images WHERE user_id = ?", [user_id]).rowcount
        banned = db.execute("SELECT banned FROM users WHERE id = ?", [user_id]).fetchone()
        if banned and banned[0]:
            db.execute("UPDATE users SET display_name = NULL, daily_quota = NULL WHERE id = ?", [user_id])
            counts["users"] = 0
        else:
            counts["users"] = db.execute("DELETE FROM users WHERE id = ?", [user_id]).rowcount
    return counts
